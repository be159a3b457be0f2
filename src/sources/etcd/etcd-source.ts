// Discovery from etcd: instances and service settings under `<prefix>services/` (key layout in
// layout.ts and docs/etcd.md) become the catalog.
//
// Protocol: a full range read of the prefix (paginated, every page pinned to the revision of
// the first, so the list is one consistent snapshot at revision R), then one watch from R+1 on
// a fresh gRPC stream. Everything after R arrives as watch events, in revision order, exactly
// once. When the watch ends for any reason (etcd says the revision was compacted, the stream
// breaks because etcd restarted or the network went away, a keepalive ping goes unanswered)
// the source starts over with a new list and a watch from the new revision: the list replaces
// the whole state, so nothing missed in between survives and nothing is applied twice. Events
// at or below the revision already applied are ignored as a second safety net.
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
// catalog is unaffected.
import { setTimeout as sleep } from 'node:timers/promises';
import { Range, type Etcd3, type IKeyValue, type IWatchResponse } from 'etcd3';
import type { Catalog } from '../../catalog/model.js';
import type { Logger } from '../../telemetry/logger.js';
import type { CatalogSink, DiscoverySource } from '../source.js';
import { createEtcdClient, describeEtcdError, type EtcdConnectionOptions } from './client.js';
import { DEFAULT_ETCD_PREFIX, normalizePrefix, servicesPrefix } from './layout.js';
import { buildCatalog, decodeEntry, entryProblem, type Entry, type KeyValue } from './state.js';

export interface EtcdSourceOptions extends EtcdConnectionOptions {
  /** Key prefix, default "/lucid-mesh/" (a missing trailing "/" is added). */
  readonly prefix?: string;
  /** First retry delay after a failure, default 250 ms. */
  readonly retryMinMs?: number;
  /** Longest retry delay, default 3000 ms. */
  readonly retryMaxMs?: number;
  /** While etcd stays unreachable, repeat sink.error at most this often. Default 30 s. */
  readonly errorReportIntervalMs?: number;
  /** Keys per page of the list. Default 1000. */
  readonly pageSize?: number;
  /**
   * Test seam: runs after every complete list, before the watch starts (a test compacts etcd
   * here to exercise the compacted-watch path). Not for production use.
   */
  readonly afterList?: (revision: number) => Promise<void>;
}

/** What the source has done so far; for logs, tests and diagnostics. */
export interface EtcdSourceStatus {
  /** A list has completed and its watch is established. */
  readonly watching: boolean;
  /** The etcd revision the current state reflects (0 before the first list). */
  readonly revision: number;
  /** Complete lists so far (1 + re-lists). */
  readonly lists: number;
  /** Watch events applied so far. */
  readonly events: number;
  /** Watches that ended because their start revision was compacted. */
  readonly compactions: number;
  /** Failed attempts since the last success. */
  readonly failures: number;
}

type WatchEnd =
  | { readonly kind: 'stopped' }
  | { readonly kind: 'compacted'; readonly compactRevision: number }
  | { readonly kind: 'failed'; readonly error: Error };

export class EtcdSource implements DiscoverySource {
  readonly name = 'etcd';

  private readonly prefix: string;
  private readonly root: string;
  private readonly range: Range;
  private readonly log: Logger;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  private readonly errorReportIntervalMs: number;
  private readonly pageSize: number;

  private client: Etcd3 | undefined;
  private sink: CatalogSink | undefined;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private readonly stopController = new AbortController();
  private endWatch: ((end: WatchEnd) => void) | undefined;

  private entries = new Map<string, Entry>();
  private revision = 0;
  private watching = false;
  private lists = 0;
  private events = 0;
  private compactions = 0;
  private failures = 0;
  private failingSince = 0;
  private lastCompactionAt = 0;
  private lastReportAt = 0;
  private deliverTimer: NodeJS.Immediate | undefined;
  /** JSON of the catalog last given to the sink. */
  private delivered: string | undefined;
  /** key → problem of keys skipped by buildCatalog at the last delivery (logged on change). */
  private skipped = new Map<string, string>();

