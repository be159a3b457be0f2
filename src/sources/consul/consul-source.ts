// The Consul discovery source: the live Consul catalog as lucid-mesh catalogs.
//
// What it watches, per datacenter (datacenter-watch.ts; blocking queries, watch.ts):
// - `/v1/catalog/services`: which services exist;
// - `/v1/health/service/<name>`: the instances of each service, with their checks. Each service
//   gets its own blocking query while connections allow, else it is "overflow": a blocking
//   query on the checks index plus every change of the service list trigger a refetch.
// - The local datacenter (--consul-dc, else the agent's own from `/v1/agent/self`) and the
//   remote ones (--consul-datacenters), all through the local agent: `?dc=<name>`, which Consul
//   forwards across WAN federation. Every instance carries the datacenter it was read from.
//
// Connections: Consul refuses more than `http_max_conns_per_client` (default 200) connections
// from one client IP and every blocking query holds one, so at most `maxConnections` (default
// 128) are used, less `reservedConnections` (the six traffic config-entry watches,
// sources/consul/config-entries.ts, when they run alongside on a client of their own). Each
// datacenter reserves its list, trigger and refetch connections; the per-service watches are
// split local datacenter first, the remote ones sharing the rest (budget.ts). Overflow is
// logged and visible in `stats()`; nothing stalls.
//
// Readiness and failures:
// - The first catalog goes to the sink once the local datacenter is read completely (the
//   service list and the health of every listed service) and its name is known. Remote
//   datacenters are waited for at most `settleMs` (2 s) more, and not at all once their reads
//   fail; the others join the catalog when they have been read completely.
// - Later, a newly listed service is waited for (up to `settleMs`) so that an app and its
//   sidecar registered together appear together.
// - Requests that fail keep their service's last good data; the catalog is rebuilt only from
//   successful reads, so an unreachable Consul never produces an empty or partial catalog. The
//   sink gets `error` (at most every few seconds per datacenter while failing) and the source
//   recovers by itself with backoff. A restarted Consul (index went backwards) is re-read.
// - After the agent comes back (a restart restores its checks critical until they run), health
//   that flips to critical is held for `restartGraceMs` (15 s) where the checks have not run
//   yet or the whole service flipped at once (restart-grace.ts).
// - A remote datacenter that cannot be read keeps its last good instances only until
//   `remoteStaleAfterMs` (60 s) after its last successful read; then they are dropped (log
//   line and sink error) until it has been read completely again.
import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Catalog, Health, Service } from '../../catalog/model.js';
import type { Logger } from '../../telemetry/logger.js';
import type { CatalogSink, DiscoverySource } from '../source.js';
import {
  LOCAL_REFETCH_CONCURRENCY,
  LOCAL_RESERVED_CONNECTIONS,
  REMOTE_REFETCH_CONCURRENCY,
  catalogConnectionsNeeded,
  dedicatedLimits,
  dedicatedPool,
} from './budget.js';
import { ConsulClient, ConsulRequestError, type ConsulHealthEntry } from './client.js';
import {
  DatacenterWatch,
  type ConsulDatacenterStats,
  type DatacenterHost,
} from './datacenter-watch.js';
import { mapConsulDatacenters, type DatacenterEntries } from './mapping.js';
import {
  DEFAULT_BACKOFF_MAX_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_RATE_LIMIT,
  DEFAULT_REMOTE_STALE_AFTER_MS,
  DEFAULT_RESTART_GRACE_MS,
  DEFAULT_SIDECAR_GRACE_MS,
  DEFAULT_WAIT_MS,
  consulSourceOptionsFromFlags,
  type ConsulSourceOptions,
} from './options.js';
import { applyRestartGrace, healthByInstance, type HoldReason } from './restart-grace.js';
import { TokenBucket, backoffDelay } from './watch.js';

/** The local datacenter's connections for its service list, trigger and refetches. */
export const RESERVED_CONNECTIONS = LOCAL_RESERVED_CONNECTIONS;
export type { ConsulDatacenterStats } from './datacenter-watch.js';

