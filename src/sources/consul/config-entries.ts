// The traffic configuration from Consul's config entries: `consul config write` applies live,
// `consul config delete` stops an entry applying.
//
// One blocking query per entry kind on `GET /v1/config/<kind>` (which lists every entry of
// that kind), run by the catalog's BlockingWatch (watch.ts): the same index handling (reset
// when it goes backwards), wait jitter, per-watch and shared token buckets, and exponential
// backoff with jitter on errors. Six long polls hold six connections: the source has a client
// of its own capped at CONFIG_ENTRY_CONNECTIONS, and the catalog source is given
// `reservedConnections: CONFIG_ENTRY_CONNECTIONS` so that together they stay within
// --consul-max-connections (consulSourcesFromFlags does both).
//
// - Each entry is parsed on its own (traffic-entries.ts): a bad one is left out, listed in
//   problems() and logged once; the others apply.
// - A kind whose read fails keeps its last good entries (retried with backoff; logged, and
//   visible in status()).
// - current() stays undefined until every kind has been read once: a configuration missing a
//   kind it does not know about yet could route differently from what the user wrote.
// - Consul's bookkeeping fields (CreateIndex, ModifyIndex, Hash) are not part of an entry: a
//   `consul config write` of an unchanged entry changes nothing.
import type { Logger } from '../../telemetry/logger.js';
import { ENTRY_KINDS, type EntryKind } from '../../traffic/types.js';
import { EntriesTrafficSource } from '../traffic-entries.js';
import { REMOTE_RESERVED_CONNECTIONS, catalogConnectionsNeeded } from './budget.js';
import { ConsulClient, type ConsulConnection, type ConsulRequestError } from './client.js';
import { ConsulSource, RESERVED_CONNECTIONS } from './consul-source.js';
import {
  ConsulFlagError,
  consulSourceOptionsFromFlags,
  DEFAULT_BACKOFF_MAX_MS,
  DEFAULT_RATE_LIMIT,
  DEFAULT_WAIT_MS,
  type ConsulSourceOptions,
} from './options.js';
import { BlockingWatch, TokenBucket } from './watch.js';

/** Connections the config-entry watches hold: one blocking query per kind. */
export const CONFIG_ENTRY_CONNECTIONS = ENTRY_KINDS.length;

/** Fields Consul adds to every entry it stores; not configuration. */
const BOOKKEEPING = new Set(['CreateIndex', 'ModifyIndex', 'Hash']);

export interface ConsulTrafficSourceOptions {
  readonly connection: ConsulConnection;
  /** Blocking query `wait`, ms. Default 60 s. */
  readonly waitMs?: number;
  /** Requests per second of these watches (when no sharedLimiter). Default 100. */
  readonly rateLimit?: number;
  /** Token bucket shared with the catalog watches (consulSourcesFromFlags passes one). */
  readonly sharedLimiter?: TokenBucket;
  /** First retry pause, ms. Default 250 ms. */
  readonly backoffMinMs?: number;
  /** Longest retry pause, ms. Default 10 s. */
  readonly backoffMaxMs?: number;
}

export interface ConsulTrafficStatus {
  /** Every kind has been read at least once (current() is defined). */
  readonly synced: boolean;
  /** Per kind: read at least once, entries held, and the last error while failing. */
  readonly kinds: Readonly<
    Record<
      EntryKind,
      { readonly read: boolean; readonly entries: number; readonly failing?: string }
    >
  >;
  readonly requestsInFlight: number;
  readonly requestsTotal: number;
  /** Configurations published (first load included). */
  readonly updates: number;
}

export class ConsulTrafficSource extends EntriesTrafficSource {
  private readonly client: ConsulClient;
  private readonly watches = new Map<EntryKind, BlockingWatch<unknown[]>>();
  /** Slots (kind/name) of each kind's last good read. */
  private readonly read = new Map<EntryKind, Set<string>>();
  private readonly failing = new Map<EntryKind, ConsulRequestError>();
  private started = false;
  private outageStartedAt: number | undefined;

  constructor(
    private readonly opts: ConsulTrafficSourceOptions,
    logger: Logger,
  ) {
    super('consul', 'Consul', logger);
    this.client = new ConsulClient(opts.connection, { maxConnections: CONFIG_ENTRY_CONNECTIONS });
  }

  /** Where this source reads from, e.g. "http://127.0.0.1:8500". */
  get address(): string {
    return this.client.address;
  }

