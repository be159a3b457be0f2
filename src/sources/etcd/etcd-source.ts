// Discovery from etcd: instances and service settings under `<prefix>services/` (key layout in
// layout.ts and docs/etcd.md) become the catalog.
//
// Protocol (prefix-watch.ts): a full range read of the prefix (paginated, every page pinned to
// the revision of the first, so the list is one consistent snapshot at revision R), then one
// watch from R+1 on a fresh gRPC stream. Everything after R arrives as watch events, in
// revision order, exactly once. When the watch ends for any reason (etcd says the revision was
// compacted, the stream breaks because etcd restarted or the network went away, a keepalive
// ping goes unanswered) the source starts over with a new list and a watch from the new
// revision: the list replaces the whole state, so nothing missed in between survives and
// nothing is applied twice.
//
// Failure behaviour: the sink gets its first update only after a complete list. While etcd is
// unreachable the sink is told (sink.error, the first failure at once, then at most every
// `errorReportIntervalMs`) and nothing else: the last good catalog stays in force, and a
// failure never produces an empty catalog. Retries back off exponentially with jitter
// (`retryMinMs` .. `retryMaxMs`), and the first complete list after an outage is delivered
// (which also tells the sink the source is healthy again).
//
// A bad value (not JSON, fails the catalog schema, id not matching its key...) is logged once
// per revision of its key, naming the key and the problem, and left out; the rest of the
// catalog is unaffected. problems() lists such keys for status and /v1/config/errors.
import type { Catalog } from '../../catalog/model.js';
import type { Logger } from '../../telemetry/logger.js';
import type { ConfigProblem } from '../../traffic/provider.js';
import type { CatalogSink, DiscoverySource } from '../source.js';
import { servicesPrefix } from './layout.js';
import {
  PrefixWatch,
  sourcePrefix,
  type FailureInfo,
  type PrefixEvent,
  type PrefixSourceOptions,
  type PrefixWatchStatus,
} from './prefix-watch.js';
import { buildCatalog, decodeEntry, entryProblem, type Entry, type KeyValue } from './state.js';

export type EtcdSourceOptions = PrefixSourceOptions;

/** What the source has done so far; for logs, tests and diagnostics. */
export type EtcdSourceStatus = PrefixWatchStatus;

export class EtcdSource implements DiscoverySource {
  readonly name = 'etcd';

  private readonly prefix: string;
  private readonly root: string;
  private readonly log: Logger;
  private readonly watcher: PrefixWatch;

  private sink: CatalogSink | undefined;
  private stopped = false;

  private entries = new Map<string, Entry>();
  private deliverTimer: NodeJS.Immediate | undefined;
  /** JSON of the catalog last given to the sink. */
  private delivered: string | undefined;
  /** key → problem of keys skipped by buildCatalog at the last delivery (logged on change). */
  private skipped = new Map<string, string>();

  constructor(
    private readonly opts: EtcdSourceOptions,
    logger: Logger,
  ) {
    this.prefix = sourcePrefix(opts);
    this.root = servicesPrefix(this.prefix);
    this.log = logger.child({ source: 'etcd' });
    this.watcher = new PrefixWatch(this.root, opts, this.log, {
      holds: 'catalog',
      list: (kvs) => this.listed(kvs),
      events: (events) => this.apply(events),
      failed: (info) => this.failed(info),
    });
  }

  /** Where the source looks: `<prefix>services/` on the configured endpoints. */
  describe(): string {
    return this.watcher.describe();
  }

  status(): EtcdSourceStatus {
    return this.watcher.status();
  }

  /**
   * Keys left out of the catalog now: bad values and the clashes buildCatalog skipped, each
   * named by its key (kind etcd-key), as of the last delivered catalog.
   */
  problems(): ConfigProblem[] {
    const problems: ConfigProblem[] = [];
    for (const entry of this.entries.values()) {
      const problem = entryProblem(entry);
      if (problem !== undefined)
        problems.push({ kind: 'etcd-key', name: entry.kv.key, message: problem });
    }
    for (const [key, problem] of this.skipped) {
      problems.push({ kind: 'etcd-key', name: key, message: problem });
    }
    return problems.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Resolves after the first list attempt, successful or not (retries continue in the background). */
  async start(sink: CatalogSink): Promise<void> {
    if (this.sink) throw new Error('EtcdSource already started');
    if (this.stopped) throw new Error('EtcdSource was stopped; create a new one');
    this.sink = sink;
    await this.watcher.start();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.deliverTimer) clearImmediate(this.deliverTimer);
    await this.watcher.stop();
    this.sink = undefined;
  }

