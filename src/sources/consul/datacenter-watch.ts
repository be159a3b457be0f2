// The watches of one Consul datacenter (consul-source.ts runs one per datacenter, all through
// the local agent; a remote one is read with `?dc=<name>`, Consul forwards across WAN
// federation):
// - `/v1/catalog/services`: which services exist;
// - `/v1/health/service/<name>` per service: a blocking query of its own while the
//   datacenter's share of the connection budget allows (budget.ts), else "overflow": a
//   blocking query on the checks index (`/v1/health/state/any`, filtered to an empty body) and
//   every change of the service list trigger a refetch of the overflow services (non-blocking,
//   a few at a time, rate-limited).
// - Requests that fail keep their service's last good entries, retried with backoff.
// - A remote datacenter whose service list cannot be read keeps its last good entries until
//   `staleAfterMs` after its last successful read (an open blocking query counts as reading
//   until it fails), then drops them (so failover does not point into the void) until it has
//   been read completely again.
import { setMaxListeners } from 'node:events';
import type { Logger } from '../../telemetry/logger.js';
import type { ConsulClient, ConsulHealthEntry, ConsulRequestError } from './client.js';
import { IGNORED_SERVICES } from './mapping.js';
import { BlockingWatch, type TokenBucket } from './watch.js';

/** While failing, `report` at most this often (per datacenter). */
const ERROR_REPORT_INTERVAL_MS = 5_000;
const LIST = 'catalog/services';
const TRIGGER = 'health/state/any';

/** What a datacenter's watches share with the source that runs them. */
export interface DatacenterHost {
  readonly client: ConsulClient;
  readonly limiter: TokenBucket;
  readonly log: Logger;
  readonly waitMs: number;
  readonly backoffMinMs: number;
  readonly backoffMaxMs: number;
  /** A service list changed: split the connection budget again (calls setLimit). */
  rebalance(): void;
  /** Entries or state changed: rebuild the catalog soon. */
  changed(): void;
  /** A failure for the sink (the control plane's source-error metric, log, /ready detail). */
  report(err: Error): void;
  /** Every watch of this datacenter answers again after failures. */
  healthy?(dc: DatacenterWatch): void;
  /** The service list was read successfully. */
  listed(dc: DatacenterWatch): void;
  /**
   * Consul answers again after a lost connection, a timeout or no leader, or its index went
   * backwards: the agent may have restarted (restart-grace.ts). Called before the entries of
   * that answer are taken in.
   */
  reconnected(dc: DatacenterWatch, why: 'reconnected' | 'index-reset'): void;
}

/** Failures that mean the agent (or its leader) was gone, not that one request was bad. */
const CONNECTION_LOST: ReadonlySet<ConsulRequestError['kind']> = new Set([
  'unreachable',
  'timeout',
  'no-leader',
]);

export interface DatacenterWatchOptions {
  /** Its name; the local one's may be unknown at first (setName). */
  readonly name: string | undefined;
  readonly local: boolean;
  /** `?dc=` on every request; undefined: the connection's datacenter (the local one). */
  readonly dcParam: string | undefined;
  readonly refetchConcurrency: number;
  /** Remote only: how long its last good entries outlive its reachability. */
  readonly staleAfterMs?: number;
}

export interface ConsulDatacenterStats {
  readonly local: boolean;
  /** In the catalog: read completely (since it was dropped, if it was). */
  readonly synced: boolean;
  /** Its service list reads succeed. */
  readonly reachable: boolean;
  /** Remote, unreachable longer than --remote-stale-after: its instances are left out. */
  readonly dropped: boolean;
  /** When a request to it last succeeded (ms since the epoch). */
  readonly lastSuccessAt?: number;
  readonly services: number;
  readonly dedicatedWatches: number;
  readonly overflowServices: number;
  readonly failingWatches: number;
}

export class DatacenterWatch {
  readonly local: boolean;
  private nameValue: string | undefined;
  private readonly dcParam: string | undefined;
  private readonly host: DatacenterHost;
  private readonly refetchConcurrency: number;
  private readonly staleAfterMs: number | undefined;
  private readonly abort = new AbortController();
  private stopped = false;

