// Coalesces bursts of source changes. A change after a quiet spell (no build for `delayMs`) is
// built at once, on the next turn of the event loop so that changes of the same turn join it.
// Changes that follow a build within `delayMs` are coalesced: fired `delayMs` after the last of
// them, never later than `maxDelayMs` after the first, so a steady trickle still gets out.
// Why a leading edge: a lone change, the common case, then waits for nothing. Every change
// waiting out the whole debounce put each one at 100 ms + the build, so the seeds'
// HighServiceDiscoveryLatency alert (p95 source change → snapshot above 100 ms) fired on any
// catalog activity with the default settings.
export class Debouncer {
  private timer: NodeJS.Timeout | undefined;
  private firstPendingAt: number | undefined;
  /** A leading build is due on the next turn: later changes of this turn join it. */
  private leading = false;
  private lastFiredAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly delayMs: number,
    private readonly maxDelayMs: number,
    private readonly fire: (firstPendingAt: number) => void,
  ) {}

  trigger(now = Date.now()): void {
    if (this.leading) return;
    const quiet = this.firstPendingAt === undefined && now - this.lastFiredAt >= this.delayMs;
    this.firstPendingAt ??= now;
    if (this.timer) clearTimeout(this.timer);
    if (quiet) {
      this.leading = true;
      this.timer = setTimeout(() => this.flush(), 0);
      return;
    }
    const wait = Math.max(0, Math.min(this.delayMs, this.firstPendingAt + this.maxDelayMs - now));
    this.timer = setTimeout(() => this.flush(), wait);
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.leading = false;
    const first = this.firstPendingAt;
    this.firstPendingAt = undefined;
    if (first !== undefined) {
      this.lastFiredAt = Date.now();
      this.fire(first);
    }
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.leading = false;
    this.firstPendingAt = undefined;
  }
}