export interface ConsulSourceStats {
  /** Services in Consul's lists, every datacenter (minus `consul`). */
  readonly services: number;
  /** Services with their own blocking query. */
  readonly dedicatedWatches: number;
  /** Services refreshed by a change trigger instead (beyond the connection budget). */
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
  /** The local datacenter's name, once known. */
  readonly datacenter?: string;
  /** Per datacenter watched (the local one under its name, or "(local)" until it is known). */
  readonly datacenters: Readonly<Record<string, ConsulDatacenterStats>>;
  /** Agent comebacks seen (each starts a restart grace). */
  readonly reconnects: number;
  /** Instances published with their last health by the restart grace now. */
  readonly heldByRestartGrace: number;
  /** Instances the restart grace has held so far (each counted once per grace). */
  readonly heldByRestartGraceTotal: number;
}

export class ConsulSource implements DiscoverySource {
  readonly name = 'consul';

  private readonly client: ConsulClient;
  private readonly log: Logger;
  private readonly waitMs: number;
  private readonly warningAs: Health;
  private readonly defaultProtocol: 'http' | 'tcp';
  private readonly maxConnections: number;
  /** Of maxConnections, what the catalog's own client may use. */
  private readonly catalogConnections: number;
  private readonly backoffMinMs: number;
  private readonly backoffMaxMs: number;
  private readonly settleMs: number;
  private readonly limiter: TokenBucket;
  private readonly configuredDatacenter: string | undefined;
  /** --consul-datacenters, in order, without --consul-dc. */
  private readonly remoteNames: readonly string[];
  private readonly remoteStaleAfterMs: number;
  private readonly host: DatacenterHost;

  private sink: CatalogSink | undefined;
  private stopped = false;
  private readonly abort = new AbortController();

  private local: DatacenterWatch | undefined;
  private remotes: DatacenterWatch[] = [];
  private remotesStarted = false;
  /** /v1/agent/self is forbidden: the local name comes from the entries' Node.Datacenter. */
  private nameFromNodes = false;
  private resolving: Promise<void> | undefined;
  /** Cuts the agent/self retry pause short. */
  private resolveWake: AbortController | undefined;
  /** When the local datacenter was first ready (remote ones are waited for settleMs more). */
  private localReadyAt: number | undefined;

  private synced = false;
  private updates = 0;
  private lastPublished: string | undefined;
  private lastProblems = new Set<string>();
  private rebuildTimer: NodeJS.Timeout | undefined;
  private rebuildDue = 0;
  private readonly sidecarGraceMs: number;
  private readonly restartGraceMs: number;
  /** Per datacenter watch: when its restart grace ends. */
  private readonly graceUntil = new Map<DatacenterWatch, number>();
  /** Health per "<service>/<id>" of the last catalog delivered. */
  private publishedHealth = new Map<string, Health>();
  /** Instances held now (logged when first held). */
  private held = new Map<string, HoldReason>();
  private reconnects = 0;
  private heldTotal = 0;
  /** Unmeshed instances not published yet, and since when they have been seen. */
  private readonly unmeshedSince = new Map<string, number>();
  /** Unmeshed instances published as such. */
  private publishedUnmeshed = new Set<string>();
  /** Service names of the last catalog delivered. */
  private publishedServices = new Set<string>();

