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

  /** Call once per build, before any get: parts not asked for in the last build are forgotten. */
  startBuild(): void {
    this.entries = this.next;
    this.next = new Map();
  }

  get(key: string, index: InputIndex, build: (reader: TrackedReader) => T): T {
    const { traffic, settings, policy } = index.inputs;
    const memo = this.entries.get(key);
    if (
      memo &&
      memo.proxyDefaults === traffic.proxyDefaults &&
      memo.settings === settings &&
      memo.policy === policy &&
      memo.deps.every((d) => index.get(d.kind, d.key) === d.value)
    ) {
      this.next.set(key, memo);
      return memo.value;
    }
    const reader = new TrackedReader(index);
    const value = build(reader);
    this.next.set(key, {
      deps: reader.deps,
      proxyDefaults: traffic.proxyDefaults,
      settings,
      policy,
      value,
    });
    return value;
  }
}
