// What buildMesh reads, and a reader that remembers what it read: a part of the mesh built
// from the very same input objects as last time is the same part, so a change to one entry
// rebuilds only the parts that looked at it (sources and loaders keep unchanged objects).
import type { Catalog, Service } from '../catalog/model.js';
import type { Policy } from '../policy/schema.js';
import type {
  ProxyDefaults,
  ServiceDefaults,
  ServiceIntentions,
  ServiceResolver,
  ServiceRouter,
  ServiceSplitter,
  TrafficConfig,
} from '../traffic/types.js';
import type { MeshSettings } from './types.js';

export interface MeshInputs {
  readonly catalog: Catalog;
  readonly traffic: TrafficConfig;
  readonly policy?: Policy;
  readonly settings: MeshSettings;
}

interface Lookups {
  service: Service;
  defaults: ServiceDefaults;
  router: ServiceRouter;
  splitter: ServiceSplitter;
  resolver: ServiceResolver;
  intentions: ServiceIntentions;
}
type LookupKind = keyof Lookups;

type Dep = { kind: LookupKind; key: string; value: unknown };

/** Indexed inputs of one build. */
export class InputIndex {
  private readonly services: ReadonlyMap<string, Service>;

  constructor(readonly inputs: MeshInputs) {
    this.services = new Map(inputs.catalog.services.map((s) => [s.name, s]));
  }

  hasService(name: string): boolean {
    return this.services.has(name);
  }

  /**
   * When only the catalog changed since `last` (the same traffic, policy and settings objects):
   * the names of services added, removed or changed (a new object). Otherwise undefined.
   */
  changedServicesSince(last: InputIndex | undefined): ReadonlySet<string> | undefined {
    if (!last) return undefined;
    const a = last.inputs;
    const b = this.inputs;
    if (a.traffic !== b.traffic || a.policy !== b.policy || a.settings !== b.settings) return;
    const changed = new Set<string>();
    for (const [name, service] of this.services) {
      if (last.services.get(name) !== service) changed.add(name);
    }
    if (last.services.size + changed.size !== this.services.size) {
      for (const name of last.services.keys()) if (!this.services.has(name)) changed.add(name);
    }
    return changed;
  }

  get<K extends LookupKind>(kind: K, key: string): Lookups[K] | undefined {
    const t = this.inputs.traffic;
    switch (kind) {
      case 'service':
        return this.services.get(key) as Lookups[K] | undefined;
      case 'defaults':
        return t.serviceDefaults.get(key) as Lookups[K] | undefined;
      case 'router':
        return t.routers.get(key) as Lookups[K] | undefined;
      case 'splitter':
        return t.splitters.get(key) as Lookups[K] | undefined;
      case 'resolver':
        return t.resolvers.get(key) as Lookups[K] | undefined;
      default:
        return t.intentions.get(key) as Lookups[K] | undefined;
    }
  }
}

/** Reads inputs for one part of the mesh and records each read. */
export class TrackedReader {
  readonly deps: Dep[] = [];

  constructor(private readonly index: InputIndex) {}

  get<K extends LookupKind>(kind: K, key: string): Lookups[K] | undefined {
    const value = this.index.get(kind, key);
    this.deps.push({ kind, key, value });
    return value;
  }

  get proxyDefaults(): ProxyDefaults | undefined {
    return this.index.inputs.traffic.proxyDefaults;
  }

  get settings(): MeshSettings {
    return this.index.inputs.settings;
  }

  get policy(): Policy | undefined {
    return this.index.inputs.policy;
  }
}

interface Memo<T> {
  readonly deps: readonly Dep[];
  /** The catalog services it read (the deps of kind 'service'). */
  readonly services: readonly string[];
  readonly proxyDefaults: ProxyDefaults | undefined;
  readonly settings: MeshSettings;
  readonly policy: Policy | undefined;
  readonly value: T;
}

/**
 * Keeps built parts between builds. A part is reused when every input it read is the same
 * object again (and the global inputs are too); otherwise it is rebuilt.
 */
export class PartCache<T> {
  private entries = new Map<string, Memo<T>>();
  private next = new Map<string, Memo<T>>();
  /**
   * Keys of the parts that read each catalog service besides their own (a superset: stale
   * keys are harmless).
   */
  private readers = new Map<string, Set<string>>();

  /**
   * Call once per build, before any get: parts not asked for in the last build are forgotten.
   * `keep` (a catalog-only change, see get's `changed`): every part is kept and updated in
   * place, the caller forgets those of removed services; refilling a fresh map of 10,000
   * parts on every build was a third of the mesh build (bench W10).
   */
  startBuild(keep = false): void {
    if (keep) {
      this.entries = this.next;
      return;
    }
    this.entries = this.next;
    this.next = new Map();
    this.readers = new Map();
  }

  /** The keys of the parts that read any of `services` in the last build. */
  readersOf(services: Iterable<string>): Set<string> {
    const out = new Set<string>();
    for (const name of services) {
      // A part keyed by a service's name is taken to read it (most read only that one).
      out.add(name);
      for (const key of this.readers.get(name) ?? []) out.add(key);
    }
    return out;
  }

  /** Records the reads of other services only: one set per service would be ~2 MB at 10,000. */
  private addReaders(key: string, services: readonly string[]): void {
    for (const name of services) {
      if (name === key) continue;
      let keys = this.readers.get(name);
      if (!keys) this.readers.set(name, (keys = new Set()));
      keys.add(key);
    }
  }

  /** Drops a part (of a service no longer in the catalog) in a `keep` build. */
  forget(key: string): void {
    this.next.delete(key);
  }

  /**
   * `changed`: InputIndex.changedServicesSince the last build. Every memo kept was checked
   * against the last build's inputs, so with only catalog services changed a memo holds
   * unless it read one of those: no other input needs looking up (10,000 services, ~7 reads
   * each, on every build: bench W10).
   */
  get(
    key: string,
    index: InputIndex,
    build: (reader: TrackedReader) => T,
    changed?: ReadonlySet<string>,
  ): T {
    const { traffic, settings, policy } = index.inputs;
    const memo = this.entries.get(key);
    if (
      memo &&
      (changed
        ? !readsAny(memo.services, changed)
        : memo.proxyDefaults === traffic.proxyDefaults &&
          memo.settings === settings &&
          memo.policy === policy &&
          memo.deps.every((d) => index.get(d.kind, d.key) === d.value))
    ) {
      if (this.next !== this.entries) {
        this.next.set(key, memo);
        this.addReaders(key, memo.services);
      }
      return memo.value;
    }
    const reader = new TrackedReader(index);
    const value = build(reader);
    const services = reader.deps.filter((d) => d.kind === 'service').map((d) => d.key);
    this.addReaders(key, services);
    this.next.set(key, {
      deps: reader.deps,
      services,
      proxyDefaults: traffic.proxyDefaults,
      settings,
      policy,
      value,
    });
    return value;
  }
}

function readsAny(names: readonly string[], changed: ReadonlySet<string>): boolean {
  for (const name of names) if (changed.has(name)) return true;
  return false;
}
