// A bounded request loop for the outage tests: a request every 1000/rps ms through a sidecar's
// outbound listener (a fresh connection each, as callThrough does), every answer recorded with
// the time it was sent, so a test can count failures over the whole loop or over one phase of
// it. It stops by itself after `maxMs`, or earlier with stop(). Also a probe that GETs a URL
// (the control plane's /ready) at an interval and counts the answers that were not 200.
import { setTimeout as sleep } from 'node:timers/promises';
import { httpGet } from './http-app.js';
import type { Sidecar } from './mesh.js';
import { callThrough } from './traffic-app.js';

export interface Shot {
  /** ms since the loop started, when the request was sent. */
  readonly at: number;
  done: boolean;
  status?: number;
  app?: string;
  error?: string;
  /** A failed answer's body: Envoy's local replies say why (reset reason, TLS error, no healthy upstream). */
  body?: string;
}

export interface LoadCount {
  readonly total: number;
  readonly failed: number;
  /** The first few failures, with their time (ms since the loop started). */
  readonly failures: readonly string[];
  /** Requests answered per app (x-app header; "(envoy)" when Envoy answered itself). */
  readonly apps: Readonly<Record<string, number>>;
}

export interface LoadLoop {
  /** ms since the loop started. */
  now(): number;
  /** Requests sent in [fromMs, toMs) (ms since the start) that have completed, counted. */
  count(fromMs?: number, toMs?: number): LoadCount;
  /** Stops sending, waits for every request in flight, and counts the whole loop. */
  stop(): Promise<LoadCount>;
  /** Resolves when the loop has stopped (by itself or through stop()) and every request ended. */
  readonly done: Promise<LoadCount>;
}

const failedShot = (s: Shot): boolean =>
  s.error !== undefined || s.status === undefined || s.status < 200 || s.status > 299;

export function startLoadLoop(
  sidecar: Sidecar,
  host: string,
  opts: { readonly rps?: number; readonly maxMs: number; readonly timeoutMs?: number },
): LoadLoop {
  const rps = opts.rps ?? 100;
  const shots: Shot[] = [];
  const pending = new Set<Promise<void>>();
  const start = performance.now();
  let stopping = false;
  const now = (): number => performance.now() - start;

  const count = (fromMs = 0, toMs = Infinity): LoadCount => {
    let total = 0;
    let failed = 0;
    const failures: string[] = [];
    const apps: Record<string, number> = {};
    for (const s of shots) {
      if (!s.done || s.at < fromMs || s.at >= toMs) continue;
      total++;
      if (failedShot(s)) {
        failed++;
        if (failures.length < 10)
          failures.push(
            `${s.at.toFixed(0)} ms: ${s.error ?? `HTTP ${s.status} from ${s.app ?? 'Envoy'} ${JSON.stringify(s.body ?? '')}`}`,
          );
      } else {
        const app = s.app ?? '(envoy)';
        apps[app] = (apps[app] ?? 0) + 1;
      }
    }
    return { total, failed, failures, apps };
  };

  const run = async (): Promise<LoadCount> => {
    for (let k = 0; !stopping; k++) {
      const wait = (k * 1000) / rps - now();
      if (wait > 0) await sleep(wait);
      if (stopping || now() >= opts.maxMs) break;
      const shot: Shot = { at: now(), done: false };
      shots.push(shot);
      const p = callThrough(sidecar, host, { timeoutMs: opts.timeoutMs ?? 5_000 }).then(
        (r) => {
          shot.status = r.status;
          if (r.app !== undefined) shot.app = r.app;
          if (failedShot(shot)) shot.body = r.body.slice(0, 300);
          shot.done = true;
        },
        (err: Error) => {
          shot.error = err.message;
          shot.done = true;
        },
      );
      pending.add(p);
      void p.finally(() => pending.delete(p));
    }
    stopping = true;
    await Promise.all([...pending]);
    return count();
  };

  const done = run();
  return {
    now,
    count,
    done,
    stop: () => {
      stopping = true;
      return done;
    },
  };
}

export interface Probe {
  /** Answers so far, and those that were not 200 (with the first few reasons). */
  readonly total: number;
  readonly bad: number;
  readonly badReasons: readonly string[];
  stop(): Promise<void>;
}

/** GETs `url` every `intervalMs` until stopped (or `maxMs`); counts answers that are not 200. */
export function startProbe(url: string, intervalMs: number, maxMs: number): Probe {
  let total = 0;
  let bad = 0;
  const badReasons: string[] = [];
  let stopping = false;
  const start = performance.now();
  const run = (async () => {
    while (!stopping && performance.now() - start < maxMs) {
      try {
        const res = await httpGet(url, {}, 2_000);
        total++;
        if (res.status !== 200) {
          bad++;
          if (badReasons.length < 5) badReasons.push(`HTTP ${res.status}: ${res.body}`);
        }
      } catch (err) {
        total++;
        bad++;
        if (badReasons.length < 5) badReasons.push((err as Error).message);
      }
      await sleep(intervalMs);
    }
  })();
  return {
    get total() {
      return total;
    },
    get bad() {
      return bad;
    },
    get badReasons() {
      return badReasons;
    },
    stop: async () => {
      stopping = true;
      await run;
    },
  };
}
