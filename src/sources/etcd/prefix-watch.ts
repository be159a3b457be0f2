// Following one etcd key range (a prefix) reliably: the list + watch loop shared by the catalog
// source (`<prefix>services/`) and the traffic configuration (`<prefix>config/`).
//
// Protocol: a full range read of the prefix (paginated, every page pinned to the revision of
// the first, so the list is one consistent snapshot at revision R), then one watch from R+1 on
// a fresh gRPC stream. Everything after R arrives as watch events, in revision order, exactly
// once. When the watch ends for any reason (etcd says the revision was compacted, the stream
// breaks because etcd restarted or the network went away, a keepalive ping goes unanswered)
// the loop starts over with a new list and a watch from the new revision: the list replaces
// the whole state, so nothing missed in between survives and nothing is applied twice. Events
// at or below the revision already applied are ignored as a second safety net.
//
// Retries back off exponentially with jitter (`retryMinMs` .. `retryMaxMs`); a compaction is
// not a failure (re-listed at once, after a short pause if it just happened). Failures are
// handed to the owner to report: the first failure, then at most every `errorReportIntervalMs`
// while it lasts (the others are logged at debug level); the recovery is logged here.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Etcd3, IKeyValue, IWatchResponse, Range } from 'etcd3';
import type { Logger } from '../../telemetry/logger.js';
import {
  createEtcdClient,
  describeEtcdError,
  loadEtcd3,
  type EtcdConnectionOptions,
} from './client.js';
import { DEFAULT_ETCD_PREFIX, normalizePrefix } from './layout.js';
import type { KeyValue } from './state.js';

export interface PrefixWatchOptions extends EtcdConnectionOptions {
  /** First retry delay after a failure, default 250 ms. */
  readonly retryMinMs?: number;
  /** Longest retry delay, default 3000 ms. */
  readonly retryMaxMs?: number;
  /** While etcd stays unreachable, `report` at most this often. Default 30 s. */
  readonly errorReportIntervalMs?: number;
  /** Keys per page of the list. Default 1000. */
  readonly pageSize?: number;
  /**
   * Test seam: runs after every complete list, before the watch starts (a test compacts etcd
   * here to exercise the compacted-watch path). Not for production use.
   */
  readonly afterList?: (revision: number) => Promise<void>;
}

/** Options of a source following one range under the lucid-mesh key prefix. */
export interface PrefixSourceOptions extends PrefixWatchOptions {
  /** Key prefix, default "/lucid-mesh/" (a missing trailing "/" is added). */
  readonly prefix?: string;
}

/** The key prefix of `opts`, normalised (ends with "/"). */
export function sourcePrefix(opts: PrefixSourceOptions): string {
  return normalizePrefix(opts.prefix ?? DEFAULT_ETCD_PREFIX);
}

/** What the loop has done so far; for logs, tests and diagnostics. */
export interface PrefixWatchStatus {
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

export interface PrefixEvent {
  readonly type: 'put' | 'delete';
  readonly kv: KeyValue;
}

export interface FailureInfo {
  /** describeEtcdError of the error. */
  readonly detail: string;
  /** Failed attempts since the last success (1 = the first). */
  readonly failures: number;
  /** Since when it has been failing, ms epoch. */
  readonly failingSince: number;
}

export interface PrefixWatchHandlers {
  /** What the range holds, for logs: "catalog" → "etcd reachable again; catalog re-listed…". */
  readonly holds: string;
  /** A complete list of the range at `revision`: replaces the whole state. */
  list(kvs: readonly KeyValue[], revision: number): void;
  /** The events of one watch response that are newer than the state, in revision order. */
  events(events: readonly PrefixEvent[]): void;
  /**
   * A list or watch failed and it is time to say so: the first failure, then at most every
   * `errorReportIntervalMs` (the failures in between are logged at debug level). The loop
   * retries after a backoff.
   */
  failed(info: FailureInfo): void;
}

type WatchEnd =
  | { readonly kind: 'stopped' }
  | { readonly kind: 'compacted'; readonly compactRevision: number }
  | { readonly kind: 'failed'; readonly error: Error };

export class PrefixWatch {
  private readonly range: Range;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  private readonly errorReportIntervalMs: number;
  private readonly pageSize: number;