  private listWatch: BlockingWatch<Record<string, string[]>> | undefined;
  /** Service names listed by the last good read of the list. */
  listed: Set<string> | undefined;
  private readonly dedicated = new Map<string, BlockingWatch<ConsulHealthEntry[]>>();
  private readonly overflow = new Set<string>();
  private limit = 0;
  private trigger: BlockingWatch<unknown[]> | undefined;
  private refetching: Promise<void> | undefined;
  private refetchAgain = false;
  private overflowLogged = false;

  /** Last good health entries per service name. */
  readonly entries = new Map<string, ConsulHealthEntry[]>();
  /** When each listed-but-not-yet-read service was first listed. */
  readonly pendingSince = new Map<string, number>();
  private readonly failing = new Map<string, ConsulRequestError>();
  private lastErrorReport = 0;
  private outageStartedAt: number | undefined;
  private lastSuccess: number | undefined;
  /** When its service list started failing (this outage). */
  private listDownSince: number | undefined;
  private staleTimer: NodeJS.Timeout | undefined;
  /** A request failed with CONNECTION_LOST and none has succeeded since. */
  private connectionLost = false;

  /** Part of the catalog (set by the source when it takes this datacenter in). */
  synced = false;
  /** Dropped for staleness; back when read completely again. */
  dropped = false;
  /** When it was dropped, for the log line when it is back. */
  droppedAt: number | undefined;

  constructor(opts: DatacenterWatchOptions, host: DatacenterHost) {
    this.nameValue = opts.name;
    this.local = opts.local;
    this.dcParam = opts.dcParam;
    this.refetchConcurrency = opts.refetchConcurrency;
    this.staleAfterMs = opts.staleAfterMs;
    this.host = host;
    // The overflow refetch workers wait on this signal (rate limiter, request) concurrently.
    setMaxListeners(4 * this.refetchConcurrency, this.abort.signal);
  }

  get name(): string | undefined {
    return this.nameValue;
  }

  /** The local datacenter's name, once known. */
  setName(name: string): void {
    this.nameValue = name;
  }

  /** Services this datacenter lists (what it would like dedicated watches for). */
  get wanted(): number {
    return this.listed?.size ?? 0;
  }

  /** Services with a blocking query of their own. */
  get dedicatedCount(): number {
    return this.dedicated.size;
  }

  /** Its service list is being read successfully. */
  get reachable(): boolean {
    return this.listed !== undefined && !this.failing.has(LIST);
  }

  /** Its service list read has failed (and not succeeded since). */
  get listFailing(): boolean {
    return this.failing.has(LIST);
  }

  get lastSuccessAt(): number | undefined {
    return this.lastSuccess;
  }

  /** Requests that would go to Consul if every watch were in flight (for messages). */
  private get watchCount(): number {
    return 1 + this.dedicated.size + (this.trigger ? 1 : 0);
  }

  stats(): ConsulDatacenterStats {
    return {
      local: this.local,
      synced: this.synced,
      reachable: this.reachable,
      dropped: this.dropped,
      ...(this.lastSuccess !== undefined ? { lastSuccessAt: this.lastSuccess } : {}),
      services: this.listed?.size ?? 0,
      dedicatedWatches: this.dedicated.size,
      overflowServices: this.overflow.size,
      failingWatches: this.failing.size,
    };
  }

  start(): void {
    this.listWatch = new BlockingWatch({
      name: this.watchName(LIST),
      fetch: (q) => this.host.client.servicesList(this.query(q)),
      waitMs: this.host.waitMs,
      sharedLimiter: this.host.limiter,
      backoffMinMs: this.host.backoffMinMs,
      backoffMaxMs: this.host.backoffMaxMs,
      onData: (body, info) => this.onServiceList(body, info.changed, info.reset),
      onError: (err, failures, retryInMs) => this.onWatchError(LIST, err, failures, retryInMs),
    });
    this.listWatch.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    if (this.staleTimer) clearTimeout(this.staleTimer);
    const watches: Array<{ stop(): Promise<void> }> = [
      ...(this.listWatch ? [this.listWatch] : []),
      ...(this.trigger ? [this.trigger] : []),
      ...this.dedicated.values(),
    ];
    await Promise.all(watches.map((w) => w.stop()));
    await this.refetching;
  }

