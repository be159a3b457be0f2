// Harness side of the control plane under test: starts bench/cp-child.ts in its own process
// (so its CPU and memory are its own), collects its snapshot events, asks it for stats.
import { closeSync, openSync, readFileSync } from 'node:fs';
import type { CpChildConfig, CpStats, SnapshotEvent } from './cp-child.js';
import { forkCompiled, track, type IpcChild } from './ipc.js';

export type { CpStats, SnapshotEvent };

export interface BenchControlPlane {
  readonly proc: IpcChild;
  readonly xdsPort: number;
  readonly adminPort: number;
  readonly snapshots: SnapshotEvent[];
  readonly logPath: string;
  stats(): Promise<CpStats>;
  /** Full GC (twice), then stats. */
  gcStats(): Promise<CpStats>;
  resource(kind: string, name: string): Promise<{ version: string; value: Uint8Array } | undefined>;
  /** Resolves with the first snapshot event after `index` in `snapshots` (by position). */
  nextSnapshot(afterIndex: number, timeoutMs: number): Promise<SnapshotEvent>;
  /** Writes a V8 heap snapshot of the control plane to `path` (node:v8 writeHeapSnapshot). */
  heapSnapshot(path: string): Promise<void>;
  profileStart(): Promise<void>;
  profileStop(path: string): Promise<void>;
  metricsText(): Promise<string>;
  /** `buildMs` of each 'snapshot built' log line (what the control plane itself reports). */
  loggedBuildMs(): number[];
  stop(): Promise<void>;
}

export async function startBenchControlPlane(
  config: CpChildConfig,
  logPath: string,
): Promise<BenchControlPlane> {
  const logFd = openSync(logPath, 'a');
  const proc = track(
    forkCompiled('control plane', './cp-child.ts', {
      env: { LUCID_BENCH_CP: JSON.stringify(config) },
      // LUCID_BENCH_CP_FLAGS: more node/V8 flags for the control plane (e.g. --trace-gc).
      execArgv: [
        '--expose-gc',
        ...(process.env.LUCID_BENCH_CP_FLAGS?.split(/\s+/).filter(Boolean) ?? []),
      ],
      stdio: ['ignore', logFd, logFd],
    }),
  );
  closeSync(logFd);
  const snapshots: SnapshotEvent[] = [];
  const waiters = new Set<() => void>();
  proc.on((e) => {
    if (e.ev === 'snapshot') {
      snapshots.push(e as unknown as SnapshotEvent);
      for (const w of [...waiters]) w();
    }
  });
  const ready = await proc
    .waitFor(
      (e) => (e.ev === 'ready' ? e : e.ev === 'failed' ? { failed: e.message } : undefined),
      120_000,
      'control plane start',
    )
    .catch((err: Error) => ({ failed: err.message }));
  if ('failed' in ready) {
    await proc.kill();
    throw new Error(`control plane failed to start: ${String(ready.failed)}\n${tailOf(logPath)}`);
  }
  const xdsPort = Number(ready.xdsPort);
  const adminPort = Number(ready.adminPort);

  return {
    proc,
    xdsPort,
    adminPort,
    snapshots,
    logPath,
    stats: () => proc.request<CpStats>({ op: 'stats' }),
    gcStats: () => proc.request<CpStats>({ op: 'gc' }),
    resource: (kind, name) => proc.request({ op: 'resource', kind, name }),
    nextSnapshot(afterIndex, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const s = snapshots[afterIndex + 1];
          if (!s) return false;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(s);
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no new snapshot within ${timeoutMs} ms`));
        }, timeoutMs);
        if (!check()) waiters.add(check);
      });
    },
    async heapSnapshot(path) {
      await proc.request({ op: 'heapSnapshot', path }, 600_000);
    },
    async profileStart() {
      await proc.request({ op: 'profileStart' });
    },
    async profileStop(path) {
      await proc.request({ op: 'profileStop', path }, 120_000);
    },
    async metricsText() {
      const res = await fetch(`http://127.0.0.1:${adminPort}/metrics`);
      return res.text();
    },
    loggedBuildMs() {
      const out: number[] = [];
      let text: string;
      try {
        text = readFileSync(logPath, 'utf8');
      } catch {
        return out;
      }
      for (const line of text.split('\n')) {
        if (!line.includes('"snapshot built"')) continue;
        try {
          const rec = JSON.parse(line) as { buildMs?: number };
          if (typeof rec.buildMs === 'number') out.push(rec.buildMs);
        } catch {
          // not JSON
        }
      }
      return out;
    },
    async stop() {
      if (!proc.alive) return;
      await proc.request({ op: 'stop' }, 10_000).catch(() => undefined);
      await proc.kill(3000);
    },
  };
}

function tailOf(path: string): string {
  try {
    const text = readFileSync(path, 'utf8');
    return text.slice(-4000);
  } catch {
    return '';
  }
}

/** Sums every sample of a Prometheus metric (all label sets) in /metrics text. */
export function metricTotal(text: string, name: string): number | undefined {
  let total: number | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) {
      const value = Number(line.slice(line.lastIndexOf(' ') + 1));
      if (Number.isFinite(value)) total = (total ?? 0) + value;
    }
  }
  return total;
}