  private client: Etcd3 | undefined;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private readonly stopController = new AbortController();
  private endWatch: ((end: WatchEnd) => void) | undefined;

  private revision = 0;
  private watching = false;
  private lists = 0;
  private events = 0;
  private compactions = 0;
  private failures = 0;
  private failingSince = 0;
  private lastCompactionAt = 0;
  private lastReportAt = 0;

  constructor(
    /** The range: every key starting with this. */
    readonly root: string,
    private readonly opts: PrefixWatchOptions,
    private readonly log: Logger,
    private readonly handlers: PrefixWatchHandlers,
  ) {
    this.range = loadEtcd3().Range.prefix(root);
    this.retryMinMs = opts.retryMinMs ?? 250;
    this.retryMaxMs = Math.max(this.retryMinMs, opts.retryMaxMs ?? 3_000);
    this.errorReportIntervalMs = opts.errorReportIntervalMs ?? 30_000;
    this.pageSize = opts.pageSize ?? 1_000;
  }

  /** Where the loop looks: "etcd <endpoints> <root>". */
  describe(): string {
    return `etcd ${this.opts.endpoints.join(',')} ${this.root}`;
  }

  status(): PrefixWatchStatus {
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
  async start(): Promise<void> {
    if (this.client) throw new Error('PrefixWatch already started');
    if (this.stopped) throw new Error('PrefixWatch was stopped; create a new one');
    this.client = createEtcdClient(this.opts);
    let firstAttempt!: () => void;
    const attempted = new Promise<void>((resolve) => (firstAttempt = resolve));
    this.loop = this.run(firstAttempt);
    await attempted;
  }

  /** No handler is called after this. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.stopController.abort();
    this.endWatch?.({ kind: 'stopped' });
    this.client?.close();
    // An in-flight call ends with the closed client or at its deadline; no handler is called
    // after `stopped` is set either way, so do not wait for it for long.
    await Promise.race([this.loop, sleep(1_000, undefined, { ref: false })]);
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

  /** Sleeps `ms`, or less if stopped meanwhile. */
  private async pause(ms: number): Promise<void> {
    try {
      await sleep(ms, undefined, { signal: this.stopController.signal });
    } catch {
      // stopped
    }
  }

  /** One consistent snapshot of the range, handed over whole. */
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
    this.revision = revision;
    this.lists++;
    this.log.debug(
      { root: this.root, revision, keys: kvs.length, lists: this.lists },
      'etcd prefix listed; watching from the next revision',
    );
    this.handlers.list(kvs.map(toKeyValue), revision);
  }

  /** Watches from revision+1 until the watch ends; hands over events as they arrive. */
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
    const events: PrefixEvent[] = [];
    for (const event of res.events ?? []) {
      const kv = toKeyValue(event.kv);
      if (kv.modRevision <= base) continue; // already part of the state
      this.revision = Math.max(this.revision, kv.modRevision);
      this.events++;
      events.push({ type: event.type === 'Delete' ? 'delete' : 'put', kv });
    }
    if (events.length > 0 && !this.stopped) this.handlers.events(events);
  }

  private failed(error: Error): void {
    if (this.stopped) return;
    const now = Date.now();
    this.failures++;
    if (this.failures === 1) this.failingSince = now;
    const detail = describeEtcdError(error);
    if (this.failures > 1 && now - this.lastReportAt < this.errorReportIntervalMs) {
      this.log.debug({ error: detail, failures: this.failures }, 'etcd retry failed');
      return;
    }
    this.lastReportAt = now;
    this.handlers.failed({ detail, failures: this.failures, failingSince: this.failingSince });
  }

  private recovered(): void {
    if (this.failures === 0) return;
    const info = {
      failures: this.failures,
      downMs: Date.now() - this.failingSince,
      revision: this.revision,
    };
    this.failures = 0;
    this.lastReportAt = 0;
    if (!this.stopped) {
      this.log.info(info, `etcd reachable again; ${this.handlers.holds} re-listed, watching again`);
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