  /** How many services may have a blocking query of their own (see budget.ts). */
  setLimit(limit: number): void {
    this.limit = Math.max(0, limit);
    if (this.stopped || !this.listed) return;
    // Over the limit (the local datacenter grew): the last services by name go to overflow,
    // refreshed by the change trigger from now on, their entries kept.
    let demoted = false;
    for (const name of [...this.dedicated.keys()].sort().reverse()) {
      if (this.dedicated.size <= this.limit) break;
      const watch = this.dedicated.get(name)!;
      this.dedicated.delete(name);
      this.recovered(`health/${name}`);
      void watch.stop();
      this.overflow.add(name);
      demoted = true;
    }
    // Free slots go to overflow services (names sorted: as good an order as any). A service
    // keeps its slot once it has one, so a new service does not push an old one out.
    for (const name of [...this.overflow].sort()) {
      if (this.dedicated.size >= this.limit) break;
      this.overflow.delete(name);
      this.watchService(name);
    }
    this.updateOverflowMode();
    if (demoted) this.refetchOverflow();
  }

  // --- service list -------------------------------------------------------------------------

  private onServiceList(body: Record<string, string[]>, changed: boolean, reset: boolean): void {
    if (this.stopped) return;
    const listWasFailing = this.failing.has(LIST);
    // One comeback, one grace: a reset seen with the first answer after a lost connection
    // was announced by succeeded() already.
    if (!this.succeeded(LIST) && reset) this.host.reconnected(this, 'index-reset');
    if (reset) {
      this.host.log.warn(
        { consul: this.host.client.address, ...this.dcField() },
        'Consul index went backwards (restarted or a different server); re-reading every service',
      );
      // Their blocking queries wait on indexes from the other history: read again at once.
      for (const watch of this.dedicated.values()) watch.resync();
      this.trigger?.resync();
    }
    if (listWasFailing) {
      // Consul answers again: the others need not wait out their own backoff.
      for (const watch of this.dedicated.values()) if (watch.failing) watch.retryNow();
      if (this.trigger?.failing) this.trigger.retryNow();
    }
    const names = new Set(Object.keys(body ?? {}).filter((n) => !IGNORED_SERVICES.has(n)));
    const previous = this.listed ?? new Set<string>();
    this.listed = names;

    for (const name of previous) {
      if (names.has(name)) continue;
      this.entries.delete(name);
      this.pendingSince.delete(name);
      this.recovered(`health/${name}`); // gone, not failing
      this.overflow.delete(name);
      const watch = this.dedicated.get(name);
      if (watch) {
        this.dedicated.delete(name);
        void watch.stop();
      }
    }
    const now = Date.now();
    for (const name of [...names].sort()) {
      // After a drop, the datacenter comes back with a complete read: from now.
      if (!this.entries.has(name) && (this.dropped || !this.pendingSince.has(name)))
        this.pendingSince.set(name, now);
      if (this.dedicated.has(name) || this.overflow.has(name)) continue;
      this.overflow.add(name); // setLimit (via rebalance) gives it a watch if one is free
    }
    this.host.rebalance();
    this.host.listed(this);
    // A list change may be a registration change the checks index does not show (a new
    // port, say): refresh overflow services too.
    if (this.overflow.size > 0 && (changed || reset)) this.refetchOverflow();
    this.host.changed();
  }

  private watchService(name: string): void {
    const watch = new BlockingWatch<ConsulHealthEntry[]>({
      name: this.watchName(`health/${name}`),
      fetch: (q) => this.host.client.healthService(name, this.query(q)),
      waitMs: this.host.waitMs,
      sharedLimiter: this.host.limiter,
      backoffMinMs: this.host.backoffMinMs,
      backoffMaxMs: this.host.backoffMaxMs,
      onData: (body, info) => {
        if (this.stopped || this.dedicated.get(name) !== watch) return;
        this.succeeded(`health/${name}`);
        if (!info.changed && this.entries.has(name)) return;
        this.setEntries(name, body);
      },
      onError: (err, failures, retryInMs) => {
        if (this.dedicated.get(name) !== watch) return;
        this.onWatchError(`health/${name}`, err, failures, retryInMs);
      },
    });
    this.dedicated.set(name, watch);
    watch.start();
  }

  private setEntries(name: string, body: ConsulHealthEntry[]): void {
    if (!this.listed?.has(name)) return; // deregistered meanwhile
    this.entries.set(name, Array.isArray(body) ? body : []);
    this.pendingSince.delete(name);
    this.host.changed();
  }

  // --- overflow: change trigger + refetch ---------------------------------------------------