  constructor(
    private readonly opts: EtcdSourceOptions,
    logger: Logger,
  ) {
    this.prefix = normalizePrefix(opts.prefix ?? DEFAULT_ETCD_PREFIX);
    this.root = servicesPrefix(this.prefix);
    this.range = Range.prefix(this.root);
    this.log = logger.child({ source: 'etcd' });
    this.retryMinMs = opts.retryMinMs ?? 250;
    this.retryMaxMs = Math.max(this.retryMinMs, opts.retryMaxMs ?? 3_000);
    this.errorReportIntervalMs = opts.errorReportIntervalMs ?? 30_000;
    this.pageSize = opts.pageSize ?? 1_000;
  }

  /** Where the source looks: `<prefix>services/` on the configured endpoints. */
  describe(): string {
    return `etcd ${this.opts.endpoints.join(',')} ${this.root}`;
  }

  status(): EtcdSourceStatus {
    return {
      watching: this.watching,
      revision: this.revision,
      lists: this.lists,
      events: this.events,
      compactions: this.compactions,
      failures: this.failures,
    };
  }

  /** Resolves after the first list attempt, successful or not (retries continue in the background). */
  async start(sink: CatalogSink): Promise<void> {
    if (this.sink) throw new Error('EtcdSource already started');
    if (this.stopped) throw new Error('EtcdSource was stopped; create a new one');
    this.sink = sink;
    this.client = createEtcdClient(this.opts);
    let firstAttempt!: () => void;
    const attempted = new Promise<void>((resolve) => (firstAttempt = resolve));
    this.loop = this.run(firstAttempt);
    await attempted;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.stopController.abort();
    this.endWatch?.({ kind: 'stopped' });
    if (this.deliverTimer) clearImmediate(this.deliverTimer);
    this.client?.close();
    // An in-flight call ends with the closed client or at its deadline; no sink call happens
    // after `stopped` is set either way, so do not wait for it for long.
    await Promise.race([this.loop, sleep(1_000, undefined, { ref: false })]);
    this.sink = undefined;
  }

  private async run(firstAttempt: () => void): Promise<void> {
    let delay = this.retryMinMs;
    while (!this.stopped) {
      let end: WatchEnd;
      try {
        await this.list();
        if (this.stopped) break;
        firstAttempt();
        await this.opts.afterList?.(this.revision);
        end = await this.watch();
      } catch (err) {
        end = { kind: 'failed', error: err instanceof Error ? err : new Error(String(err)) };
      }
      // Back off from scratch only after a watch that worked: a list that succeeds followed by
      // a watch that fails at once (e.g. no permission to watch) keeps backing off.
      if (this.watching) delay = this.retryMinMs;
      this.watching = false;
      firstAttempt();
      if (this.stopped || end.kind === 'stopped') break;
      if (end.kind === 'compacted') {
        // Not a failure: etcd no longer has the history the watch needs. Re-list right away
        // (after a short pause if that already happened just before, to never spin).
        this.compactions++;
        this.log.info(
          { revision: this.revision, compactRevision: end.compactRevision },
          'etcd watch revision was compacted; re-listing',
        );
        const again = Date.now() - this.lastCompactionAt < 1_000;
        this.lastCompactionAt = Date.now();
        if (again) await this.pause(this.retryMinMs);
        continue;
      }
      this.failed(end.error);
      await this.pause(delay * (0.5 + Math.random() / 2));
      delay = Math.min(delay * 2, this.retryMaxMs);
    }
  }

  /** Sleeps `ms`, or less if the source is stopped meanwhile. */
  private async pause(ms: number): Promise<void> {
    try {
      await sleep(ms, undefined, { signal: this.stopController.signal });
    } catch {
      // stopped
    }
  }

