// The traffic configuration from etcd: one config entry per key, `<prefix>config/<kind>/<name>`
// holding the entry as Consul's JSON (`consul config read -format json` output pastes as is;
// Kind and Name may be left out, the key gives them).
//
// Followed with the catalog's machinery (prefix-watch.ts): a consistent range read, then a
// watch from the next revision; a compaction or a broken connection re-lists, and the list
// replaces the whole state. While etcd is unreachable the last good entries stay in force.
//
// Each key is parsed on its own (traffic-entries.ts): a bad one (not JSON, a key whose kind or
// name disagrees with the entry's Kind or Name, a field lucid-mesh rejects) is left out, listed
// in problems() and logged once; the rest applies. A kind lucid-mesh does not implement is
// listed as unsupported. current() is undefined until the first complete list.
import type { Logger } from '../../telemetry/logger.js';
import { EntriesTrafficSource, type EntryValue } from '../traffic-entries.js';
import { configPrefix } from './layout.js';
import {
  PrefixWatch,
  sourcePrefix,
  type FailureInfo,
  type PrefixEvent,
  type PrefixSourceOptions,
  type PrefixWatchStatus,
} from './prefix-watch.js';
import { etcdFlags } from './options.js';
import type { KeyValue } from './state.js';

export type EtcdTrafficSourceOptions = PrefixSourceOptions;

export interface EtcdTrafficStatus extends PrefixWatchStatus {
  /** Keys under `<prefix>config/`. */
  readonly keys: number;
  /** Configurations published (first load included). */
  readonly updates: number;
}

export class EtcdTrafficSource extends EntriesTrafficSource {
  /** `<prefix>config/` */
  readonly root: string;
  private readonly watcher: PrefixWatch;
  private started = false;
  /** Why the last attempt to read `<prefix>config/` failed, until a complete list succeeds. */
  private lastFailure: string | undefined;

  constructor(
    private readonly opts: EtcdTrafficSourceOptions,
    logger: Logger,
  ) {
    super('etcd', 'etcd', logger);
    this.root = configPrefix(sourcePrefix(opts));
    this.watcher = new PrefixWatch(this.root, opts, this.log, {
      holds: 'config entries',
      list: (kvs) => this.listed(kvs),
      events: (events) => this.apply(events),
      failed: (info) => this.failed(info),
    });
  }

  /** Where the source looks: `<prefix>config/` on the configured endpoints. */
  describe(): string {
    return this.watcher.describe();
  }

  status(): EtcdTrafficStatus {
    return { ...this.watcher.status(), keys: this.entries.size, updates: this.updates };
  }

  /** Why `<prefix>config/` cannot be read now (for /ready, status, /v1/config/errors). */
  failure(): string | undefined {
    return this.lastFailure;
  }

  /** Resolves after the first list attempt, successful or not (retries continue). */
  async start(): Promise<void> {
    if (this.started) throw new Error('EtcdTrafficSource already started');
    if (this.stopped) throw new Error('EtcdTrafficSource was stopped; create a new one');
    this.started = true;
    this.log.info({ etcd: this.opts.endpoints, root: this.root }, 'watching etcd config entries');
    await this.watcher.start();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopPublishing();
    await this.watcher.stop();
  }

  /** A complete list: replaces every entry, published at once. */
  private listed(kvs: readonly KeyValue[]): void {
    if (this.stopped) return;
    this.lastFailure = undefined;
    const keys = new Set<string>();
    for (const kv of kvs) {
      keys.add(kv.key);
      this.entries.set(kv.key, this.decode(kv));
    }
    for (const key of this.entries.keys()) if (!keys.has(key)) this.entries.delete(key);
    this.publishNow();
  }

  private apply(events: readonly PrefixEvent[]): void {
    let changed = false;
    for (const { type, kv } of events) {
      changed =
        (type === 'delete'
          ? this.entries.delete(kv.key)
          : this.entries.set(kv.key, this.decode(kv))) || changed;
    }
    // Coalesce a burst of responses into one build.
    if (changed) this.schedulePublish();
  }

  /** One key: its kind and name from the key, the entry from the value. */
  private decode(kv: KeyValue): EntryValue {
    const parts = kv.key.slice(this.root.length).split('/');
    const [kind = '', name = ''] = parts;
    const base = { kind, name, text: kv.value, origin: kv.key };
    if (parts.length !== 2 || kind === '' || name === '') {
      return {
        ...base,
        name: parts.slice(1).join('/'),
        raw: undefined,
        problem: `expected a key ${this.root}<kind>/<name>`,
      };
    }
    let doc: unknown;
    try {
      doc = JSON.parse(kv.value);
    } catch (err) {
      return { ...base, raw: undefined, problem: `not JSON: ${(err as Error).message}` };
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
      return {
        ...base,
        raw: doc,
        problem: `expected a JSON object (one entry), got ${JSON.stringify(doc).slice(0, 80)}`,
      };
    }
    const entry = doc as Record<string, unknown>;
    for (const [field, fromKey] of [
      ['Kind', kind],
      ['Name', name],
    ] as const) {
      if (field in entry && entry[field] !== fromKey) {
        return {
          ...base,
          raw: doc,
          problem:
            `${field}: ${JSON.stringify(entry[field])} does not match the ` +
            `${field.toLowerCase()} in the key (${JSON.stringify(field === 'Kind' ? kind : name)})`,
        };
      }
    }
    return { ...base, raw: { ...entry, Kind: kind, Name: name } };
  }

  protected override publishFields(): Record<string, unknown> {
    return { revision: this.watcher.status().revision };
  }

  private failed(info: FailureInfo): void {
    if (this.stopped) return;
    const { detail, failures } = info;
    const state = this.current()
      ? 'keeping the last good traffic configuration'
      : 'no traffic configuration yet';
    this.log.warn(
      { endpoints: this.opts.endpoints, root: this.root, error: detail, failures },
      `etcd unreachable or watch interrupted; ${state}; retrying`,
    );
    this.lastFailure = `${this.describe()}: ${detail}; retrying`;
  }
}

/**
 * The traffic source for `serve --source etcd`, from the etcd flags the catalog uses (--etcd,
 * --etcd-prefix, TLS, --etcd-user/--etcd-password); entries under `<--etcd-prefix>config/`.
 * No flag of its own. Throws EtcdFlagError naming the flag and the value.
 */
export function etcdTrafficSourceFromFlags(
  flags: Record<string, unknown>,
  logger: Logger,
): EtcdTrafficSource {
  const { connection, prefix } = etcdFlags(flags);
  return new EtcdTrafficSource({ ...connection, prefix }, logger);
}
