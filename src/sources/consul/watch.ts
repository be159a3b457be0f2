// One Consul blocking query, run in a loop: `?index=<last X-Consul-Index>&wait=…`, following
// Consul's guidance for blocking-query clients:
// - the first request does not block (index 0); later ones block on the last index;
// - index went backwards (a restarted or different server) → reset to 0: the next request
//   reads the current state without blocking, and blocking resumes from its index;
// - an index < 1 is treated as 1, so a bogus 0 from Consul cannot make us spin;
// - `wait` carries a little client-side jitter so many watches do not expire together;
// - every request takes a token from a per-watch and a shared token bucket: no busy loop even
//   if Consul answers at once every time;
// - errors back off exponentially with jitter, and reset the index: after an outage the first
//   request reads the current state at once instead of waiting out a stale index on a restarted
//   Consul (whose index starts over, so a blocking read on the old one would just sit there).
import { setTimeout as sleep } from 'node:timers/promises';
import type { BlockingQuery, QueryResult } from './client.js';
import { ConsulRequestError } from './client.js';

/** A token bucket: `ratePerSec` tokens per second, at most `burst` saved up. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly ratePerSec: number,
    readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = burst;
    this.last = now();
  }

  /** Takes one token, waiting for it if none is left. Rejects when `signal` aborts. */
  async take(signal?: AbortSignal): Promise<void> {
    for (;;) {
      const t = this.now();
      this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.ratePerSec);
      this.last = t;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      const waitMs = Math.ceil(((1 - this.tokens) / this.ratePerSec) * 1000);
      await sleep(waitMs, undefined, { signal });
    }
  }
}

/** Exponential backoff with jitter: a random point in the upper half of min·2^attempt (capped). */
export function backoffDelay(
  attempt: number,
  minMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** The index to block on next, given the previous one and the response's X-Consul-Index. */
export function nextIndex(previous: number, received: number): { index: number; reset: boolean } {
  if (received < previous) return { index: 0, reset: true };
  return { index: Math.max(1, received), reset: false };
}

export interface WatchOptions<T> {
  /** For logs and errors, e.g. "health/web". */
  readonly name: string;
  readonly fetch: (q: BlockingQuery) => Promise<QueryResult<T>>;
  readonly waitMs: number;
  /** Shared by every watch of the source. */
  readonly sharedLimiter: TokenBucket;
  /** Requests per second of this watch alone (burst the same). Default 10. */
  readonly perWatchRate?: number;
  readonly backoffMinMs: number;
  readonly backoffMaxMs: number;
  /**
   * A response: `changed` is false when the index did not move (the wait expired). Called for
   * the first response and after an index reset with changed = true.
   */
  readonly onData: (body: T, info: { index: number; changed: boolean; reset: boolean }) => void;
  /** A failed request; `failures` counts consecutive failures (1 = first). */
  readonly onError: (err: ConsulRequestError, failures: number, retryInMs: number) => void;
  readonly random?: () => number;
}

export class BlockingWatch<T> {
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private index = 0;
  private failures = 0;
  /** Aborts the request in flight only (resync), not the loop. */
  private request: AbortController | undefined;
  /** Cuts the backoff pause short (retryNow), not the loop. */
  private pause: AbortController | undefined;
  private readonly ownLimiter: TokenBucket;
  private readonly random: () => number;

  constructor(private readonly opts: WatchOptions<T>) {
    const rate = opts.perWatchRate ?? 10;
    this.ownLimiter = new TokenBucket(rate, rate);
    this.random = opts.random ?? Math.random;
  }

  get name(): string {
    return this.opts.name;
  }

  /** The index the next request blocks on (0 = not blocking). */
  get lastIndex(): number {
    return this.index;
  }

  get failing(): boolean {
    return this.failures > 0;
  }

  start(): void {
    this.loop ??= this.run();
  }

  /**
   * Forget the index: the request in flight (blocking on an index that may belong to another
   * Consul's history) is abandoned and the current state is read at once.
   */
  resync(): void {
    this.index = 0;
    this.request?.abort();
  }

  /**
   * While failing: end the backoff pause and ask again at once (the rate limits still apply).
   * For when something else shows that Consul answers again, e.g. the service list recovered.
   */
  retryNow(): void {
    this.pause?.abort();
  }

  /** Aborts the request in flight; resolves when the loop has ended. No callbacks after. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    const { signal } = this.abort;
    while (!signal.aborted) {
      try {
        await this.ownLimiter.take(signal);
        await this.opts.sharedLimiter.take(signal);
      } catch {
        return; // aborted
      }
      const blockingOn = this.index;
      // Up to 10 % less than `wait`, so watches started together drift apart.
      const waitMs = Math.max(1000, Math.round(this.opts.waitMs * (1 - 0.1 * this.random())));
      const request = new AbortController();
      this.request = request;
      const onStop = (): void => request.abort();
      signal.addEventListener('abort', onStop, { once: true });
      let result: QueryResult<T> | undefined;
      let failure: unknown;
      try {
        result = await this.opts.fetch({ index: blockingOn, waitMs, signal: request.signal });
      } catch (err) {
        failure = err;
      } finally {
        signal.removeEventListener('abort', onStop);
        this.request = undefined;
      }
      if (signal.aborted) return;
      // resync() abandoned this request (or raced with its answer): ask again, at index 0.
      if (request.signal.aborted) continue;
      if (result === undefined) {
        const error =
          failure instanceof ConsulRequestError
            ? failure
            : new ConsulRequestError(`${this.opts.name}: ${String(failure)}`, 'invalid-response');
        this.failures++;
        this.index = 0;
        const delay = backoffDelay(
          this.failures - 1,
          this.opts.backoffMinMs,
          this.opts.backoffMaxMs,
          this.random,
        );
        this.opts.onError(error, this.failures, delay);
        const pause = new AbortController();
        this.pause = pause;
        signal.addEventListener('abort', () => pause.abort(), { once: true, signal: pause.signal });
        try {
          await sleep(delay, undefined, { signal: pause.signal });
        } catch {
          if (signal.aborted) return; // stopped; otherwise retryNow()
        } finally {
          this.pause = undefined;
          pause.abort(); // drops the stop listener
        }
        continue;
      }
      this.failures = 0;
      const { index, reset } = nextIndex(blockingOn, result.index);
      this.index = index;
      const changed = blockingOn === 0 || reset || result.index !== blockingOn;
      this.opts.onData(result.body, { index: result.index, changed, reset });
    }
  }
}
