// What one replica's xDS server accepts from its clients, so a broken or hostile client (or a
// reconnect storm) costs bounded memory and CPU. Defaults leave a normal mesh of thousands of
// Envoys untouched: each is well above what Envoy does (see the numbers below and
// docs/reliability.md).

export interface XdsLimits {
  /**
   * Streams open at once on this replica. Past it a new stream ends with RESOURCE_EXHAUSTED,
   * so the sidecar reconnects (after its backoff) through its xDS cluster, to another replica
   * when there is one. 0: no limit. With auth on, only streams whose token checks out count
   * (server.ts admit: a flood without tokens must not use up what sidecars need).
   */
  readonly maxStreams: number;
  /** New streams per second, sustained (token bucket; auth on: valid tokens only). 0: no limit. */
  readonly streamRate: number;
  /** New streams accepted at once before streamRate applies (the bucket's size). */
  readonly streamBurst: number;
  /** The largest request accepted; a larger one ends its stream with RESOURCE_EXHAUSTED. */
  readonly maxRequestBytes: number;
  /**
   * Requests per second one stream may send, sustained. Faster, the stream is not read until
   * its next request is due (counted in lucid_mesh_xds_throttled_requests_total); nothing is
   * dropped. 0: no limit.
   */
  readonly requestRate: number;
  /** Requests one stream may send at once before requestRate applies. */
  readonly requestBurst: number;
  /**
   * A stream open this long (±10 % jitter) is closed gracefully so its sidecar reconnects,
   * through its xDS cluster, to any replica: streams spread over the replicas after a
   * rollout instead of staying on the first one up (as Istio does). 0: never.
   */
  readonly maxStreamAgeMs: number;
}

/**
 * - maxStreams 10,000: ten times the 1,000 proxies the benchmark connects to one replica, whose
 *   measured cost is ~85 KiB RSS per stream (bench/RESULTS.md), so ~850 MiB at the limit.
 * - streamBurst 10,000 / streamRate 200/s: a storm of as many proxies as one replica admits
 *   (maxStreams: the benchmark's W9 opens 10,000 at once) fits in the burst and is not slowed
 *   at all; refused past the bucket, they would retry for ~40 s at 200/s. 200/s sustained is above
 *   what a replica serves new proxies at in a 1,000-service mesh (~100/s measured: 1,000 fully
 *   configured in ~10 s), so it only bites on a reconnect loop or a storm beyond the burst.
 *   A stream over the bucket waits up to STREAM_ADMISSION_WAIT_MS for its turn, then is refused.
 * - maxRequestBytes 4 MiB: gRPC's own default. Envoy's largest request is a SotW EDS
 *   subscription naming every cluster, ~40 B a name: 4 MiB is ~100,000 clusters.
 * - requestRate 100/s, requestBurst 200: Envoy sends ~10 requests when it connects and one ACK
 *   per response after; with the store's debounce (100 ms) that is at most ~60 a second in
 *   constant churn. A client looping on requests is held to 100/s: each is cheap to answer
 *   (or answered from shared bytes) and the stream is not read while it does not read ours.
 * - maxStreamAgeMs 30 min: Istio's default. A reconnect costs a sidecar nothing it holds
 *   (same versions on every replica), so the only cost is one stream set-up per half hour.
 */
export const DEFAULT_XDS_LIMITS: XdsLimits = {
  maxStreams: 10_000,
  streamRate: 200,
  streamBurst: 10_000,
  maxRequestBytes: 4 * 1024 * 1024,
  requestRate: 100,
  requestBurst: 200,
  maxStreamAgeMs: 30 * 60_000,
};

/**
 * Resource names one delta stream may hold per type (subscribed, or pending as exceptions):
 * its subscriptions add up over requests, which the request size does not bound. About as
 * many as one SotW request of the default size limit can name (~40 B a name).
 */
export const MAX_NAMES_PER_TYPE = 100_000;

/**
 * When a stream of --max-stream-age `ageMs` is ended: ±10 % so that streams opened together (a
 * rollout) do not all end together, on a grid of 1/1000 of the age (1.8 s for 30 min), so at
 * most 201 distinct delays. The age timer is unref'd, and Node keeps the (empty) list of an
 * unref'd timer's duration until that duration has passed even when the timer is cleared: with a
 * delay of its own per stream, every reconnect left ~140 B behind for 30 min (the soak's heap
 * creep, ~0.5 MiB a minute at 57 reconnects a second).
 */
export function ageOutDelayMs(ageMs: number, random: () => number = Math.random): number {
  const step = Math.max(1, Math.round(ageMs / 1000));
  return Math.round((ageMs * (0.9 + 0.2 * random())) / step) * step;
}

/** How long a new stream over the rate may wait for its turn before it is refused. */
export const STREAM_ADMISSION_WAIT_MS = 1000;

/**
 * A token bucket that lends ahead: `reserve` takes a token now or books the next one free,
 * returning how long to wait for it. Booking ahead (instead of refusing) lets a caller be
 * slowed to the rate rather than turned away.
 */
/** One clock function for every bucket (a default closure per bucket was ~60 B a stream). */
const performanceNow = (): number => performance.now();

export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private readonly now: () => number = performanceNow,
  ) {
    this.tokens = burst;
    this.updatedAt = now();
  }

  /**
   * Takes a token: 0 when one was there, else the milliseconds until the booked one is due.
   * With `maxWaitMs`, a booking further out than that is not made and -1 is returned.
   */
  reserve(maxWaitMs = Infinity): number {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.updatedAt) * this.rate) / 1000);
    this.updatedAt = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    const waitMs = ((1 - this.tokens) * 1000) / this.rate;
    if (waitMs > maxWaitMs) return -1;
    this.tokens -= 1;
    return waitMs;
  }
}

/** Limits with every field set: `partial`'s where given (and a number), the defaults otherwise. */
export function xdsLimits(partial: Partial<XdsLimits> = {}): XdsLimits {
  const out = { ...DEFAULT_XDS_LIMITS };
  for (const key of Object.keys(out) as Array<keyof XdsLimits>) {
    const value = partial[key];
    if (typeof value === 'number' && Number.isFinite(value) && value >= 0) out[key] = value;
  }
  return out;
}