  constructor(opts: ConsulSourceOptions, logger: Logger) {
    this.log = logger;
    this.waitMs = opts.waitMs ?? DEFAULT_WAIT_MS;
    this.warningAs = opts.warningAs ?? 'passing';
    this.defaultProtocol = opts.defaultProtocol ?? 'http';
    this.configuredDatacenter = opts.connection.datacenter;
    this.remoteNames = [...new Set(opts.remoteDatacenters ?? [])].filter(
      (dc) => dc !== this.configuredDatacenter,
    );
    this.remoteStaleAfterMs = opts.remoteStaleAfterMs ?? DEFAULT_REMOTE_STALE_AFTER_MS;
    // Connections other watches of this process hold (the traffic config entries) come off
    // the top: this source's own client is capped at what is left.
    const others = Math.max(0, opts.reservedConnections ?? 0);
    this.maxConnections = Math.max(
      catalogConnectionsNeeded(this.remoteNames.length) + others,
      opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
    );
    this.catalogConnections = this.maxConnections - others;
    this.backoffMinMs = opts.backoffMinMs ?? 250;
    this.backoffMaxMs = Math.max(this.backoffMinMs, opts.backoffMaxMs ?? DEFAULT_BACKOFF_MAX_MS);
    this.settleMs = opts.settleMs ?? 2_000;
    this.sidecarGraceMs = opts.sidecarGraceMs ?? DEFAULT_SIDECAR_GRACE_MS;
    this.restartGraceMs = opts.restartGraceMs ?? DEFAULT_RESTART_GRACE_MS;
    const rate = opts.rateLimit ?? DEFAULT_RATE_LIMIT;
    this.limiter = opts.sharedLimiter ?? new TokenBucket(rate, Math.max(1, rate));
    this.client = new ConsulClient(opts.connection, { maxConnections: this.catalogConnections });
    this.host = {
      client: this.client,
      limiter: this.limiter,
      log: this.log,
      waitMs: this.waitMs,
      backoffMinMs: this.backoffMinMs,
      backoffMaxMs: this.backoffMaxMs,
      rebalance: () => this.rebalance(),
      changed: () => this.scheduleRebuild(),
      report: (err) => this.report(err),
      healthy: () => this.onHealthy(),
      listed: (dc) => this.onListed(dc),
      reconnected: (dc, why) => this.onReconnected(dc, why),
    };
  }

  /** Where this source reads from, e.g. "http://127.0.0.1:8500". */
  get address(): string {
    return this.client.address;
  }

  localDatacenter(): string | undefined {
    return this.local?.name;
  }

  stats(): ConsulSourceStats {
    const dcs = this.datacenterWatches();
    const per = dcs.map((dc) => dc.stats());
    const sum = (f: (s: ConsulDatacenterStats) => number): number =>
      per.reduce((n, s) => n + f(s), 0);
    return {
      services: sum((s) => s.services),
      dedicatedWatches: sum((s) => s.dedicatedWatches),
      overflowServices: sum((s) => s.overflowServices),
      requestsInFlight: this.client.inFlight,
      requestsTotal: this.client.requests,
      maxConnections: this.maxConnections,
      failingWatches: sum((s) => s.failingWatches),
      synced: this.synced,
      updates: this.updates,
      ...(this.local?.name !== undefined ? { datacenter: this.local.name } : {}),
      datacenters: Object.fromEntries(dcs.map((dc, i) => [dc.name ?? '(local)', per[i]!])),
      reconnects: this.reconnects,
      heldByRestartGrace: this.held.size,
      heldByRestartGraceTotal: this.heldTotal,
    };
  }

  async start(sink: CatalogSink): Promise<void> {
    if (this.sink) throw new Error('ConsulSource already started');
    if (this.stopped) throw new Error('ConsulSource was stopped; create a new one');
    this.sink = sink;
    this.log.info(
      {
        consul: this.client.address,
        maxConnections: this.maxConnections,
        waitMs: this.waitMs,
        ...(this.configuredDatacenter !== undefined
          ? { datacenter: this.configuredDatacenter }
          : {}),
        ...(this.remoteNames.length > 0
          ? { remoteDatacenters: this.remoteNames, remoteStaleAfterMs: this.remoteStaleAfterMs }
          : {}),
      },
      'watching the Consul catalog',
    );
    this.local = this.newWatch(this.configuredDatacenter, true);
    this.rebalance();
    this.local.start();
    if (this.local.name === undefined) this.resolveLocalName();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    if (this.rebuildTimer) clearTimeout(this.rebuildTimer);
    await Promise.all(this.datacenterWatches().map((dc) => dc.stop()));
    await this.resolving;
    this.client.destroy();
    this.sink = undefined;
  }

