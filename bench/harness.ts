// Runs a benchmark set: sessions (simulated sidecars) and real-Envoy runs, then writes the run
// file (JSON) and regenerates RESULTS.md from every run file in the output directory.
import { DEFAULT_XDS_TRANSPORT, type XdsTransportName } from '../src/xds/ads-transport.js';
import { ensureBuilt } from './build.js';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { runEnvoy } from './envoy.js';
import { REPO_ROOT } from './ipc.js';
import { machineInfo } from './machine.js';
import { writeResults } from './report.js';
import { peerBinary } from './peer-control-plane.js';
import { runSession } from './session.js';
import { runSoak, type SoakPlan } from './soak.js';
import { runFailover, type FailoverPlan } from './failover.js';
import { runScopeEnvoy } from './scope-envoy.js';
import { runIdleRss } from './idle-rss.js';
import {
  RESULT_SCHEMA,
  type CpSettings,
  type EnvoyRunResult,
  type FailoverResult,
  type ScopeEnvoyResult,
  type IdleRssResult,
  type Mode,
  type PeerMode,
  type RunResult,
  type SessionResult,
  type SoakResult,
} from './types.js';
import type { SessionPlan } from './workloads.js';

/**
 * Run files, committed (~20 KB each): RESULTS.md is generated from all of them, so a fresh clone
 * regenerates it without losing earlier runs. Until 2026-12-01 they went to bench/out/ (not
 * committed); what those runs measured is frozen in bench/RESULTS-2026-11.md.
 */
export const DEFAULT_OUT_DIR = join(REPO_ROOT, 'bench', 'runs');
/**
 * Where CPU profiles and heap snapshots go (large; never committed): bench/out/ for runs whose
 * run files go to the committed bench/runs/, else next to the run files.
 */
export function scratchDir(outDir: string): string {
  return resolve(outDir) === DEFAULT_OUT_DIR ? join(REPO_ROOT, 'bench', 'out') : outDir;
}
export const DEFAULT_RESULTS = join(REPO_ROOT, 'bench', 'RESULTS.md');

export interface BenchOptions {
  /** Simulated-sidecar sessions, each run once per mode. */
  readonly sessions: SessionPlan[];
  /** Real-Envoy runs (per mode), if any. */
  readonly envoy?: {
    readonly envoys: number;
    readonly changes: number;
    readonly source: 'file' | 'consul';
  };
  /** `--workload soak` (run once per mode), if asked for. */
  readonly soak?: SoakPlan;
  /** `--workload failover` (run once per mode), if asked for. */
  readonly failover?: FailoverPlan;
  /** `--workload scope-envoy`: one real sidecar, 1,000 services in scope vs 10. */
  readonly scopeEnvoy?: { readonly rounds: number };
  /** `--workload idle`: `lucid-mesh serve` with no proxy (issue 16's idle RSS). */
  readonly idle?: { readonly rounds: number };
  readonly modes: Mode[];
  /**
   * `--peer go-control-plane`: each session is also run against the reference peer, once per
   * peer mode, right after lucid-mesh's (same plan and xDS mode); `repeat` rounds of that.
   */
  readonly peer?: { readonly modes: PeerMode[]; readonly repeat: number };
  /** `--repeat` without a peer: each session this many times in a row. */
  readonly repeat?: number;
  readonly cp: CpSettings;
  readonly workers: number;
  /** Churn: at most one catalog write per this many ms (0 = one write per flip). */
  readonly churnWriteMs: number;
  readonly profile: boolean;
  /** `--heap-snapshot`: heap snapshots of the control plane per session (bench/heap-breakdown.ts). */
  readonly heapSnapshot?: boolean;
  readonly quick: boolean;
  /** Where the run file goes (default bench/runs, committed). */
  readonly outDir: string;
  /** RESULTS.md to regenerate, or undefined to skip. */
  readonly resultsPath?: string;
  readonly keepTemp: boolean;
  readonly argv: string[];
  /** `--xds-transport`: what serves ADS in the control plane (serve --xds-transport). */
  readonly xdsTransport?: XdsTransportName;
  /** A short name for the run file, e.g. "default". */
  readonly label: string;
  readonly log?: (line: string) => void;
}

export interface BenchOutcome {
  readonly run: RunResult;
  readonly runFile: string;
  readonly resultsPath?: string;
}

