// The Consul discovery source: the live Consul catalog as lucid-mesh catalogs.
//
// What it watches (blocking queries, see watch.ts):
// - `/v1/catalog/services`: which services exist;
// - `/v1/health/service/<name>`: the instances of each service, with their checks. Each service
//   gets its own blocking query while connections allow;
// - Consul refuses more than `http_max_conns_per_client` (default 200) connections from one
//   client IP, and every blocking query holds one connection. So at most `maxConnections`
//   (default 128) are used: the service list, a change trigger and a few refetch slots take 6,
//   the rest (122 by default) are per-service watches, less `reservedConnections` (the six
//   traffic config-entry watches, sources/consul/config-entries.ts, when they run alongside
//   on a client of their own). Services beyond that are "overflow":
//   a blocking query on the checks index (`/v1/health/state/any`, filtered to an empty body)
//   plus every change of the service list trigger a refetch of the overflow services (non-
//   blocking reads, 4 at a time, rate-limited). Overflow is logged and visible in `stats()`;
//   nothing stalls.
//
// Readiness and failures:
// - The first catalog goes to the sink after the first full sync: the service list and the
//   health of every listed service.
// - Later, a newly listed service is waited for (up to `settleMs`) so that an app and its
//   sidecar registered together appear together.
// - Requests that fail keep their service's last good data; the catalog is rebuilt only from
//   successful reads, so an unreachable Consul never produces an empty or partial catalog. The
//   sink gets `error` (at most every few seconds while failing) and the source recovers by
//   itself with backoff. A restarted Consul (index went backwards) is re-read from scratch.
import { setMaxListeners } from 'node:events';
import type { Catalog, Health, Service } from '../../catalog/model.js';
import type { Logger } from '../../telemetry/logger.js';
import type { CatalogSink, DiscoverySource } from '../source.js';
import { ConsulClient, type ConsulHealthEntry, type ConsulRequestError } from './client.js';
import { IGNORED_SERVICES, mapConsulCatalog } from './mapping.js';
import {
  DEFAULT_BACKOFF_MAX_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_RATE_LIMIT,
  DEFAULT_SIDECAR_GRACE_MS,
  DEFAULT_WAIT_MS,
  consulSourceOptionsFromFlags,
  type ConsulSourceOptions,
} from './options.js';
import { BlockingWatch, TokenBucket } from './watch.js';

/** Connections for the service list, the overflow trigger, and overflow refetches. */
const REFETCH_CONCURRENCY = 4;
export const RESERVED_CONNECTIONS = 2 + REFETCH_CONCURRENCY;
/** While failing, `sink.error` at most this often. */
const ERROR_REPORT_INTERVAL_MS = 5_000;

export interface ConsulSourceStats {
  /** Services in Consul's list (without proxies' own names being special, minus `consul`). */
  readonly services: number;
  /** Services with their own blocking query. */
  readonly dedicatedWatches: number;
  /** Services refreshed by the change trigger instead (beyond the connection budget). */
  readonly overflowServices: number;
  /** Requests to Consul in flight now (each holds one connection). */
  readonly requestsInFlight: number;
  /** Requests sent to Consul so far. */
  readonly requestsTotal: number;
  readonly maxConnections: number;
  /** Watches whose last request failed. */
  readonly failingWatches: number;
  /** Whether the first full sync has completed. */
  readonly synced: boolean;
  /** Catalogs delivered to the sink. */
  readonly updates: number;
}

export class ConsulSource implements DiscoverySource {
  readonly name = 'consul';

  private readonly client: ConsulClient;
  private readonly log: Logger;
  private readonly waitMs: number;
  private readonly warningAs: Health;
  private readonly maxConnections: number;
  private readonly dedicatedSlots: number;
  private readonly backoffMinMs: number;
  private readonly backoffMaxMs: number;
  private readonly settleMs: number;
  private readonly limiter: TokenBucket;

