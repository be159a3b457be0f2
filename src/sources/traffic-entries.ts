// The traffic config entries a backend (Consul, etcd) holds, kept one by one: each entry is
// parsed on its own when its value changes (an unchanged value keeps its parsed object, so the
// assembled TrafficConfig shares it with the previous one), a bad entry is left out and listed
// as a problem while the rest applies, and problems and unsupported fields are logged once.
// EntriesTrafficSource publishes what they assemble (coalesced, logged, to listeners on change).
// Shared by sources/consul/config-entries.ts and sources/etcd/config-entries.ts.
import type { Logger } from '../telemetry/logger.js';
import type { ConfigProblem, TrafficProvider } from '../traffic/provider.js';
import { assembleTraffic, parseEntry, type ParsedEntry } from '../traffic/schema.js';
import { ENTRY_KINDS, type TrafficConfig, type Unsupported } from '../traffic/types.js';

export interface EntryValue {
  /** The kind the backend files it under (Consul: the list it came from; etcd: the key). */
  readonly kind: string;
  /** The name the backend files it under. */
  readonly name: string;
  /** The entry as the backend holds it, decoded from JSON. */
  readonly raw: unknown;
  /** Canonical text of `raw`: an unchanged text is not parsed again. */
  readonly text: string;
  /** Where it is, for logs (e.g. the etcd key). */
  readonly origin?: string;
  /** A problem found before parsing (the etcd key disagrees with the entry...). */
  readonly problem?: string;
}

type Parsed =
  | { readonly ok: true; readonly parsed: ParsedEntry }
  | { readonly ok: false; readonly problem: ConfigProblem };

interface Slot {
  readonly value: EntryValue;
  readonly parsed: Parsed;
}

const KIND_ORDER = new Map<string, number>(ENTRY_KINDS.map((k, i) => [k, i]));

export class TrafficEntries {
  private readonly slots = new Map<string, Slot>();
  /** kind/name/field of unsupported fields already logged (while they stay). */
  private loggedUnsupported = new Set<string>();

  constructor(
    private readonly log: Logger,
    /** "consul" or "etcd", for log messages. */
    private readonly backend: string,
  ) {}

  /** Slot ids currently held. */
  keys(): string[] {
    return [...this.slots.keys()];
  }

  get size(): number {
    return this.slots.size;
  }

  /** Sets the entry in `slot` (parsed unless its text is unchanged). Returns whether it changed. */
  set(slot: string, value: EntryValue): boolean {
    const old = this.slots.get(slot);
    if (
      old &&
      old.value.text === value.text &&
      old.value.kind === value.kind &&
      old.value.name === value.name &&
      old.value.problem === value.problem
    ) {
      return false;
    }
    const parsed = this.parse(value);
    this.slots.set(slot, { value, parsed });
    if (parsed.ok === false) {
      const p = parsed.problem;
      this.log.warn(
        {
          backend: this.backend,
          kind: p.kind,
          name: p.name,
          origin: value.origin,
          problem: p.message,
        },
        `${this.backend} config entry rejected; the rest applies`,
      );
    } else if (old && old.parsed.ok === false) {
      this.log.info(
        { backend: this.backend, kind: value.kind, name: value.name, origin: value.origin },
        `${this.backend} config entry valid again`,
      );
    }
    return true;
  }

  delete(slot: string): boolean {
    return this.slots.delete(slot);
  }

  /** Entries that are not applied, and why; by kind, then name. */
  problems(): ConfigProblem[] {
    const out: ConfigProblem[] = [];
    for (const { parsed } of this.sorted()) if (parsed.ok === false) out.push(parsed.problem);
    return out;
  }

  /**
   * The configuration of every valid entry. `previous` (the configuration in force) lets
   * unchanged entries keep their objects. Throws what assembleTraffic throws (duplicates).
   */
  build(previous?: TrafficConfig): TrafficConfig {
    const parsed: ParsedEntry[] = [];
    for (const { parsed: p } of this.sorted()) if (p.ok) parsed.push(p.parsed);
    const config = assembleTraffic(parsed, previous, `${this.backend} config entries`);
    if (config !== previous) this.logUnsupported(config.unsupported);
    return config;
  }

  private sorted(): Slot[] {
    const order = (k: string): number => KIND_ORDER.get(k) ?? KIND_ORDER.size;
    return [...this.slots.values()].sort(
      (a, b) =>
        order(a.value.kind) - order(b.value.kind) ||
        (a.value.kind < b.value.kind ? -1 : a.value.kind > b.value.kind ? 1 : 0) ||
        (a.value.name < b.value.name ? -1 : a.value.name > b.value.name ? 1 : 0),
    );
  }