  private newWatch(name: string | undefined, local: boolean): DatacenterWatch {
    const watch = new DatacenterWatch(
      local
        ? { name, local, dcParam: undefined, refetchConcurrency: LOCAL_REFETCH_CONCURRENCY }
        : {
            name,
            local,
            dcParam: name,
            refetchConcurrency: REMOTE_REFETCH_CONCURRENCY,
            staleAfterMs: this.remoteStaleAfterMs,
          },
      this.host,
    );
    return watch;
  }

  private datacenterWatches(): DatacenterWatch[] {
    return this.local ? [this.local, ...this.remotes] : [];
  }

  // --- datacenters ----------------------------------------------------------------------------

  /** The local datacenter's name from the agent (`/v1/agent/self`), retried with backoff. */
  private resolveLocalName(): void {
    setMaxListeners(8, this.abort.signal);
    this.resolving = (async () => {
      let failures = 0;
      while (!this.stopped) {
        try {
          await this.limiter.take(this.abort.signal);
          const name = await this.client.agentDatacenter({ signal: this.abort.signal });
          if (this.stopped || !this.local) return;
          this.local.setName(name);
          this.log.info({ datacenter: name }, "local Consul datacenter: the agent's");
          this.onLocalNamed();
          return;
        } catch (err) {
          if (this.stopped) return;
          const e =
            err instanceof ConsulRequestError
              ? err
              : new ConsulRequestError(String(err), 'invalid-response');
          if (e.kind === 'forbidden') {
            this.nameFromNodes = true;
            this.log.warn(
              { error: e.message },
              "cannot read the agent's datacenter (GET /v1/agent/self needs agent:read); taking " +
                "it from the instances' Node.Datacenter; set --consul-dc to name it",
            );
            this.scheduleRebuild();
            return;
          }
          failures++;
          const delay = backoffDelay(failures - 1, this.backoffMinMs, this.backoffMaxMs);
          const fields = { watch: 'agent/self', error: e.message, failures, retryInMs: delay };
          if (failures === 1 || failures % 10 === 0) {
            this.log.warn(fields, 'Consul request failed');
            // Consul down: the service list reports it. Only this read failing: report it.
            if (this.local?.reachable) {
              this.report(
                new Error(
                  `consul: no catalog yet (the local datacenter's name is unknown); ${e.message}`,
                  { cause: e },
                ),
              );
            }
          }
          const wake = new AbortController();
          this.resolveWake = wake;
          this.abort.signal.addEventListener('abort', () => wake.abort(), {
            once: true,
            signal: wake.signal,
          });
          await sleep(delay, undefined, { signal: wake.signal }).catch(() => undefined);
          this.resolveWake = undefined;
          wake.abort();
        }
      }
    })();
  }

  private onListed(dc: DatacenterWatch): void {
    if (!dc.local) return;
    this.resolveWake?.abort(); // the agent answers again: ask for its datacenter now
    if (!this.remotesStarted && dc.name !== undefined) this.startRemotes();
  }

  /** The agent is back: for restartGraceMs, restored checks that have not run are not believed. */
  private onReconnected(dc: DatacenterWatch, why: 'reconnected' | 'index-reset'): void {
    if (this.stopped || this.restartGraceMs <= 0 || !this.synced) return;
    this.reconnects++;
    this.graceUntil.set(dc, Date.now() + this.restartGraceMs);
    this.log.info(
      {
        consul: this.client.address,
        ...(dc.name !== undefined ? { datacenter: dc.name } : {}),
        why,
        graceMs: this.restartGraceMs,
      },
      'Consul answers again (it may have restarted and restored its checks as critical): ' +
        'instances whose checks have not run yet, or whose whole service turned critical at ' +
        'once, keep their health until the grace ends (--consul-restart-grace)',
    );
  }

