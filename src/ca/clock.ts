// Time and timers behind an interface, so rotation logic runs in tests on a manual clock
// instead of real waits.

export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Runs `fn` after `ms`. Real timers are unref'd: a pending renewal never keeps a CLI alive. */
  setTimer(fn: () => void, ms: number): TimerHandle;
}

// setTimeout fires at once for delays above 2^31-1 ms (~24.8 days); long renewals
// (CERT_VALIDITY_DAYS=90) re-arm in steps instead.
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(fn, ms) {
    const due = Date.now() + Math.max(0, ms);
    let timer: NodeJS.Timeout;
    const arm = () => {
      const left = due - Date.now();
      timer = setTimeout(
        left > MAX_TIMEOUT_MS ? arm : fn,
        Math.min(Math.max(0, left), MAX_TIMEOUT_MS),
      );
      timer.unref();
    };
    arm();
    return { cancel: () => clearTimeout(timer) };
  },
};