  private sink: CatalogSink | undefined;
  private stopped = false;
  private readonly abort = new AbortController();

  private listWatch: BlockingWatch<Record<string, string[]>> | undefined;
  private listed: Set<string> | undefined;
  private readonly dedicated = new Map<string, BlockingWatch<ConsulHealthEntry[]>>();
  private readonly overflow = new Set<string>();
  private trigger: BlockingWatch<unknown[]> | undefined;
  private refetching: Promise<void> | undefined;
  private refetchAgain = false;

  /** Last good health entries per service name. */
  private readonly entries = new Map<string, ConsulHealthEntry[]>();
  /** When each listed-but-not-yet-read service was first listed. */
  private readonly pendingSince = new Map<string, number>();
  private readonly failing = new Map<string, ConsulRequestError>();
  private lastErrorReport = 0;
  private outageStartedAt: number | undefined;

  private synced = false;
  private updates = 0;
  private lastPublished: string | undefined;
  private lastProblems = new Set<string>();
  private rebuildTimer: NodeJS.Timeout | undefined;
  private readonly sidecarGraceMs: number;
  /** Unmeshed instances not published yet, and since when they have been seen. */
  private readonly unmeshedSince = new Map<string, number>();
  /** Unmeshed instances published as such. */
  private publishedUnmeshed = new Set<string>();
  /** Service names of the last catalog delivered. */
  private publishedServices = new Set<string>();
  private overflowLogged = false;

  constructor(opts: ConsulSourceOptions, logger: Logger) {
    this.log = logger;
    this.waitMs = opts.waitMs ?? DEFAULT_WAIT_MS;
    this.warningAs = opts.warningAs ?? 'passing';
    // Connections other watches of this process hold (the traffic config entries) come off
    // the top: this source's own client is capped at what is left.
    const others = Math.max(0, opts.reservedConnections ?? 0);
    this.maxConnections = Math.max(
      RESERVED_CONNECTIONS + 1 + others,
      opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
    );
    this.dedicatedSlots = this.maxConnections - others - RESERVED_CONNECTIONS;
    this.backoffMinMs = opts.backoffMinMs ?? 250;
    this.backoffMaxMs = Math.max(this.backoffMinMs, opts.backoffMaxMs ?? DEFAULT_BACKOFF_MAX_MS);
    this.settleMs = opts.settleMs ?? 2_000;
    this.sidecarGraceMs = opts.sidecarGraceMs ?? DEFAULT_SIDECAR_GRACE_MS;
    const rate = opts.rateLimit ?? DEFAULT_RATE_LIMIT;
    this.limiter = opts.sharedLimiter ?? new TokenBucket(rate, Math.max(1, rate));
    this.client = new ConsulClient(opts.connection, {
      maxConnections: this.maxConnections - others,
    });
    // The overflow refetch workers wait on this signal (rate limiter, request) concurrently.
    setMaxListeners(4 * REFETCH_CONCURRENCY, this.abort.signal);
  }

  /** Where this source reads from, e.g. "http://127.0.0.1:8500". */
  get address(): string {
    return this.client.address;
  }

  stats(): ConsulSourceStats {
    return {
      services: this.listed ? [...this.listed].filter((n) => !IGNORED_SERVICES.has(n)).length : 0,
      dedicatedWatches: this.dedicated.size,
      overflowServices: this.overflow.size,
      requestsInFlight: this.client.inFlight,
      requestsTotal: this.client.requests,
      maxConnections: this.maxConnections,
      failingWatches: this.failing.size,
      synced: this.synced,
      updates: this.updates,
    };
  }