  private updateOverflowMode(): void {
    if (this.overflow.size > 0 && !this.trigger) {
      const trigger = new BlockingWatch<unknown[]>({
        name: this.watchName(TRIGGER),
        fetch: (q) => this.host.client.checksIndex(this.query(q)),
        waitMs: this.host.waitMs,
        sharedLimiter: this.host.limiter,
        backoffMinMs: this.host.backoffMinMs,
        backoffMaxMs: this.host.backoffMaxMs,
        // Every answer, changed or not (the wait expired), refreshes the overflow services: a
        // change the indexes do not show (a node's address) is picked up within one `wait`.
        onData: () => {
          if (this.stopped || this.trigger !== trigger) return;
          this.succeeded(TRIGGER);
          this.refetchOverflow();
        },
        onError: (err, failures, retryInMs) => {
          if (this.trigger !== trigger) return;
          this.onWatchError(TRIGGER, err, failures, retryInMs);
        },
      });
      this.trigger = trigger;
      trigger.start();
    } else if (this.overflow.size === 0 && this.trigger) {
      const trigger = this.trigger;
      this.trigger = undefined;
      this.recovered(TRIGGER);
      void trigger.stop();
    }
    const overflowing = this.overflow.size > 0;
    if (overflowing && !this.overflowLogged) {
      this.host.log.warn(
        {
          ...this.dcField(),
          services: this.listed?.size ?? 0,
          dedicatedWatches: this.dedicated.size,
          overflowServices: this.overflow.size,
        },
        `more Consul services than blocking-query connections (--consul-max-connections${this.local ? '' : ', shared across datacenters'}); ` +
          'the rest are refreshed on every change of the checks index or the service list',
      );
    } else if (!overflowing && this.overflowLogged) {
      this.host.log.info(
        { ...this.dcField(), dedicatedWatches: this.dedicated.size },
        'every Consul service has its own blocking query again',
      );
    }
    this.overflowLogged = overflowing;
  }

  private refetchOverflow(): void {
    if (this.stopped) return;
    if (this.refetching) {
      this.refetchAgain = true;
      return;
    }
    this.refetching = (async () => {
      try {
        do {
          this.refetchAgain = false;
          await this.refetchRound();
        } while (this.refetchAgain && !this.stopped);
      } finally {
        this.refetching = undefined;
      }
    })();
  }

  private async refetchRound(): Promise<void> {
    const queue = [...this.overflow].sort();
    const signal = this.abort.signal;
    const worker = async (): Promise<void> => {
      for (let name = queue.shift(); name !== undefined && !this.stopped; name = queue.shift()) {
        if (!this.overflow.has(name)) continue;
        try {
          await this.host.limiter.take(signal);
          const { body } = await this.host.client.healthService(name, this.query({ signal }));
          if (this.stopped || !this.overflow.has(name)) continue;
          this.succeeded(`health/${name}`);
          this.setEntries(name, body);
        } catch (err) {
          if (this.stopped) return;
          if (err instanceof Error && err.name === 'ConsulRequestError') {
            this.onWatchError(`health/${name}`, err as ConsulRequestError, 1, 0);
          }
          // The next trigger (or its retry after an error) refetches it.
        }
      }
    };
    await Promise.all(Array.from({ length: this.refetchConcurrency }, worker));
  }

  // --- errors, staleness ----------------------------------------------------------------------

  private onWatchError(
    watch: string,
    err: ConsulRequestError,
    failures: number,
    retryInMs: number,
  ): void {
    if (this.stopped) return;
    const wasHealthy = this.failing.size === 0;
    this.failing.set(watch, err);
    if (CONNECTION_LOST.has(err.kind)) this.connectionLost = true;
    const now = Date.now();
    if (wasHealthy) this.outageStartedAt = now;
    const logFields = {
      ...this.dcField(),
      watch,
      error: err.message,
      kind: err.kind,
      failures,
      retryInMs,
    };
    if (failures === 1 || failures % 10 === 0)
      this.host.log.warn(logFields, 'Consul request failed');
    else this.host.log.debug(logFields, 'Consul request failed');
    if (watch === LIST) {
      this.listDownSince ??= now;
      this.scheduleStaleCheck();
      // A remote datacenter not in the catalog yet: the first catalog need not wait for it.
      if (!this.synced && !this.local) this.host.changed();
    }
    if (wasHealthy || now - this.lastErrorReport >= ERROR_REPORT_INTERVAL_MS) {
      this.lastErrorReport = now;
      this.host.report(
        new Error(`consul: ${this.describeFailure()}; ${err.message}`, { cause: err }),
      );
    }
  }

