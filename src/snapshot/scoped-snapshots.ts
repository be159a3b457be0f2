// Scoped snapshots (docs/scoping.md): the snapshot of the proxies of one scope, `base` without
// the shared resources of services outside it and with the scope's own outbound routes. One
// per scope and locality group, kept from build to build: a scope a change does not touch keeps
// its snapshot (and version), with a new membership saying which build it now belongs to.
import type { ProxyIdentity } from '../catalog/model.js';
import { gatewayOf, proxyScope } from '../mesh/index.js';
import type { ProxyScope } from '../mesh/types.js';
import { RESOURCE_KINDS } from '../protos/envoy.js';
import type { TranslationCache } from '../translate/index.js';
import { OUTBOUND_ROUTE_NAME } from '../translate/names.js';
import { NO_RESOURCES } from './encode-set.js';
import type { EncodedResource } from './encoded-resource.js';
import type { ResourceEncoder } from './encoder.js';
import type { KindMaps, ResourceMap, Snapshot } from './snapshot.js';

/**
 * A scoped snapshot's membership in a build: the snapshot, and the build's snapshot (or
 * locality snapshot) it narrows. A build that leaves the scope's resources as they were makes
 * a new membership for the same snapshot: the snapshot itself is never changed.
 */
interface ScopedEntry {
  readonly base: Snapshot;
  readonly snapshot: Snapshot;
  /** The build it was made for. */
  readonly build: number;
}

export class ScopedSnapshots {
  /** The latest scoped snapshot of each locality group and scope. */
  private readonly byGroup = new Map<string, Map<string, ScopedEntry>>();
  /**
   * Which build each kept scoped snapshot belongs to (the snapshot itself stays as it was
   * made): its latest membership, by the snapshot. See buildOf.
   */
  private readonly memberships = new WeakMap<Snapshot, ScopedEntry>();
  /** Builds made (entries unused for a whole build are dropped). */
  private builds = 0;

  constructor(
    private readonly encoder: ResourceEncoder,
    private readonly translationCache: TranslationCache,
    private readonly counters: { scopesBuilt: number },
    /** The locality group of a build's snapshot: '' for the build's own, else its locality's. */
    private readonly groupOf: (base: Snapshot) => string | undefined,
  ) {}

  /**
   * The build a snapshot belongs to, as views ask it (one function all views share): a kept
   * scoped snapshot's latest build (the base it was last found unchanged over), else its own.
   */
  readonly buildOf = (snapshot: Snapshot): Snapshot =>
    this.memberships.get(snapshot)?.base ?? snapshot;

  /** A new build: entries unused for the whole last one go. */
  nextBuild(): void {
    this.builds++;
    for (const [group, byScope] of this.byGroup) {
      for (const [key, entry] of byScope) if (entry.build < this.builds - 1) byScope.delete(key);
      if (byScope.size === 0) this.byGroup.delete(group);
    }
  }