  status(): ConsulTrafficStatus {
    const kinds = {} as Record<EntryKind, { read: boolean; entries: number; failing?: string }>;
    for (const kind of ENTRY_KINDS) {
      const err = this.failing.get(kind);
      kinds[kind] = {
        read: this.read.has(kind),
        entries: this.read.get(kind)?.size ?? 0,
        ...(err ? { failing: err.message } : {}),
      };
    }
    return {
      synced: this.current() !== undefined,
      kinds,
      requestsInFlight: this.client.inFlight,
      requestsTotal: this.client.requests,
      updates: this.updates,
    };
  }

  /** Resolves once every kind has been asked for once (answered or failed). */
  async start(): Promise<void> {
    if (this.started) throw new Error('ConsulTrafficSource already started');
    if (this.stopped) throw new Error('ConsulTrafficSource was stopped; create a new one');
    this.started = true;
    const waitMs = this.opts.waitMs ?? DEFAULT_WAIT_MS;
    const backoffMinMs = this.opts.backoffMinMs ?? 250;
    const backoffMaxMs = Math.max(backoffMinMs, this.opts.backoffMaxMs ?? DEFAULT_BACKOFF_MAX_MS);
    const rate = this.opts.rateLimit ?? DEFAULT_RATE_LIMIT;
    const limiter = this.opts.sharedLimiter ?? new TokenBucket(rate, Math.max(1, rate));
    this.log.info(
      { consul: this.client.address, kinds: ENTRY_KINDS, waitMs },
      'watching Consul config entries',
    );
    const pending = new Set<EntryKind>(ENTRY_KINDS);
    let firstRound!: () => void;
    const answered = new Promise<void>((resolve) => (firstRound = resolve));
    const attempted = (kind: EntryKind): void => {
      if (pending.delete(kind) && pending.size === 0) firstRound();
    };
    for (const kind of ENTRY_KINDS) {
      const watch = new BlockingWatch<unknown[]>({
        name: `config/${kind}`,
        fetch: (q) => this.client.configEntries(kind, q),
        waitMs,
        sharedLimiter: limiter,
        backoffMinMs,
        backoffMaxMs,
        onData: (body, info) => {
          attempted(kind);
          if (info.reset) this.resyncOthers(kind);
          this.onEntries(kind, body, info.changed);
        },
        onError: (err, failures, retryInMs) => {
          attempted(kind);
          this.onError(kind, err, failures, retryInMs);
        },
      });
      this.watches.set(kind, watch);
      watch.start();
    }
    await answered;
  }

  async stop(): Promise<void> {
    this.stopPublishing();
    await Promise.all([...this.watches.values()].map((w) => w.stop()));
    this.client.destroy();
  }

  /** current() stays undefined until every kind has been read once. */
  protected override ready(): boolean {
    return this.read.size >= ENTRY_KINDS.length;
  }

  /**
   * One kind's index went backwards (a restarted or different Consul): the other kinds block on
   * indexes from the other history, so they read again at once, as the catalog's watches do.
   */
  private resyncOthers(kind: EntryKind): void {
    this.log.warn(
      { consul: this.client.address, watch: `config/${kind}` },
      'Consul index went backwards (restarted or a different server); re-reading every kind',
    );
    for (const [other, watch] of this.watches) if (other !== kind) watch.resync();
  }