  /** One consistent snapshot of the prefix; replaces the whole state and delivers it. */
  private async list(): Promise<void> {
    const client = this.client!;
    const kvs: IKeyValue[] = [];
    let from = this.range.start;
    let revision = 0;
    for (;;) {
      const res = await client.kv.range({
        key: from,
        range_end: this.range.end,
        limit: this.pageSize,
        ...(revision ? { revision } : {}),
      });
      if (!revision) revision = Number(res.header.revision);
      kvs.push(...res.kvs);
      const last = res.kvs[res.kvs.length - 1];
      if (!res.more || !last) break;
      from = Buffer.concat([last.key, Buffer.from([0])]);
    }
    if (this.stopped) return;

    const previous = this.entries;
    const entries = new Map<string, Entry>();
    for (const raw of kvs) {
      const kv = toKeyValue(raw);
      const entry = decodeEntry(this.prefix, kv);
      if (!entry) continue;
      entries.set(kv.key, entry);
      // Logged once per revision of a key, not again on every re-list.
      if (previous.get(kv.key)?.kv.modRevision !== kv.modRevision) this.logProblem(entry);
    }
    this.entries = entries;
    this.revision = revision;
    this.lists++;
    this.log.debug(
      { revision, keys: entries.size, lists: this.lists },
      'etcd prefix listed; watching from the next revision',
    );
    if (this.deliverTimer) clearImmediate(this.deliverTimer);
    this.deliverTimer = undefined;
    this.deliver(true);
  }

  /** Watches from revision+1 until the watch ends; applies events as they arrive. */
  private async watch(): Promise<WatchEnd> {
    const stream = await this.client!.watchClient.watch();
    return new Promise<WatchEnd>((resolve) => {
      let done = false;
      const finish = (end: WatchEnd): void => {
        if (done) return;
        done = true;
        this.endWatch = undefined;
        try {
          stream.cancel();
        } catch {
          // already closed
        }
        resolve(end);
      };
      this.endWatch = finish;
      if (this.stopped) {
        finish({ kind: 'stopped' });
        return;
      }
      stream.on('data', (res: IWatchResponse) => {
        if (done) return;
        const compactRevision = Number(res.compact_revision ?? 0);
        if (compactRevision > 0) {
          finish({ kind: 'compacted', compactRevision });
        } else if (res.canceled) {
          finish({
            kind: 'failed',
            error: new Error(`watch canceled by etcd: ${res.cancel_reason || 'no reason given'}`),
          });
        } else if (res.created) {
          this.watching = true;
          this.recovered();
        } else {
          this.apply(res);
        }
      });
      stream.on('error', (err: Error) => finish({ kind: 'failed', error: err }));
      stream.on('end', () => finish({ kind: 'failed', error: new Error('watch stream ended') }));
      stream.write({
        create_request: {
          key: this.range.start,
          range_end: this.range.end,
          start_revision: this.revision + 1,
          progress_notify: true,
        },
      });
    });
  }

  private apply(res: IWatchResponse): void {
    // All events of one revision (one transaction) arrive in the same response.
    const base = this.revision;
    let changed = false;
    for (const event of res.events ?? []) {
      const kv = toKeyValue(event.kv);
      if (kv.modRevision <= base) continue; // already part of the state
      this.revision = Math.max(this.revision, kv.modRevision);
      this.events++;
      if (event.type === 'Delete') {
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
        revision: this.revision,
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

  private failed(error: Error): void {
    if (this.stopped) return;
    const now = Date.now();
    this.failures++;
    const detail = describeEtcdError(error);
    if (this.failures === 1) this.failingSince = now;
    const first = this.failures === 1;
    if (first || now - this.lastReportAt >= this.errorReportIntervalMs) {
      this.lastReportAt = now;
      const since = first ? '' : ` (failing for ${Math.round((now - this.failingSince) / 1000)}s)`;
      const state = this.lists > 0 ? 'serving the last good catalog' : 'no catalog yet (not ready)';
      this.log.warn(
        { endpoints: this.opts.endpoints, error: detail, failures: this.failures },
        `etcd unreachable or watch interrupted; ${state}; retrying`,
      );
      this.report(new Error(`${this.describe()}: ${detail}; ${state}; retrying${since}`));
    } else {
      this.log.debug({ error: detail, failures: this.failures }, 'etcd retry failed');
    }
  }

  private recovered(): void {
    if (this.failures === 0) return;
    this.log.info(
      {
        failures: this.failures,
        downMs: Date.now() - this.failingSince,
        revision: this.revision,
      },
      'etcd reachable again; catalog re-listed, watching again',
    );
    this.failures = 0;
    this.lastReportAt = 0;
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

function toKeyValue(kv: IKeyValue): KeyValue {
  return {
    key: kv.key.toString('utf8'),
    value: kv.value.toString('utf8'),
    createRevision: Number(kv.create_revision),
    modRevision: Number(kv.mod_revision),
  };
}