  private onLocalNamed(): void {
    if (this.local?.listed && !this.remotesStarted) this.startRemotes();
    this.scheduleRebuild();
  }

  /**
   * Remote datacenters start once the local one has a name (one named in --consul-datacenters
   * is then not watched twice) and has been listed (so that the budget split starts from the
   * local datacenter's needs).
   */
  private startRemotes(): void {
    if (this.remotesStarted || this.stopped || !this.local) return;
    this.remotesStarted = true;
    const localName = this.local.name;
    const names = this.remoteNames.filter((dc) => dc !== localName);
    if (names.length < this.remoteNames.length) {
      this.log.info(
        { datacenter: localName },
        '--consul-datacenters names the local datacenter; it is read as the local one',
      );
    }
    if (names.length === 0) return;
    this.remotes = names.map((dc) => this.newWatch(dc, false));
    this.rebalance();
    this.log.info(
      { datacenters: names, staleAfterMs: this.remoteStaleAfterMs },
      'watching remote Consul datacenters through the local agent (?dc=)',
    );
    for (const dc of this.remotes) dc.start();
  }

  /** Splits the per-service blocking queries between the datacenters (budget.ts). */
  private rebalance(): void {
    if (this.stopped || !this.local) return;
    const planned = this.remotesStarted ? this.remotes.length : this.remoteNames.length;
    const pool = dedicatedPool(this.catalogConnections, planned);
    const dcs = this.datacenterWatches();
    const limits = dedicatedLimits(
      pool,
      dcs.map((dc) => dc.wanted),
    );
    // Those giving slots up first, so that the others never hold more than the pool.
    const order = dcs
      .map((dc, i) => ({ dc, limit: limits[i]! }))
      .sort((a, b) => a.limit - a.dc.dedicatedCount - (b.limit - b.dc.dedicatedCount));
    for (const { dc, limit } of order) dc.setLimit(limit);
  }

  /** With agent/self forbidden: the local name from any local instance's Node.Datacenter. */
  private nameFromEntries(): void {
    const local = this.local;
    if (!local || local.name !== undefined) return;
    for (const entries of local.entries.values()) {
      const dc = entries.find((e) => e.Node?.Datacenter)?.Node.Datacenter;
      if (dc) {
        local.setName(dc);
        this.log.info(
          { datacenter: dc },
          "local Consul datacenter: the instances' Node.Datacenter",
        );
        if (local.listed && !this.remotesStarted) this.startRemotes();
        return;
      }
    }
  }

  // --- errors ---------------------------------------------------------------------------------

  private report(err: Error): void {
    if (this.stopped) return;
    try {
      this.sink?.error(err);
    } catch (e) {
      this.log.error({ err: e }, 'catalog sink failed to handle an error');
    }
  }

  /**
   * A datacenter answers again: once none fails, the sink is told, since an outage that
   * changed nothing in Consul delivers no new catalog (which would otherwise clear the error
   * `lucid-mesh status` and /v1/config/errors kept showing).
   */
  private onHealthy(): void {
    if (this.stopped) return;
    if (this.datacenterWatches().some((dc) => dc.stats().failingWatches > 0)) return;
    try {
      this.sink?.recovered?.();
    } catch (e) {
      this.log.error({ err: e }, 'catalog sink failed to handle a recovery');
    }
  }

  // --- catalog --------------------------------------------------------------------------------

  private scheduleRebuild(delayMs = 0): void {
    if (this.stopped) return;
    const due = Date.now() + delayMs;
    if (this.rebuildTimer) {
      if (delayMs > 0 && this.rebuildDue <= due) return; // an earlier rebuild is scheduled
      clearTimeout(this.rebuildTimer);
    }
    this.rebuildDue = due;
    this.rebuildTimer = setTimeout(() => {
      this.rebuildTimer = undefined;
      this.rebuild();
    }, delayMs);
  }