  private onEntries(kind: EntryKind, body: unknown, changed: boolean): void {
    if (this.stopped) return;
    this.recovered(kind);
    if (!changed && this.read.has(kind)) return;
    const previous = this.read.get(kind) ?? new Set<string>();
    const slots = new Set<string>();
    let dirty = !this.read.has(kind);
    for (const item of Array.isArray(body) ? (body as unknown[]) : []) {
      if (typeof item !== 'object' || item === null || Array.isArray(item)) continue;
      const raw: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(item)) if (!BOOKKEEPING.has(k)) raw[k] = v;
      const name = typeof raw.Name === 'string' ? raw.Name : '';
      const slot = `${kind}/${name}`;
      slots.add(slot);
      dirty = this.entries.set(slot, { kind, name, raw, text: JSON.stringify(raw) }) || dirty;
    }
    for (const slot of previous) if (!slots.has(slot)) dirty = this.entries.delete(slot) || dirty;
    this.read.set(kind, slots);
    // Coalesces the kinds answering together (the first round, after a restart) into one.
    if (dirty) this.schedulePublish();
  }

  private onError(
    kind: EntryKind,
    err: ConsulRequestError,
    failures: number,
    retryInMs: number,
  ): void {
    if (this.stopped) return;
    if (this.failing.size === 0) this.outageStartedAt = Date.now();
    this.failing.set(kind, err);
    const fields = {
      watch: `config/${kind}`,
      error: err.message,
      kind: err.kind,
      failures,
      retryInMs,
    };
    const state = this.read.has(kind)
      ? 'keeping its last good entries'
      : 'no traffic configuration until it is read';
    if (failures === 1 || failures % 10 === 0)
      this.log.warn(fields, `Consul config entry read failed; ${state}`);
    else this.log.debug(fields, 'Consul config entry read failed');
  }

  private recovered(kind: EntryKind): void {
    if (!this.failing.delete(kind) || this.failing.size > 0) return;
    const outageMs = this.outageStartedAt ? Date.now() - this.outageStartedAt : undefined;
    this.outageStartedAt = undefined;
    this.log.info(
      { consul: this.client.address, outageMs },
      'Consul config entries readable again',
    );
  }
}

// --- from flags ---------------------------------------------------------------------------------

/**
 * ConsulTrafficSource options from `serve`'s Consul flags: the same connection (--consul,
 * --consul-token, TLS, --consul-dc, --consul-stale), --consul-wait, --consul-rate-limit and
 * --consul-backoff-max as the catalog. No flag of its own.
 */
export function consulTrafficSourceOptionsFromFlags(
  flags: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
): ConsulTrafficSourceOptions {
  const o = consulSourceOptionsFromFlags(flags, env);
  return {
    connection: o.connection,
    ...(o.waitMs !== undefined ? { waitMs: o.waitMs } : {}),
    ...(o.rateLimit !== undefined ? { rateLimit: o.rateLimit } : {}),
    ...(o.backoffMaxMs !== undefined ? { backoffMaxMs: o.backoffMaxMs } : {}),
  };
}

/**
 * The two Consul sources of `serve --source consul`: the catalog and the traffic configuration
 * (config entries), sharing --consul-max-connections (the six config-entry watches are taken
 * off the catalog's budget) and --consul-rate-limit (one token bucket). Throws ConsulFlagError
 * (naming the flag and value) for bad flags, or a --consul-max-connections too small for both.
 */
export function consulSourcesFromFlags(
  flags: Record<string, unknown>,
  logger: Logger,
  env: NodeJS.ProcessEnv = process.env,
): { catalog: ConsulSource; traffic: ConsulTrafficSource } {
  const catalogOpts: ConsulSourceOptions = consulSourceOptionsFromFlags(flags, env);
  const max = catalogOpts.maxConnections!;
  const remotes = catalogOpts.remoteDatacenters?.length ?? 0;
  const least = CONFIG_ENTRY_CONNECTIONS + catalogConnectionsNeeded(remotes);
  if (max < least) {
    throw new ConsulFlagError(
      '--consul-max-connections',
      `expected at least ${least} with traffic configuration from Consul ` +
        `(${CONFIG_ENTRY_CONNECTIONS} config-entry watches, ${RESERVED_CONNECTIONS} catalog list ` +
        `and refetch connections, 1 service watch` +
        (remotes > 0 ? `, ${REMOTE_RESERVED_CONNECTIONS} per remote datacenter` : '') +
        `), got ${JSON.stringify(String(max))}`,
    );
  }
  const rate = catalogOpts.rateLimit ?? DEFAULT_RATE_LIMIT;
  const limiter = new TokenBucket(rate, Math.max(1, rate));
  const catalog = new ConsulSource(
    { ...catalogOpts, reservedConnections: CONFIG_ENTRY_CONNECTIONS, sharedLimiter: limiter },
    logger,
  );
  const traffic = new ConsulTrafficSource(
    { ...consulTrafficSourceOptionsFromFlags(flags, env), sharedLimiter: limiter },
    logger,
  );
  return { catalog, traffic };
}

/**
 * The traffic source alone (the catalog from elsewhere). With the catalog from Consul as well,
 * use consulSourcesFromFlags: it keeps the two within one connection budget.
 */
export function consulTrafficSourceFromFlags(
  flags: Record<string, unknown>,
  logger: Logger,
): ConsulTrafficSource {
  return new ConsulTrafficSource(consulTrafficSourceOptionsFromFlags(flags), logger);
}
