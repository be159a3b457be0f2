// The traffic config entries a backend (Consul, etcd) holds, kept one by one: each entry is
// parsed on its own when its value changes (an unchanged value keeps its parsed object, so the
// assembled TrafficConfig shares it with the previous one), a bad entry is left out and listed
// as a problem while the rest applies, and problems and unsupported fields are logged once.
// Shared by sources/consul/config-entries.ts and sources/etcd/config-entries.ts.
import type { Logger } from '../telemetry/logger.js';
import type { ConfigProblem } from '../traffic/provider.js';
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