  async start(sink: CatalogSink): Promise<void> {
    if (this.sink) throw new Error('ConsulSource already started');
    if (this.stopped) throw new Error('ConsulSource was stopped; create a new one');
    this.sink = sink;
    this.log.info(
      { consul: this.client.address, maxConnections: this.maxConnections, waitMs: this.waitMs },
      'watching the Consul catalog',
    );
    this.listWatch = new BlockingWatch({
      name: 'catalog/services',
      fetch: (q) => this.client.servicesList(q),
      waitMs: this.waitMs,
      sharedLimiter: this.limiter,
      backoffMinMs: this.backoffMinMs,
      backoffMaxMs: this.backoffMaxMs,
      onData: (body, info) => this.onServiceList(body, info.changed, info.reset),
      onError: (err, failures, retryInMs) =>
        this.onWatchError('catalog/services', err, failures, retryInMs),
    });
    this.listWatch.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    if (this.rebuildTimer) clearTimeout(this.rebuildTimer);
    const watches: Array<{ stop(): Promise<void> }> = [
      ...(this.listWatch ? [this.listWatch] : []),
      ...(this.trigger ? [this.trigger] : []),
      ...this.dedicated.values(),
    ];
    await Promise.all(watches.map((w) => w.stop()));
    await this.refetching;
    this.client.destroy();
    this.sink = undefined;
  }

  // --- service list -------------------------------------------------------------------------

  private onServiceList(body: Record<string, string[]>, changed: boolean, reset: boolean): void {
    if (this.stopped) return;
    this.recovered('catalog/services');
    if (reset) {
      this.log.warn(
        { consul: this.client.address },
        'Consul index went backwards (restarted or a different server); re-reading every service',
      );
      // Their blocking queries wait on indexes from the other history: read again at once.
      for (const watch of this.dedicated.values()) watch.resync();
      this.trigger?.resync();
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
      if (previous.has(name) && (this.dedicated.has(name) || this.overflow.has(name))) continue;
      if (!this.entries.has(name)) this.pendingSince.set(name, now);
      if (this.dedicated.size < this.dedicatedSlots) this.watchService(name);
      else this.overflow.add(name);
    }
    // Freed slots go to overflow services (oldest first is as good as any: names sorted).
    for (const name of [...this.overflow].sort()) {
      if (this.dedicated.size >= this.dedicatedSlots) break;
      this.overflow.delete(name);
      this.watchService(name);
    }
    this.updateOverflowMode();
    // A list change may be a registration change the checks index does not show (a new
    // port, say): refresh overflow services too.
    if (this.overflow.size > 0 && (changed || reset)) this.refetchOverflow();
    this.scheduleRebuild();
  }

