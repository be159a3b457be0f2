// A clock for rotation tests: time moves only when the test says so, timers fire in due order.
import type { Clock, TimerHandle } from '../../src/ca/clock.js';

interface Pending {
  due: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

export class ManualClock implements Clock {
  private timers: Pending[] = [];
  private seq = 0;

  constructor(private t: number = Date.now()) {}

  now(): number {
    return this.t;
  }

  setTimer(fn: () => void, ms: number): TimerHandle {
    const timer: Pending = { due: this.t + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.timers.push(timer);
    return { cancel: () => void (timer.cancelled = true) };
  }

  /** Due times of the timers still pending, soonest first. */
  pending(): number[] {
    return this.live()
      .map((t) => t.due)
      .sort((a, b) => a - b);
  }

  /**
   * Moves time forward by `ms`, firing due timers in order. After each, awaits `settle` (e.g.
   * LeafManager.whenIdle) so the async work a timer started (real crypto) finishes first.
   */
  async advance(ms: number, settle: () => Promise<void> = async () => {}): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      const next = this.live()
        .filter((t) => t.due <= end)
        .sort((a, b) => a.due - b.due || a.seq - b.seq)[0];
      if (!next) break;
      next.cancelled = true;
      this.t = Math.max(this.t, next.due);
      next.fn();
      await settle();
    }
    this.t = end;
    await settle();
  }

  /** Jumps to an absolute time (see advance). */
  async advanceTo(time: number, settle?: () => Promise<void>): Promise<void> {
    await this.advance(Math.max(0, time - this.t), settle);
  }

  private live(): Pending[] {
    this.timers = this.timers.filter((t) => !t.cancelled);
    return this.timers;
  }
}
