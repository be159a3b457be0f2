// W7's traffic configuration: on every generated service a service-resolver with two subsets
// (v1 / v2 by instance tag), a service-router (/admin → v2, header x-canary: 1 → v2, /api/ with
// a timeout and retries) and a service-splitter 90/10 (v1/v2), written as a traffic file (a
// JSON list of Consul config entries) the control plane watches (`serve --traffic FILE`). As
// with the catalog, each entry's JSON is kept as a fragment, so an edit re-serialises one
// entry. A change is an edit of one router: see planRouterEdits.
import { renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** The subsets every W7 service's resolver defines, and the tag that puts an instance in one. */
export const SUBSETS = ['v1', 'v2'] as const;
export type SubsetName = (typeof SUBSETS)[number];

/** EDS clusters per service with traffic configuration: the service and each subset. */
export const BACKENDS_PER_SERVICE = 1 + SUBSETS.length;

/**
 * The subset of instance `i` of a service with `instances` instances: the first 60 % are v1,
 * the rest v2 (at 5 instances: 0-2 v1, 3-4 v2), so both subsets are non-empty whenever a
 * service has two instances or more.
 */
export function subsetOf(instance: number, instances: number): SubsetName {
  const v1 = Math.max(1, Math.min(instances - 1, Math.ceil(instances * 0.6)));
  return instance < v1 ? 'v1' : 'v2';
}

/** The cluster (and ClusterLoadAssignment) of a service's subset, as the mesh names it. */
export function subsetCluster(service: string, subset: SubsetName): string {
  return `${service}~${subset}`;
}

/** One router edit: which service's router, and the revision it carries afterwards. */
export interface RouterEdit {
  readonly n: number;
  readonly service: string;
  /**
   * The value of the edited route's `x-route-rev` request header after the edit: unique in the
   * whole route configuration (service name + fixed-width edit number), so a proxy has the
   * edit exactly when the RouteConfiguration it was sent contains these bytes.
   */
  readonly rev: string;
  /** The /api/ route's RequestTimeout after the edit (alternates 2 s / 3 s). */
  readonly timeoutMs: number;
}

const INITIAL_TIMEOUT_MS = 2000;

function revision(service: string, n: number | undefined): string {
  return `${service}.rev-${n === undefined ? 'initial' : String(n).padStart(6, '0')}`;
}

export function resolverEntry(service: string): object {
  return {
    Kind: 'service-resolver',
    Name: service,
    DefaultSubset: 'v1',
    Subsets: Object.fromEntries(
      SUBSETS.map((s) => [s, { Filter: `"${s}" in Service.Tags`, OnlyPassing: false }]),
    ),
    ConnectTimeout: '5s',
  };
}

export function splitterEntry(service: string): object {
  return {
    Kind: 'service-splitter',
    Name: service,
    Splits: [
      { Weight: 90, ServiceSubset: 'v1' },
      { Weight: 10, ServiceSubset: 'v2' },
    ],
  };
}

export function routerEntry(service: string, rev: string, timeoutMs: number): object {
  return {
    Kind: 'service-router',
    Name: service,
    Routes: [
      { Match: { HTTP: { PathPrefix: '/admin' } }, Destination: { ServiceSubset: 'v2' } },
      {
        Match: { HTTP: { Header: [{ Name: 'x-canary', Exact: '1' }] } },
        Destination: { ServiceSubset: 'v2' },
      },
      {
        Match: { HTTP: { PathPrefix: '/api/', Methods: ['GET', 'PUT'] } },
        Destination: {
          RequestTimeout: `${timeoutMs}ms`,
          NumRetries: 3,
          RetryOn: ['5xx', 'connect-failure'],
          RequestHeaders: { Set: { 'x-route-rev': rev } },
        },
      },
    ],
  };
}

export class GeneratedTraffic {
  /** Fragments in file order: per service, its resolver, splitter and router. */
  private readonly fragments: string[] = [];
  private readonly routerIndex = new Map<string, number>();
  private readonly timeouts = new Map<string, number>();
  private seq = 0;
  private planned = 0;

  constructor(
    readonly services: readonly string[],
    readonly path: string,
  ) {
    for (const name of services) {
      this.fragments.push(JSON.stringify(resolverEntry(name)));
      this.fragments.push(JSON.stringify(splitterEntry(name)));
      this.routerIndex.set(name, this.fragments.length);
      this.fragments.push(
        JSON.stringify(routerEntry(name, revision(name, undefined), INITIAL_TIMEOUT_MS)),
      );
      this.timeouts.set(name, INITIAL_TIMEOUT_MS);
    }
  }

  /** Entries per kind. */
  get entries(): Record<string, number> {
    const n = this.services.length;
    return { 'service-resolver': n, 'service-splitter': n, 'service-router': n };
  }

  text(): string {
    return `[\n${this.fragments.join(',\n')}\n]\n`;
  }

  /** Replaces the file atomically (write + rename), as the catalog is. */
  write(): void {
    const tmp = join(dirname(this.path), `.${basename(this.path)}.${this.seq++}.tmp`);
    writeFileSync(tmp, this.text());
    renameSync(tmp, this.path);
  }

  /**
   * The next `count` router edits, planned without applying them (so watches can be armed
   * ahead): round-robin over services, each changing the /api/ route of one router (its
   * RequestTimeout alternates 2 s / 3 s and its `x-route-rev` header takes a new value).
   */
  planRouterEdits(count: number): RouterEdit[] {
    const timeouts = new Map<string, number>();
    const out: RouterEdit[] = [];
    for (let k = 0; k < count; k++) {
      const n = this.planned++;
      // Start half-way round, away from the services the endpoint flips touched first.
      const service =
        this.services[(n + Math.floor(this.services.length / 2)) % this.services.length]!;
      const before = timeouts.get(service) ?? this.timeouts.get(service)!;
      const timeoutMs = before === 2000 ? 3000 : 2000;
      timeouts.set(service, timeoutMs);
      out.push({ n, service, rev: revision(service, n), timeoutMs });
    }
    return out;
  }

  /** Applies a planned edit (in plan order); does not write the file. */
  apply(edit: RouterEdit): void {
    const index = this.routerIndex.get(edit.service);
    if (index === undefined) throw new Error(`no router for ${edit.service}`);
    this.fragments[index] = JSON.stringify(routerEntry(edit.service, edit.rev, edit.timeoutMs));
    this.timeouts.set(edit.service, edit.timeoutMs);
  }
}

/** The bytes a proxy looks for in the RouteConfiguration to know it has `edit`. */
export function routerEditMarker(edit: RouterEdit): Buffer {
  return Buffer.from(edit.rev, 'utf8');
}