  private watchService(name: string): void {
    const watch = new BlockingWatch<ConsulHealthEntry[]>({
      name: `health/${name}`,
      fetch: (q) => this.client.healthService(name, q),
      waitMs: this.waitMs,
      sharedLimiter: this.limiter,
      backoffMinMs: this.backoffMinMs,
      backoffMaxMs: this.backoffMaxMs,
      onData: (body, info) => {
        if (this.stopped || this.dedicated.get(name) !== watch) return;
        this.recovered(`health/${name}`);
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
    this.scheduleRebuild();
  }

  // --- overflow: change trigger + refetch ---------------------------------------------------

  private updateOverflowMode(): void {
    if (this.overflow.size > 0 && !this.trigger) {
      const trigger = new BlockingWatch<unknown[]>({
        name: 'health/state/any',
        fetch: (q) => this.client.checksIndex(q),
        waitMs: this.waitMs,
        sharedLimiter: this.limiter,
        backoffMinMs: this.backoffMinMs,
        backoffMaxMs: this.backoffMaxMs,
        // Every answer, changed or not (the wait expired), refreshes the overflow services: a
        // change the indexes do not show (a node's address) is picked up within one `wait`.
        onData: () => {
          if (this.stopped || this.trigger !== trigger) return;
          this.recovered('health/state/any');
          this.refetchOverflow();
        },
        onError: (err, failures, retryInMs) => {
          if (this.trigger !== trigger) return;
          this.onWatchError('health/state/any', err, failures, retryInMs);
        },
      });
      this.trigger = trigger;
      trigger.start();
    } else if (this.overflow.size === 0 && this.trigger) {
      const trigger = this.trigger;
      this.trigger = undefined;
      this.recovered('health/state/any');
      void trigger.stop();
    }
    const overflowing = this.overflow.size > 0;
    if (overflowing && !this.overflowLogged) {
      this.log.warn(
        {
          services: this.stats().services,
          dedicatedWatches: this.dedicated.size,
          overflowServices: this.overflow.size,
          maxConnections: this.maxConnections,
        },
        `more Consul services than blocking-query connections (--consul-max-connections ${this.maxConnections}); ` +
          'the rest are refreshed on every change of the checks index or the service list',
      );
    } else if (!overflowing && this.overflowLogged) {
      this.log.info(
        { dedicatedWatches: this.dedicated.size },
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
    const worker = async (): Promise<void> => {
      for (let name = queue.shift(); name !== undefined && !this.stopped; name = queue.shift()) {
        if (!this.overflow.has(name)) continue;
        try {
          await this.limiter.take(this.abort.signal);
          const { body } = await this.client.healthService(name, { signal: this.abort.signal });
          if (this.stopped || !this.overflow.has(name)) continue;
          this.recovered(`health/${name}`);
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
    await Promise.all(Array.from({ length: REFETCH_CONCURRENCY }, worker));
  }

  // --- errors ---------------------------------------------------------------------------------

  private onWatchError(
    watch: string,
    err: ConsulRequestError,
    failures: number,
    retryInMs: number,
  ): void {
    if (this.stopped) return;
    const wasHealthy = this.failing.size === 0;
    this.failing.set(watch, err);
    if (wasHealthy) this.outageStartedAt = Date.now();
    const now = Date.now();
    const logFields = { watch, error: err.message, kind: err.kind, failures, retryInMs };
    if (failures === 1 || failures % 10 === 0) this.log.warn(logFields, 'Consul request failed');
    else this.log.debug(logFields, 'Consul request failed');
    if (wasHealthy || now - this.lastErrorReport >= ERROR_REPORT_INTERVAL_MS) {
      this.lastErrorReport = now;
      const total = this.dedicated.size + 1 + (this.trigger ? 1 : 0);
      const state = this.synced
        ? 'keeping the last good catalog'
        : 'no catalog yet (waiting for the first full read)';
      this.report(
        new Error(
          `consul: ${this.failing.size} of ${total} watches failing, ${state}; ${err.message}`,
          { cause: err },
        ),
      );
    }
  }

  private recovered(watch: string): void {
    if (!this.failing.delete(watch)) return;
    if (this.failing.size === 0) {
      const outageMs = this.outageStartedAt ? Date.now() - this.outageStartedAt : undefined;
      this.outageStartedAt = undefined;
      this.log.info({ consul: this.client.address, outageMs }, 'Consul reachable again');
    }
  }

  private report(err: Error): void {
    if (this.stopped) return;
    try {
      this.sink?.error(err);
    } catch (e) {
      this.log.error({ err: e }, 'catalog sink failed to handle an error');
    }
  }

  // --- catalog --------------------------------------------------------------------------------

  private scheduleRebuild(delayMs = 0): void {
    if (this.stopped) return;
    if (this.rebuildTimer) {
      if (delayMs > 0) return; // an earlier rebuild is already scheduled
      clearTimeout(this.rebuildTimer);
    }
    this.rebuildTimer = setTimeout(() => {
      this.rebuildTimer = undefined;
      this.rebuild();
    }, delayMs);
  }

  private rebuild(): void {
    if (this.stopped || !this.listed) return;
    if (this.pendingSince.size > 0) {
      if (!this.synced) return; // the first catalog waits for every service
      const now = Date.now();
      const oldest = Math.min(...this.pendingSince.values());
      if (now - oldest < this.settleMs) {
        this.scheduleRebuild(oldest + this.settleMs - now);
        return;
      }
      this.log.warn(
        { services: [...this.pendingSince.keys()].slice(0, 20) },
        'newly listed Consul services not read yet; publishing without them',
      );
    }

    const view = new Map<string, ConsulHealthEntry[]>();
    for (const name of this.listed) {
      const e = this.entries.get(name);
      if (e) view.set(name, e);
    }
    const mapped = mapConsulCatalog(view, { warningAs: this.warningAs });
    this.logProblems(mapped.problems);
    const catalog = this.holdNewUnmeshed(mapped.catalog, mapped.unmeshed);

    const first = !this.synced;
    this.synced = true;
    const text = JSON.stringify(catalog);
    if (text === this.lastPublished) return;
    this.lastPublished = text;
    this.publishedServices = new Set(catalog.services.map((s) => s.name));
    this.deliver(catalog, first);
  }

  /**
   * Consul's agent syncs an app and its sidecar registration to the catalog one after the
   * other, so the app can show up (or, on deregistration, stay) a moment without its sidecar.
   * Routing straight to the app port in that moment would bypass the sidecar, so an instance
   * that newly turns up without a sidecar is held back for `sidecarGraceMs` (default 250 ms)
   * first. Not at the first sync: that read sees whatever Consul has settled on.
   */
  private holdNewUnmeshed(catalog: Catalog, unmeshed: readonly string[]): Catalog {
    const now = Date.now();
    const current = new Set(unmeshed);
    for (const key of this.unmeshedSince.keys())
      if (!current.has(key)) this.unmeshedSince.delete(key);
    for (const key of this.publishedUnmeshed)
      if (!current.has(key)) this.publishedUnmeshed.delete(key);
    if (!this.synced || this.sidecarGraceMs <= 0) {
      for (const key of current) this.publishedUnmeshed.add(key);
      return catalog;
    }
    const held = new Set<string>();
    let nextCheck = Infinity;
    for (const key of current) {
      if (this.publishedUnmeshed.has(key)) continue;
      const since = this.unmeshedSince.get(key) ?? now;
      this.unmeshedSince.set(key, since);
      if (now - since < this.sidecarGraceMs) {
        held.add(key);
        nextCheck = Math.min(nextCheck, since + this.sidecarGraceMs);
      } else {
        this.unmeshedSince.delete(key);
        this.publishedUnmeshed.add(key);
      }
    }
    if (held.size === 0) return catalog;
    this.scheduleRebuild(Math.max(1, nextCheck - now));
    const services: Service[] = [];
    for (const s of catalog.services) {
      if (!s.instances.some((i) => held.has(`${s.name}/${i.id}`))) {
        services.push(s);
        continue;
      }
      const instances = s.instances.filter((i) => !held.has(`${s.name}/${i.id}`));
      // A new service whose only instances are held back is not published yet either: an
      // empty cluster would answer 503 until they are.
      if (instances.length === 0 && !this.publishedServices.has(s.name)) continue;
      services.push({ ...s, instances });
    }
    return { services };
  }

  private logProblems(problems: readonly string[]): void {
    const current = new Set(problems);
    for (const p of current)
      if (!this.lastProblems.has(p))
        this.log.warn({ problem: p }, 'Consul entry skipped or adjusted');
    this.lastProblems = current;
  }

  private deliver(catalog: Catalog, first: boolean): void {
    this.updates++;
    this.log.info(
      {
        services: catalog.services.length,
        instances: catalog.services.reduce((n, s) => n + s.instances.length, 0),
        first,
      },
      first ? 'Consul catalog loaded' : 'Consul catalog changed',
    );
    try {
      this.sink?.update(catalog);
    } catch (err) {
      this.log.error({ err }, 'catalog sink failed to apply an update');
    }
  }
}

/** The Consul discovery source for `lucid-mesh serve --source consul`. Throws ConsulFlagError. */
export function consulSourceFromFlags(
  flags: Record<string, unknown>,
  logger: Logger,
): DiscoverySource {
  return new ConsulSource(consulSourceOptionsFromFlags(flags), logger);
}
