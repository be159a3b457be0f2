// Coalesces bursts of source changes: fires `delayMs` after the last change, but never later
// than `maxDelayMs` after the first unfired one, so a steady trickle still gets out.
export class Debouncer {
  private timer: NodeJS.Timeout | undefined;
  private firstPendingAt: number | undefined;

  constructor(
    private readonly delayMs: number,
    private readonly maxDelayMs: number,
    private readonly fire: (firstPendingAt: number) => void,
  ) {}

  trigger(now = Date.now()): void {
    this.firstPendingAt ??= now;
    if (this.timer) clearTimeout(this.timer);
    const wait = Math.max(0, Math.min(this.delayMs, this.firstPendingAt + this.maxDelayMs - now));
    this.timer = setTimeout(() => this.flush(), wait);
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const first = this.firstPendingAt;
    this.firstPendingAt = undefined;
    if (first !== undefined) this.fire(first);
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.firstPendingAt = undefined;
  }
}