  /** A remote datacenter that may join the catalog: listed, and its services read (or given up on). */
  private joinable(dc: DatacenterWatch, now: number): boolean {
    if (!dc.reachable) return false;
    if (dc.pendingSince.size === 0) return true;
    return now - Math.min(...dc.pendingSince.values()) >= this.settleMs;
  }

  private rebuild(): void {
    const local = this.local;
    if (this.stopped || !local?.listed) return;
    const now = Date.now();
    if (local.name === undefined && this.nameFromNodes) this.nameFromEntries();

    if (!this.synced) {
      if (local.pendingSince.size > 0) return; // the first catalog waits for every service
      if (local.name === undefined && !this.nameFromNodes) return; // and for the local name
      // Remote datacenters that answer get a moment to be read completely, so the first
      // catalog usually has them all; one that fails is not waited for.
      this.localReadyAt ??= now;
      const waitUntil = this.localReadyAt + this.settleMs;
      const waiting = this.remotes.some(
        (dc) => !dc.synced && !dc.listFailing && !this.joinable(dc, now),
      );
      if ((waiting || (!this.remotesStarted && this.remoteNames.length > 0)) && now < waitUntil) {
        this.scheduleRebuild(waitUntil - now);
        return;
      }
    }

    // Remote datacenters read completely since they were (re)started or dropped join now; one
    // still being read is looked at again when its reads arrive or its settle time is up.
    const joining = new Set<DatacenterWatch>();
    let nextJoinCheck = Infinity;
    for (const dc of this.remotes) {
      if (dc.synced) continue;
      if (this.joinable(dc, now)) joining.add(dc);
      else if (dc.reachable && dc.pendingSince.size > 0)
        nextJoinCheck = Math.min(
          nextJoinCheck,
          Math.min(...dc.pendingSince.values()) + this.settleMs,
        );
    }
    if (nextJoinCheck < Infinity) this.scheduleRebuild(Math.max(1, nextJoinCheck - now));

    const included = [local, ...this.remotes.filter((dc) => dc.synced || joining.has(dc))];
    if (this.synced) {
      // Newly listed services of datacenters in the catalog: wait for their first read.
      const pending = included.filter((dc) => !joining.has(dc) && dc.pendingSince.size > 0);
      if (pending.length > 0) {
        const oldest = Math.min(...pending.flatMap((dc) => [...dc.pendingSince.values()]));
        if (now - oldest < this.settleMs) {
          this.scheduleRebuild(oldest + this.settleMs - now);
          return;
        }
        this.log.warn(
          {
            services: pending
              .flatMap((dc) =>
                [...dc.pendingSince.keys()].map((n) => (dc.local ? n : `${dc.name}/${n}`)),
              )
              .slice(0, 20),
          },
          'newly listed Consul services not read yet; publishing without them',
        );
      }
    }
    for (const dc of joining) this.join(dc, now);

    const mapped = mapConsulDatacenters(
      included.map((dc) => this.entriesOf(dc)),
      { warningAs: this.warningAs, defaultProtocol: this.defaultProtocol },
    );
    this.logProblems(mapped.problems);
    const joiningNames = new Set([...joining].map((dc) => dc.name));
    const graced = this.applyRestartGrace(mapped.catalog, mapped.criticalNotRun, now);
    const catalog = this.holdNewUnmeshed(graced, mapped.unmeshed, joiningNames);

    const first = !this.synced;
    this.synced = true;
    local.synced = true;
    const text = JSON.stringify(catalog);
    if (text === this.lastPublished) return;
    this.lastPublished = text;
    this.publishedServices = new Set(catalog.services.map((s) => s.name));
    this.publishedHealth = healthByInstance(catalog);
    this.deliver(catalog, first, included);
  }