  /**
   * The snapshot of the proxies whose scope is that of `proxy`. The resources are the base's
   * own encoded objects (nothing re-encoded), only the route configuration is encoded per
   * scope, and only when its virtual hosts change. A build that leaves every resource of the
   * scope as it was keeps the last one (W9: an endpoint flip made 1,000 snapshots and 10,000
   * views, kept until the next change, and the old generation filled during the fan-out).
   */
  of(base: Snapshot, proxy: ProxyIdentity): Snapshot {
    if (gatewayOf(base.mesh, proxy)) return base;
    const scope = proxyScope(base.mesh, proxy.service);
    if (!scope.services || scope.key === undefined) return base;
    const group = this.groupOf(base);
    let byScope = group === undefined ? undefined : this.byGroup.get(group);
    if (!byScope && group !== undefined) this.byGroup.set(group, (byScope = new Map()));
    const entry = byScope?.get(scope.key);
    if (entry?.base === base) return entry.snapshot;
    const { keep, routes } = this.translationCache.scope(scope.services, scope.key);
    const last = entry?.snapshot.shared;
    // Built from the scope's names (plus the few no service owns), not by filtering the
    // mesh's: many narrow scopes cost what they hold.
    const only = (kind: 'clusters' | 'endpoints' | 'listeners'): ResourceMap => {
      const from = base.shared[kind];
      const names = [this.translationCache.unowned(kind, from.keys()), keep[kind]];
      return reuseOrBuild(last?.[kind], from, names);
    };
    const route = this.encoder.encode(
      'routes',
      OUTBOUND_ROUTE_NAME,
      routes,
      `${OUTBOUND_ROUTE_NAME}@${scope.key}`,
    );
    // The mesh's routes with the scope's outbound configuration in its place (or last).
    const routeNames = [[...base.shared.routes.keys()]];
    if (!base.shared.routes.has(OUTBOUND_ROUTE_NAME)) routeNames.push([OUTBOUND_ROUTE_NAME]);
    const outbound = reuseOrBuild(last?.routes, base.shared.routes, routeNames, route);
    const shared: KindMaps = {
      ...base.shared,
      clusters: only('clusters'),
      endpoints: only('endpoints'),
      listeners: only('listeners'),
      routes: outbound,
    };
    if (entry && RESOURCE_KINDS.every((kind) => shared[kind] === entry.snapshot.shared[kind])) {
      // Nothing of this scope changed: the same snapshot (and version), now of this build.
      return this.keep(byScope!, scope.key, entry.snapshot, base);
    }
    const snapshot = base.narrowed(shared);
    if (byScope) this.keep(byScope, scope.key, snapshot, base);
    this.counters.scopesBuilt++;
    return snapshot;
  }

  /**
   * After a patched build (touched.ts): keeps `scope`'s snapshot of the home group as `next`'s
   * when it is up to date with `previous` (a pass `next` replaced may not have reached it yet)
   * and holds none of the `changed` services. False when the scope must be visited.
   */
  keepUntouched(
    scope: ProxyScope,
    previous: Snapshot,
    next: Snapshot,
    changed: ReadonlySet<string>,
  ): boolean {
    const byScope = this.byGroup.get('');
    const entry = byScope?.get(scope.key!);
    if (!entry || entry.base !== previous || scope.services!.some((n) => changed.has(n))) {
      return false;
    }
    this.keep(byScope!, scope.key!, entry.snapshot, next);
    return true;
  }

  /** Records `snapshot` as scope `key`'s in the build of `base` (a new membership). */
  private keep(
    byScope: Map<string, ScopedEntry>,
    key: string,
    snapshot: Snapshot,
    base: Snapshot,
  ): Snapshot {
    const entry: ScopedEntry = { base, snapshot, build: this.builds };
    byScope.set(key, entry);
    this.memberships.set(snapshot, entry);
    return snapshot;
  }
}

/**
 * The resources of `from` named in `names` (in that order; names it lacks are left out), with
 * `outbound` as the outbound route configuration. `last` itself when it holds exactly those,
 * in order (the same encoded objects): an unchanged kind keeps its map, so the snapshot, its
 * version and the views on it are kept too. Plain loops: generators cost ~1 µs a resource here.
 */
function reuseOrBuild(
  last: ResourceMap | undefined,
  from: ResourceMap,
  names: ReadonlyArray<readonly string[]>,
  outbound?: EncodedResource,
): ResourceMap {
  const pick = (name: string) =>
    outbound && name === OUTBOUND_ROUTE_NAME ? outbound : from.get(name);
  if (last) {
    const held = last.values();
    let same = true;
    for (const list of names) {
      for (const name of list) {
        const r = pick(name);
        if (r && held.next().value !== r) {
          same = false;
          break;
        }
      }
      if (!same) break;
    }
    if (same && held.next().done) return last;
  }
  const out = new Map<string, EncodedResource>();
  for (const list of names) {
    for (const name of list) {
      const r = pick(name);
      if (r) out.set(name, r);
    }
  }
  return out.size === 0 ? NO_RESOURCES : out;
}
