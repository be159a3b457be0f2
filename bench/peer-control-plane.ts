// The go-control-plane reference peer (bench/peers/go-control-plane) as a BenchControlPlane, so
// a session runs against it exactly as against lucid-mesh. Its CPU and RSS are read from
// /proc/<pid> (the peer reports only its own counters: responses, ACKs, snapshots); its
// snapshot events and replies come as JSON lines on stdout, commands go to its stdin.
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { BenchControlPlane, CpStats, SnapshotEvent } from './control-plane.js';
import { REPO_ROOT } from './ipc.js';
import { nowMs } from './load/protocol.js';
import type { PeerMode } from './types.js';

export const PEER_NAME = 'go-control-plane';
/** Pinned in bench/peers/go-control-plane/go.mod. */
export const PEER_VERSION = 'v0.14.0 (envoy v1.40.0)';

/** Builds the peer (or finds it in the tools cache) with scripts/install-tools.sh. */
export function peerBinary(): string {
  const out = execFileSync('bash', [join(REPO_ROOT, 'scripts', 'install-tools.sh'), 'gcp-peer'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const bin = out.trim().split('\n').pop();
  if (!bin) throw new Error('scripts/install-tools.sh gcp-peer printed no path');
  return bin;
}

/**
 * A process's CPU (µs) and RSS (bytes) from /proc. CPU is the sum of its threads' run time in
 * /proc/<pid>/task/<tid>/schedstat (ns), not utime + stime from /proc/<pid>/stat, whose 10 ms
 * ticks are too coarse for one change at W1; it is reported as user time (the split is lost).
 */
export function procUsage(pid: number): { userUs: number; systemUs: number; rss: number } {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread exited meanwhile
    }
  }
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? NaN);
  return { userUs: ns / 1000, systemUs: 0, rss: rssKb * 1024 };
}

interface PeerReply {
  readonly at: number;
  readonly responses: number;
  readonly responseBytes: number;
  readonly acks: number;
  readonly nacks: number;
  readonly snapshotsBuilt: number;
  readonly streamsOpened: number;
  readonly streamsClosed: number;
  readonly connected: number;
  readonly heapUsed: number;
  readonly heapTotal: number;
  readonly error?: string;
}

export async function startPeerControlPlane(
  opts: { catalogPath: string; peerMode: PeerMode; binary?: string },
  logPath: string,
): Promise<BenchControlPlane> {
  const bin = opts.binary ?? peerBinary();
  const logFd = openSync(logPath, 'a');
  const child = spawn(bin, ['--catalog', opts.catalogPath, '--peer-mode', opts.peerMode], {
    stdio: ['pipe', 'pipe', logFd],
  });
  closeSync(logFd);
  const pid = child.pid ?? -1;
  let exitInfo: string | undefined;
  const exited = new Promise<string>((resolve) =>
    child.once('exit', (code, signal) => {
      exitInfo = signal ? `signal ${signal}` : `code ${code}`;
      for (const [, p] of pending) p.reject(new Error(`${PEER_NAME} peer exited (${exitInfo})`));
      pending.clear();
      resolve(exitInfo);
    }),
  );
  // Killed with the harness, as the forked children are (ipc.ts track()).
  const onExit = () => child.kill('SIGKILL');
  process.once('exit', onExit);

  const snapshots: SnapshotEvent[] = [];
  const buildMs: number[] = [];
  const waiters = new Set<() => void>();
  const pending = new Map<string, { resolve(r: PeerReply): void; reject(e: Error): void }>();
  let readyResolve: (port: number) => void = () => undefined;
  let readyReject: (e: Error) => void = () => undefined;
  const ready = new Promise<number>((resolve, reject) => {
    readyResolve = resolve;
    readyReject = reject;
  });
  let initial = true;
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let e: Record<string, unknown>;
    try {
      e = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    if (e.ev === 'ready') readyResolve(Number(e.xdsPort));
    else if (e.ev === 'failed') readyReject(new Error(String(e.message)));
    else if (e.ev === 'reply') {
      const p = pending.get(String(e.id));
      pending.delete(String(e.id));
      if (typeof e.error === 'string') p?.reject(new Error(`${PEER_NAME} peer: ${e.error}`));
      else p?.resolve(e as unknown as PeerReply);
    } else if (e.ev === 'snapshot') {
      // The initial load is not a change (as lucid-mesh's cp-child counts it).
      if (initial) {
        initial = false;
        return;
      }
      const s = e as unknown as SnapshotEvent;
      snapshots.push({ ...s, ev: 'snapshot', previous: undefined });
      buildMs.push(Math.round(s.builtAt - s.buildStartedAt));
      for (const w of [...waiters]) w();
    }
  });
  void exited.then((info) => readyReject(new Error(`${PEER_NAME} peer exited (${info})`)));

  let seq = 0;
  const ask = (op: 'stats' | 'gc', timeoutMs = 30_000): Promise<PeerReply> => {
    if (exitInfo) return Promise.reject(new Error(`${PEER_NAME} peer exited (${exitInfo})`));
    const id = String(++seq);
    return new Promise<PeerReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`${PEER_NAME} peer: no reply to ${op} within ${timeoutMs} ms`));
      }, timeoutMs);
      pending.set(id, {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      child.stdin!.write(`${op} ${id}\n`);
    });
  };
  const stats = async (op: 'stats' | 'gc'): Promise<CpStats> => {
    const r = await ask(op);
    const u = procUsage(pid);
    return {
      at: nowMs(),
      cpuUserUs: u.userUs,
      cpuSystemUs: u.systemUs,
      rss: u.rss,
      heapUsed: r.heapUsed,
      heapTotal: r.heapTotal,
      external: 0,
      arrayBuffers: 0,
      encoded: 0,
      reused: 0,
      snapshotsBuilt: r.snapshotsBuilt,
      buildErrors: 0,
      responses: r.responses,
      responseBytes: r.responseBytes,
      acks: r.acks,
      nacks: r.nacks,
      staleNonces: 0,
      badRequests: 0,
      streamsOpened: r.streamsOpened,
      streamsClosed: r.streamsClosed,
      connected: r.connected,
      version: snapshots.at(-1)?.version,
    };
  };

  let xdsPort: number;
  try {
    xdsPort = await Promise.race([
      ready,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error('not ready within 60 s')), 60_000),
      ),
    ]);
  } catch (err) {
    child.kill('SIGKILL');
    process.removeListener('exit', onExit);
    throw new Error(`${PEER_NAME} peer failed to start: ${(err as Error).message}`);
  }

  return {
    // The peer is no IPC child; nothing in a session uses `proc`.
    proc: undefined as never,
    xdsPort,
    adminPort: 0,
    snapshots,
    logPath,
    stats: () => stats('stats'),
    gcStats: () => stats('gc'),
    resource: () => Promise.resolve(undefined),
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
    heapSnapshot: () => Promise.reject(new Error(`${PEER_NAME} peer: no heap snapshot`)),
    profileStart: () => Promise.reject(new Error(`${PEER_NAME} peer: no profiler`)),
    profileStop: () => Promise.reject(new Error(`${PEER_NAME} peer: no profiler`)),
    metricsText: () => Promise.resolve(''),
    loggedBuildMs: () => [...buildMs],
    async stop() {
      if (!exitInfo) {
        child.stdin!.end('stop\n');
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(timer);
      }
      process.removeListener('exit', onExit);
    },
  };
}
