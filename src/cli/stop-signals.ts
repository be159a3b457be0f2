// How a lucid-mesh command that runs until stopped (tail, events, register --ttl) is stopped:
// SIGINT (Ctrl-C) and SIGTERM (a supervisor) run its cleanup and it exits 0, the normal end
// of such a command, within STOP_GRACE_MS whatever its cleanup waits for (a broker that stopped
// answering). serve has its own drain (--drain-seconds). One-shot commands keep Node's
// default: a signal ends them at once.

import { exitOnceWritten } from './stdout-closed.js';

export const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const;
export type StopSignal = (typeof STOP_SIGNALS)[number];

/** The longest a stopped command's cleanup may take before it exits anyway. */
export const STOP_GRACE_MS = 3000;

/** Calls `handler` on the first SIGINT or SIGTERM; a second one ends the process at once. */
export function onStopSignal(handler: (signal: StopSignal) => void): void {
  let seen = false;
  for (const signal of STOP_SIGNALS) {
    process.on(signal, () => {
      if (seen) process.exit(1);
      seen = true;
      handler(signal);
    });
  }
}

/** Exits with `code` once `cleanup` settles and stdout is written, or after STOP_GRACE_MS. */
export function exitAfter(cleanup: Promise<unknown>, code: number): void {
  setTimeout(() => process.exit(code), STOP_GRACE_MS);
  void cleanup.catch(() => undefined).finally(() => exitOnceWritten(code));
}