  /** One consistent snapshot of the prefix; replaces the whole state and delivers it. */
  private listed(kvs: readonly KeyValue[]): void {
    if (this.stopped) return;
    const previous = this.entries;
    const entries = new Map<string, Entry>();
    for (const kv of kvs) {
      const entry = decodeEntry(this.prefix, kv);
      if (!entry) continue;
      entries.set(kv.key, entry);
      // Logged once per revision of a key, not again on every re-list.
      if (previous.get(kv.key)?.kv.modRevision !== kv.modRevision) this.logProblem(entry);
    }
    this.entries = entries;
    if (this.deliverTimer) clearImmediate(this.deliverTimer);
    this.deliverTimer = undefined;
    this.deliver(true);
  }

  private apply(events: readonly PrefixEvent[]): void {
    let changed = false;
    for (const { type, kv } of events) {
      if (type === 'delete') {
        changed = this.entries.delete(kv.key) || changed;
        continue;
      }
      const entry = decodeEntry(this.prefix, kv);
      if (!entry) continue;
      this.entries.set(kv.key, entry);
      this.logProblem(entry);
      changed = true;
    }
    // Coalesce a burst of responses into one catalog build.
    if (changed && !this.deliverTimer) {
      this.deliverTimer = setImmediate(() => {
        this.deliverTimer = undefined;
        this.deliver(false);
      });
    }
  }

  /** Builds the catalog; gives it to the sink if it changed (or always, after a list). */
  private deliver(afterList: boolean): void {
    if (this.stopped) return;
    let catalog: Catalog;
    let skipped: { key: string; problem: string }[];
    try {
      ({ catalog, skipped } = buildCatalog(this.entries.values()));
    } catch (err) {
      // Cannot happen with the rules in buildCatalog; if it does, keep the last good catalog.
      const error = err instanceof Error ? err : new Error(String(err));
      this.log.error({ err: error }, 'etcd state does not form a valid catalog; keeping the last');
      this.report(new Error(`${this.describe()}: invalid catalog: ${error.message}`));
      return;
    }
    const now = new Map(skipped.map((s) => [s.key, s.problem]));
    for (const [key, problem] of now) {
      if (this.skipped.get(key) !== problem) this.log.warn({ key, problem }, 'etcd key skipped');
    }
    this.skipped = now;

    const json = JSON.stringify(catalog);
    if (!afterList && json === this.delivered) return;
    this.delivered = json;
    this.log.info(
      {
        revision: this.watcher.status().revision,
        services: catalog.services.length,
        instances: catalog.services.reduce((n, s) => n + s.instances.length, 0),
      },
      afterList ? 'etcd catalog listed' : 'etcd catalog changed',
    );
    try {
      this.sink?.update(catalog);
    } catch (err) {
      this.log.error({ err }, 'catalog sink failed to apply an update');
    }
  }

  private logProblem(entry: Entry): void {
    const problem = entryProblem(entry);
    if (problem === undefined) return;
    this.log.warn(
      { key: entry.kv.key, revision: entry.kv.modRevision, problem },
      'etcd key skipped: bad value',
    );
  }

  private failed(info: FailureInfo): void {
    if (this.stopped) return;
    const { detail, failures } = info;
    const since =
      failures === 1
        ? ''
        : ` (failing for ${Math.round((Date.now() - info.failingSince) / 1000)}s)`;
    const state =
      this.watcher.status().lists > 0
        ? 'serving the last good catalog'
        : 'no catalog yet (not ready)';
    this.log.warn(
      { endpoints: this.opts.endpoints, error: detail, failures },
      `etcd unreachable or watch interrupted; ${state}; retrying`,
    );
    this.report(new Error(`${this.describe()}: ${detail}; ${state}; retrying${since}`));
  }

  private report(err: Error): void {
    if (this.stopped) return;
    try {
      this.sink?.error(err);
    } catch (e) {
      this.log.error({ err: e }, 'catalog sink failed to handle an error');
    }
  }
}
