// The store's debouncer: a lone change is built at once, a burst is coalesced, a steady
// trickle still gets out within the longest wait.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Debouncer } from '../../src/snapshot/debouncer.js';

describe('Debouncer', () => {
  let fired: Array<{ at: number; first: number }>;
  let d: Debouncer;
  const trigger = () => d.trigger(Date.now());

  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
    fired = [];
    d = new Debouncer(100, 1000, (first) => fired.push({ at: Date.now(), first }));
  });
  afterEach(() => {
    d.cancel();
    vi.useRealTimers();
  });

  it('builds a lone change at once, with the changes of the same turn', () => {
    trigger();
    trigger();
    trigger();
    vi.advanceTimersByTime(0);
    expect(fired).toEqual([{ at: 0, first: 0 }]);
    vi.advanceTimersByTime(1000);
    expect(fired).toHaveLength(1);
  });

  it('coalesces the changes that follow a build until the source has been quiet', () => {
    trigger();
    vi.advanceTimersByTime(0);
    for (const t of [30, 60, 90]) {
      vi.setSystemTime(t);
      trigger();
    }
    vi.advanceTimersByTime(99);
    expect(fired).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual([
      { at: 0, first: 0 },
      { at: 190, first: 30 },
    ]);
  });

  it('gets a steady trickle out within the longest wait', () => {
    trigger();
    vi.advanceTimersByTime(0);
    for (let t = 50; t <= 2200; t += 50) {
      vi.advanceTimersByTime(t - Date.now());
      trigger();
    }
    // The leading build, then one per second: the trickle never goes quiet.
    expect(fired.map((f) => f.first)).toEqual([0, 50, 1050]);
    expect(fired.map((f) => f.at - f.first)).toEqual([0, 1000, 1000]);
  });

  it('builds at once again after a quiet spell as long as the debounce', () => {
    trigger();
    vi.advanceTimersByTime(99);
    trigger(); // 99 ms after the build: coalesced
    vi.advanceTimersByTime(100);
    expect(fired.map((f) => f.at)).toEqual([0, 199]);
    vi.advanceTimersByTime(100);
    trigger(); // 100 ms after the last build: at once
    vi.advanceTimersByTime(0);
    expect(fired.map((f) => f.at)).toEqual([0, 199, 299]);
  });

  it('flush builds what is pending now; cancel drops it', () => {
    vi.advanceTimersByTime(10);
    trigger();
    d.flush();
    expect(fired).toEqual([{ at: 10, first: 10 }]);
    trigger();
    d.cancel();
    vi.advanceTimersByTime(2000);
    expect(fired).toHaveLength(1);
  });
});