  /** restart-grace.ts: published health kept over an agent restart; logs what it holds. */
  private applyRestartGrace(catalog: Catalog, criticalNotRun: readonly string[], now: number) {
    for (const [dc, until] of this.graceUntil) if (until <= now) this.graceUntil.delete(dc);
    if (this.graceUntil.size === 0 && this.held.size === 0) return catalog;
    const byName = new Map<string | undefined, number>();
    for (const [dc, until] of this.graceUntil) byName.set(dc.local ? undefined : dc.name, until);
    const localName = this.local?.name;
    const result = applyRestartGrace({
      catalog,
      published: this.publishedHealth,
      criticalNotRun: new Set(criticalNotRun),
      // The local datacenter's instances carry its name once it is known.
      graceUntil: (dc) => byName.get(dc === localName ? undefined : dc),
      now,
    });
    for (const [key, reason] of result.held) {
      if (this.held.has(key)) continue;
      this.heldTotal++;
      this.log.warn(
        { instance: key, reason, graceMs: this.restartGraceMs },
        'Consul reports the instance critical right after coming back; keeping its last health ' +
          'until its checks run or the grace ends',
      );
    }
    for (const key of this.held.keys()) {
      if (result.held.has(key)) continue;
      const health = healthByInstance(result.catalog).get(key);
      this.log.info(
        { instance: key, health: health ?? 'gone' },
        health === 'critical'
          ? 'restart grace over: the instance is still critical in Consul; published as such'
          : 'restart grace: the instance is no longer held',
      );
    }
    this.held = new Map(result.held);
    if (result.nextCheckAt !== undefined)
      this.scheduleRebuild(Math.max(1, result.nextCheckAt - now + 1));
    return result.catalog;
  }

  private join(dc: DatacenterWatch, now: number): void {
    dc.synced = true;
    if (dc.dropped) {
      this.log.info(
        {
          datacenter: dc.name,
          services: dc.listed?.size ?? 0,
          droppedForMs: dc.droppedAt !== undefined ? now - dc.droppedAt : undefined,
        },
        'Consul datacenter read again; its instances are back in the catalog',
      );
      dc.dropped = false;
      dc.droppedAt = undefined;
    } else {
      this.log.info(
        { datacenter: dc.name, services: dc.listed?.size ?? 0, first: !this.synced },
        'Consul datacenter joins the catalog',
      );
    }
  }

  private entriesOf(dc: DatacenterWatch): DatacenterEntries {
    const byService = new Map<string, ConsulHealthEntry[]>();
    for (const name of dc.listed ?? []) {
      const e = dc.entries.get(name);
      if (e) byService.set(name, e);
    }
    return { ...(dc.name !== undefined ? { datacenter: dc.name } : {}), byService };
  }

  /**
   * Consul's agent syncs an app and its sidecar registration to the catalog one after the
   * other, so the app can show up (or, on deregistration, stay) a moment without its sidecar.
   * Routing straight to the app port in that moment would bypass the sidecar, so an instance
   * that newly turns up without a sidecar is held back for `sidecarGraceMs` (default 250 ms)
   * first. Not at the first sync, nor when a datacenter joins: that read sees whatever Consul
   * has settled on.
   */
  private holdNewUnmeshed(
    catalog: Catalog,
    unmeshed: readonly string[],
    joining: ReadonlySet<string | undefined>,
  ): Catalog {
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
    if (joining.size > 0) {
      for (const s of catalog.services)
        for (const i of s.instances)
          if (i.datacenter !== undefined && joining.has(i.datacenter)) {
            const key = `${s.name}/${i.id}`;
            if (current.has(key)) this.publishedUnmeshed.add(key);
          }
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

  private deliver(catalog: Catalog, first: boolean, included: readonly DatacenterWatch[]): void {
    this.updates++;
    this.log.info(
      {
        services: catalog.services.length,
        instances: catalog.services.reduce((n, s) => n + s.instances.length, 0),
        ...(this.remotes.length > 0 ? { datacenters: included.map((dc) => dc.name) } : {}),
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