  private parse(value: EntryValue): Parsed {
    const { kind, name } = value;
    if (value.problem !== undefined) {
      const at = value.origin !== undefined ? ` (at ${value.origin})` : '';
      const message = `${kind}/${name}: ${value.problem}${at}`;
      return { ok: false, problem: { kind, name, message } };
    }
    try {
      const parsed = parseEntry(value.raw, `${kind}/${name}`);
      const { entry } = parsed;
      if (entry && (entry.Kind !== kind || entry.Name !== name)) {
        const message = `${kind}/${name}: the entry is ${entry.Kind}/${entry.Name}`;
        return { ok: false, problem: { kind, name, message } };
      }
      return { ok: true, parsed };
    } catch (err) {
      // TrafficEntryError: every problem of the entry, each naming the entry, the field path
      // and the value. The kind and name are the slot's: the backend files the entry under them.
      const message = err instanceof Error ? err.message : `${kind}/${name}: ${String(err)}`;
      return { ok: false, problem: { kind, name, message } };
    }
  }

  private logUnsupported(list: readonly Unsupported[]): void {
    const now = new Set<string>();
    for (const u of list) {
      const key = `${u.kind}/${u.name}/${u.field}`;
      now.add(key);
      if (this.loggedUnsupported.has(key)) continue;
      this.log.warn(
        { backend: this.backend, kind: u.kind, name: u.name, field: u.field },
        u.field === ''
          ? `${this.backend} config entry of a kind lucid-mesh does not implement; not applied`
          : `${this.backend} config entry field lucid-mesh does not implement; ignored`,
      );
    }
    this.loggedUnsupported = now;
  }
}

/**
 * A TrafficProvider publishing the configuration its TrafficEntries assemble (the Consul and etcd
 * sources): builds are coalesced, and an effective change is logged and handed to listeners.
 */
export abstract class EntriesTrafficSource implements TrafficProvider {
  protected readonly log: Logger;
  protected readonly entries: TrafficEntries;
  protected stopped = false;
  /** Configurations published (first load included). */
  protected updates = 0;
  private readonly listeners = new Set<(config: TrafficConfig) => void>();
  private config: TrafficConfig | undefined;
  private publishTimer: NodeJS.Immediate | undefined;

  constructor(
    /** "consul" or "etcd": the source's name, its log context and its entries' log messages. */
    readonly name: string,
    /** The backend as the configuration's log messages name it: "Consul", "etcd". */
    private readonly title: string,
    logger: Logger,
  ) {
    this.log = logger.child({ traffic: name });
    this.entries = new TrafficEntries(this.log, name);
  }

  abstract start(): Promise<void>;
  abstract stop(): Promise<void>;

  current(): TrafficConfig | undefined {
    return this.config;
  }

  problems(): readonly ConfigProblem[] {
    return this.entries.problems();
  }

  onChange(listener: (config: TrafficConfig) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  /** Whether the entries held may be published (Consul: once every kind has been read). */
  protected ready(): boolean {
    return true;
  }

  /** Log fields of "… traffic configuration loaded/changed" ahead of the counts. */
  protected publishFields(): Record<string, unknown> {
    return {};
  }

  /** Stops publishing: no listener is called after this. */
  protected stopPublishing(): void {
    this.stopped = true;
    if (this.publishTimer) clearImmediate(this.publishTimer);
    this.publishTimer = undefined;
    this.listeners.clear();
  }

  /** Coalesces changes arriving together (a burst of responses, kinds answering at once). */
  protected schedulePublish(): void {
    if (this.publishTimer || this.stopped) return;
    this.publishTimer = setImmediate(() => {
      this.publishTimer = undefined;
      this.publish();
    });
  }

  /** Publishes at once (what a scheduled publish would have done included). */
  protected publishNow(): void {
    if (this.publishTimer) clearImmediate(this.publishTimer);
    this.publishTimer = undefined;
    this.publish();
  }

  private publish(): void {
    if (this.stopped || !this.ready()) return;
    let config: TrafficConfig;
    try {
      config = this.entries.build(this.config);
    } catch (err) {
      // One entry per kind and name (a Consul config entry, an etcd key): assembleTraffic has
      // no duplicates to reject.
      this.log.error(
        { err },
        `${this.title} config entries do not assemble; keeping the last good`,
      );
      return;
    }
    // assembleTraffic hands back the configuration in force itself when nothing changed.
    if (config === this.config) return;
    const first = this.config === undefined;
    this.config = config;
    this.updates++;
    this.log.info(
      {
        ...this.publishFields(),
        routers: config.routers.size,
        splitters: config.splitters.size,
        resolvers: config.resolvers.size,
        serviceDefaults: config.serviceDefaults.size,
        intentions: config.intentions.size,
        proxyDefaults: config.proxyDefaults !== undefined,
        problems: this.entries.problems().length,
      },
      `${this.title} traffic configuration ${first ? 'loaded' : 'changed'}`,
    );
    for (const listener of this.listeners) {
      try {
        listener(config);
      } catch (err) {
        this.log.error({ err }, 'traffic configuration listener failed');
      }
    }
  }
}