export async function runBench(opts: BenchOptions): Promise<BenchOutcome> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const startedAt = new Date();
  const id = `${startedAt.toISOString().replace(/[-:]/g, '').replace(/\..*/, '')}-${opts.label}`;
  mkdirSync(opts.outDir, { recursive: true });
  const scratch = scratchDir(opts.outDir);
  const profileDir = opts.profile ? join(scratch, 'profiles', id) : undefined;
  if (profileDir) mkdirSync(profileDir, { recursive: true });
  // The latest --heap-snapshot run's snapshots stay for DevTools (~1 GB at 10,000 proxies);
  // an earlier run's go.
  const heapSnapshotDir = opts.heapSnapshot ? join(scratch, 'heap', id) : undefined;
  if (heapSnapshotDir) {
    rmSync(join(scratch, 'heap'), { recursive: true, force: true });
    mkdirSync(heapSnapshotDir, { recursive: true });
  }
  const machine = machineInfo();
  log(
    `lucid-mesh bench ${id}: ${machine.nproc} CPUs, Node ${machine.node}, commit ${machine.commit}${machine.dirty ? ' (dirty)' : ''}`,
  );

  ensureBuilt(log);
  const peerBin = opts.peer ? peerBinary() : undefined;
  const sessions: SessionResult[] = [];
  const envoy: EnvoyRunResult[] = [];
  const rounds = opts.peer?.repeat ?? opts.repeat ?? 1;
  for (const plan of opts.sessions) {
    for (const mode of opts.modes) {
      // Interleaved (lucid-mesh, peer, lucid-mesh, peer): a slow spell of the shared machine
      // then falls on both rather than on one side.
      for (let r = 1; r <= rounds; r++) {
        const common = {
          mode,
          cp: opts.cp,
          workers: opts.workers,
          churnWriteMs: opts.churnWriteMs,
          keepTemp: opts.keepTemp,
          log,
          ...(rounds > 1 || opts.peer ? { round: r } : {}),
        };
        sessions.push(
          await runSession(plan, {
            ...common,
            profileDir,
            ...(heapSnapshotDir ? { heapSnapshotDir } : {}),
          }),
        );
        for (const peerMode of opts.peer?.modes ?? []) {
          sessions.push(
            await runSession(plan, { ...common, peer: { mode: peerMode, binary: peerBin! } }),
          );
        }
      }
    }
  }
  const soak: SoakResult[] = [];
  if (opts.soak) {
    for (const mode of opts.modes) {
      soak.push(
        await runSoak(opts.soak, {
          mode,
          cp: opts.cp,
          workers: opts.workers,
          churnWriteMs: opts.churnWriteMs,
          keepTemp: opts.keepTemp,
          log,
          ...(heapSnapshotDir ? { heapSnapshotDir } : {}),
        }),
      );
    }
  }
  const failover: FailoverResult[] = [];
  if (opts.failover) {
    for (const mode of opts.modes) {
      failover.push(
        await runFailover(opts.failover, {
          mode,
          profileDir,
          cp: opts.cp,
          workers: opts.workers,
          churnWriteMs: opts.churnWriteMs,
          keepTemp: opts.keepTemp,
          log,
        }),
      );
    }
  }
  const scopeEnvoy: ScopeEnvoyResult[] = [];
  if (opts.scopeEnvoy)
    scopeEnvoy.push(await runScopeEnvoy({ rounds: opts.scopeEnvoy.rounds, log }));
  const idle: IdleRssResult[] = [];
  if (opts.idle) idle.push(await runIdleRss({ rounds: opts.idle.rounds, log }));
  if (opts.envoy) {
    for (const mode of opts.modes) {
      envoy.push(
        await runEnvoy({
          mode,
          source: opts.envoy.source,
          envoys: opts.envoy.envoys,
          changes: opts.envoy.changes,
          cp: { ...opts.cp, source: opts.envoy.source },
          log,
          keepTemp: opts.keepTemp,
        }),
      );
    }
  }
  const run: RunResult = {
    schema: RESULT_SCHEMA,
    id,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    argv: opts.argv,
    xdsTransport: opts.xdsTransport ?? DEFAULT_XDS_TRANSPORT,
    quick: opts.quick,
    machine,
    sessions,
    envoy,
    ...(soak.length ? { soak } : {}),
    ...(failover.length ? { failover } : {}),
    ...(scopeEnvoy.length ? { scopeEnvoy } : {}),
    ...(idle.length ? { idle } : {}),
  };
  const runFile = join(opts.outDir, `${id}.json`);
  writeFileSync(runFile, `${JSON.stringify(run, null, 1)}\n`);
  log(`run file: ${runFile}`);
  let resultsPath: string | undefined;
  if (opts.resultsPath) {
    resultsPath = await writeResults(opts.outDir, opts.resultsPath);
    log(`results: ${resultsPath}`);
  }
  return { run, runFile, resultsPath };
}
