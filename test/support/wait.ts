// Generic polling: wait until `check` returns something other than undefined/false.
import { setTimeout as sleep } from 'node:timers/promises';

export interface WaitOptions {
  /** What we are waiting for, used in the timeout error ("timed out after 10000ms waiting for <what>"). */
  what: string;
  /** Default 10 s. */
  timeoutMs?: number;
  /** Default 100 ms. */
  intervalMs?: number;
  /** Extra text for the timeout error (e.g. a process's log tail); evaluated on failure only. */
  details?: () => string;
  /** Checked before every poll: a returned message stops the wait at once (e.g. process died). */
  failIf?: () => string | undefined;
}

export class WaitError extends Error {
  constructor(
    message: string,
    readonly lastError?: unknown,
  ) {
    super(message);
    this.name = 'WaitError';
  }
}

/**
 * Polls `check` every `intervalMs` until it returns a value that is neither `undefined` nor
 * `false`, and returns that value. A throwing check counts as "not yet" (its last error is
 * reported on timeout). The check always runs at least once, and once more at the deadline.
 */
export async function waitFor<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  opts: WaitOptions,
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const intervalMs = opts.intervalMs ?? 100;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  const failure = (message: string, err?: unknown): WaitError => {
    const details = opts.details?.();
    return new WaitError(details ? `${message}\n${details}` : message, err);
  };
  for (;;) {
    const fatal = opts.failIf?.();
    if (fatal !== undefined) throw failure(`gave up waiting for ${opts.what}: ${fatal}`);
    const last = Date.now() >= deadline;
    try {
      const result = await check();
      if (result !== undefined && result !== false) return result;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (last) break;
    await sleep(Math.max(0, Math.min(intervalMs, deadline - Date.now())));
  }
  let message = `timed out after ${timeoutMs}ms waiting for ${opts.what}`;
  if (lastError !== undefined) {
    message += `\nlast error: ${lastError instanceof Error ? lastError.message : String(lastError)}`;
  }
  throw failure(message, lastError);
}