  /** "N of M watches failing, <what happens to the data>", as the sink's error says. */
  private describeFailure(): string {
    const counts = `${this.failing.size} of ${Math.max(this.failing.size, this.watchCount)} watches failing`;
    if (this.local) {
      const state = this.synced
        ? 'keeping the last good catalog'
        : 'no catalog yet (waiting for the first full read)';
      return `${counts}, ${state}`;
    }
    const state = this.dropped
      ? 'its instances are dropped until it is read again'
      : this.synced
        ? `keeping its last good instances until it has been unreadable for ${seconds(this.staleAfterMs ?? 0)} (--remote-stale-after)`
        : 'not in the catalog yet (waiting for its first full read)';
    return `datacenter "${this.name}": ${counts}, ${state}`;
  }

  /**
   * A request succeeded: the watch is no longer failing, the datacenter was reachable now.
   * True when it is the first since a lost connection (the host was told).
   */
  private succeeded(watch: string): boolean {
    this.lastSuccess = Date.now();
    const back = this.connectionLost;
    if (back) {
      this.connectionLost = false;
      this.host.reconnected(this, 'reconnected');
    }
    if (watch === LIST) this.listDownSince = undefined;
    this.recovered(watch);
    return back;
  }

  private recovered(watch: string): void {
    if (!this.failing.delete(watch)) return;
    if (this.failing.size === 0) {
      const outageMs = this.outageStartedAt ? Date.now() - this.outageStartedAt : undefined;
      this.outageStartedAt = undefined;
      this.host.log.info(
        { consul: this.host.client.address, ...this.dcField(), outageMs },
        this.local ? 'Consul reachable again' : 'Consul datacenter reachable again',
      );
      this.host.healthy?.(this);
    }
  }

  /**
   * A remote datacenter's service list fails: once it has been unreadable for staleAfterMs,
   * its entries are dropped. The clock starts at its last successful read, where an open
   * blocking query counts as reading until it fails: so from the first failure of its service
   * list, or from a later success of any of its other watches.
   */
  private scheduleStaleCheck(): void {
    if (this.local || this.staleAfterMs === undefined || this.stopped) return;
    if (this.staleTimer || this.dropped || this.listDownSince === undefined) return;
    if (!this.synced && this.entries.size === 0) return; // nothing to drop
    const check = (): void => {
      this.staleTimer = undefined;
      if (this.stopped || this.dropped || this.listDownSince === undefined) return;
      const since = Math.max(this.listDownSince, this.lastSuccess ?? 0);
      const due = since + this.staleAfterMs! - Date.now();
      if (due > 0) {
        this.staleTimer = setTimeout(check, due);
        return;
      }
      this.drop(Date.now() - since);
    };
    check();
  }

  private drop(unreachableForMs: number): void {
    const now = Date.now();
    const instances = [...this.entries.values()].reduce(
      (n, list) => n + list.filter((e) => !e.Service?.Kind).length,
      0,
    );
    const message =
      `Consul datacenter "${this.name}" unreadable for ${seconds(unreachableForMs)} ` +
      `(--remote-stale-after ${seconds(this.staleAfterMs ?? 0)}); dropping its ${instances} ` +
      'instances until it is read again';
    this.host.log.warn(
      { ...this.dcField(), unreachableForMs, instances, staleAfterMs: this.staleAfterMs },
      message,
    );
    this.dropped = true;
    this.droppedAt = now;
    this.synced = false;
    this.entries.clear();
    for (const name of this.listed ?? []) this.pendingSince.set(name, now);
    this.host.report(new Error(`consul: ${message}`, { cause: this.failing.get(LIST) }));
    this.host.changed();
  }

  // --- helpers --------------------------------------------------------------------------------

  private query<Q extends { signal?: AbortSignal }>(q: Q): Q & { dc?: string } {
    return this.dcParam !== undefined ? { ...q, dc: this.dcParam } : q;
  }

  private watchName(watch: string): string {
    return this.local ? watch : `${this.dcParam}: ${watch}`;
  }

  private dcField(): { datacenter?: string } {
    return this.name !== undefined ? { datacenter: this.name } : {};
  }
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${(ms / 1000).toFixed(1)}s`;
}
