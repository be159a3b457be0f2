// `--workload soak`: a long run that looks for leaks. A control plane (own process, as in W2) on
// a generated catalog, K simulated sidecars that disconnect and reconnect continuously (each
// stream lives a random 5–30 s, then the client closes it and opens a fresh one for the same
// node), and catalog churn at a modest rate. The control plane's RSS and heap are sampled after
// a forced full GC every ~10 s; the report gives start, end, min/max and the least-squares slope
// after a warm-up, the stream errors the clients did not cause, NACKs, and whether every proxy
// converged once the reconnects stopped.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { GeneratedCatalog } from './catalog.js';
import { startBenchControlPlane, type BenchControlPlane, type CpStats } from './control-plane.js';
import { LoadPool } from './load/pool.js';
import { nowMs, type WorkerStats } from './load/protocol.js';
import { round } from './stats.js';
import { clientCpu, digestAgreement, settle, type SessionOptions } from './session.js';
import type { AgreementResult, SoakResult, SoakSample, SoakSeries } from './types.js';
import { fullConnectionFigures, slopeKiBPerMin } from './soak-figures.js';

export { slopeKiBPerMin };

export interface SoakPlan {
  readonly services: number;
  readonly instances: number;
  readonly proxies: number;
  readonly seconds: number;
  readonly lifeMs: readonly [number, number];
  readonly flipsPerSecond: number;
  readonly sampleSeconds: number;
  readonly warmupSeconds: number;
  /** With --heap-snapshot: seconds into the soak to snapshot at (default: end of warm-up and end). */
  readonly snapshotAtSeconds?: readonly number[];
}

/** W2's shape, 10 minutes, streams living 5–30 s, 2 flips/s, a sample every 10 s. */
export function soakPlan(seconds = 600, proxies = 1000): SoakPlan {
  return {
    services: 1000,
    instances: 5,
    proxies,
    seconds,
    lifeMs: [5_000, 30_000],
    flipsPerSecond: 2,
    sampleSeconds: 10,
    // A minute, or a third of a short run.
    warmupSeconds: Math.min(60, Math.floor(seconds / 3)),
  };
}

const OUTBOUND_PORT = 15001;
const STORM_TIMEOUT_MS = 180_000;
const CONVERGE_TIMEOUT_MS = 120_000;

function series(samples: readonly SoakSample[], warmup: number, pick: (s: SoakSample) => number) {
  const values = samples.map(pick);
  const after = samples.filter((s) => s.t >= warmup);
  const result: SoakSeries = {
    start: values[0] ?? NaN,
    end: values[values.length - 1] ?? NaN,
    min: Math.min(...values),
    max: Math.max(...values),
    slopeKiBPerMin: slopeKiBPerMin(after.map((s) => [s.t, pick(s)] as const)),
  };
  return result;
}

/** Waits until every proxy is configured (reconnects stopped); returns how many are. */
async function configuredAgain(
  pool: LoadPool,
  proxies: number,
  timeoutMs: number,
): Promise<number> {
  const until = nowMs() + timeoutMs;
  for (;;) {
    const configured = sum(await pool.stats(), (w) => w.configuredNow);
    if (configured === proxies || nowMs() > until) return configured;
    await sleep(250);
  }
}

const sum = (ws: readonly WorkerStats[], pick: (w: WorkerStats) => number | undefined): number =>
  ws.reduce((n, w) => n + (pick(w) ?? 0), 0);

export async function runSoak(plan: SoakPlan, opts: SessionOptions): Promise<SoakResult> {
  const { mode, log } = opts;
  const tag = `soak ${mode}`;
  const dir = mkdtempSync(join(tmpdir(), 'lucid-bench-soak-'));
  mkdirSync(join(dir, 'catalog'));
  const catalog = new GeneratedCatalog(
    { services: plan.services, instances: plan.instances },
    join(dir, 'catalog', 'catalog.json'),
  );
  catalog.write();
  const errors: string[] = [];
  const samples: SoakSample[] = [];
  let flips = 0;
  let agreement: AgreementResult | undefined;
  let converged = false;
  let last: CpStats | undefined;
  let first: CpStats | undefined;
  let wsBefore: WorkerStats[] = [];
  let wsAfter: WorkerStats[] = [];
  let soakStart = nowMs();
  let soakEnd = soakStart;
  log(
    `[${tag}] ${plan.services}×${plan.instances}×${plan.proxies}, ${plan.seconds} s, streams live ` +
      `${plan.lifeMs[0] / 1000}–${plan.lifeMs[1] / 1000} s, ${plan.flipsPerSecond} flips/s`,
  );

  let cp: BenchControlPlane | undefined;
  let pool: LoadPool | undefined;
  try {
    cp = await startBenchControlPlane(
      {
        source: opts.cp.source,
        catalogPath: catalog.path,
        logLevel: opts.cp.logLevel as never,
        debounceMs: opts.cp.debounceMs,
        maxDebounceMs: opts.cp.maxDebounceMs,
      },
      join(dir, 'cp.log'),
    );
    const c = cp;
    pool = await LoadPool.start(catalog.proxies(plan.proxies), opts.workers);
    const p = pool;
    const storm = await p.connect(`127.0.0.1:${c.xdsPort}`, mode, OUTBOUND_PORT, STORM_TIMEOUT_MS);
    if (!storm.complete) throw new Error(`storm: not every proxy was configured`);
    await settle(c, p);
    log(`[${tag}] ${plan.proxies} proxies configured; reconnecting and flipping`);

    const sample = async (): Promise<void> => {
      const [s, ws] = await Promise.all([c.gcStats(), p.stats()]);
      last = s;
      samples.push({
        t: round((s.at - soakStart) / 1000, 1),
        rss: s.rss,
        heapUsed: s.heapUsed,
        external: s.external,
        heapTotal: s.heapTotal,
        arrayBuffers: s.arrayBuffers,
        connected: s.connected,
        reconnects: sum(ws, (w) => w.reconnects),
        // How busy the machine was: a starved control plane counts fewer streams.
        load1: round(loadavg()[0]!, 2),
        ...(s.mallocedMemory !== undefined
          ? { mallocedMemory: s.mallocedMemory, peakMallocedMemory: s.peakMallocedMemory }
          : {}),
      });
    };
    first = await c.stats();
    wsBefore = await p.stats();
    soakStart = nowMs();
    await sample();
    await Promise.all(
      p.workers.map((w) =>
        w.request({ op: 'soakStart', minMs: plan.lifeMs[0], maxMs: plan.lifeMs[1] }),
      ),
    );
    let deadline = soakStart + plan.seconds * 1000;
    const flipEvery = 1000 / plan.flipsPerSecond;
    let nextFlip = soakStart + flipEvery;
    let nextSample = soakStart + plan.sampleSeconds * 1000;
    let nextLog = soakStart + 60_000;
    // --heap-snapshot: one once the warm-up is over and one at the end, to diff what grew
    // (npx tsx bench/diag/heap-diff.ts EARLY LATE); --soak-snapshots-at picks the times. Each
    // is taken with the reconnects and flips paused and every proxy configured again, so that
    // two snapshots hold the same number of streams and what differs is what accumulated. The
    // pause does not count towards the soak's duration.
    const snapshot = async (when: string, resume: boolean): Promise<void> => {
      if (!opts.heapSnapshotDir) return;
      const pausedAt = nowMs();
      await Promise.all(p.workers.map((w) => w.request({ op: 'soakStop' })));
      await configuredAgain(p, plan.proxies, CONVERGE_TIMEOUT_MS);
      await settle(c, p);
      await c.heapSnapshot(join(opts.heapSnapshotDir, `soak-${mode}-${when}.heapsnapshot`));
      log(`[${tag}] heap snapshot ${when} (paused ${Math.round((nowMs() - pausedAt) / 1000)} s)`);
      if (!resume) return;
      await Promise.all(
        p.workers.map((w) =>
          w.request({ op: 'soakStart', minMs: plan.lifeMs[0], maxMs: plan.lifeMs[1] }),
        ),
      );
      const paused = nowMs() - pausedAt;
      deadline += paused;
      nextFlip += paused;
      nextSample += paused;
      nextLog += paused;
    };
    const snapshotsDue = [...(plan.snapshotAtSeconds ?? [plan.warmupSeconds])]
      .filter((t) => t < plan.seconds)
      .sort((a, b) => a - b);
    let pausedTotal = 0;
    while (nowMs() < deadline) {
      const now = nowMs();
      if (snapshotsDue.length && now >= soakStart + pausedTotal + snapshotsDue[0]! * 1000) {
        const t = snapshotsDue.shift()!;
        const before = deadline;
        await snapshot(plan.snapshotAtSeconds ? `${t}s` : 'early', true);
        pausedTotal += deadline - before;
        continue;
      }
      if (now >= nextFlip) {
        const [flip] = catalog.planFlips(1);
        catalog.apply(flip!);
        catalog.write();
        flips++;
        nextFlip += flipEvery;
      }
      if (now >= nextSample) {
        await sample();
        nextSample += plan.sampleSeconds * 1000;
      }
      if (now >= nextLog) {
        const s = samples[samples.length - 1]!;
        log(
          `[${tag}] ${Math.round(s.t)} s: RSS ${(s.rss / 2 ** 20).toFixed(1)} MiB, heap ` +
            `${(s.heapUsed / 2 ** 20).toFixed(1)} MiB, ${s.connected} connected, ${s.reconnects} reconnects` +
            (s.mallocedMemory !== undefined
              ? `, V8 malloced ${(s.mallocedMemory / 2 ** 20).toFixed(1)} MiB (peak ${((s.peakMallocedMemory ?? NaN) / 2 ** 20).toFixed(1)})`
              : ''),
        );
        nextLog += 60_000;
      }
      await sleep(Math.max(1, Math.min(nextFlip, nextSample, deadline) - nowMs()));
    }
    soakEnd = nowMs();
    await sample();
    await snapshot(plan.snapshotAtSeconds ? `${plan.seconds}s` : 'late', false);

    // ---- stop the reconnects; every proxy must converge ----------------------------------
    await Promise.all(p.workers.map((w) => w.request({ op: 'soakStop' })));
    const configured = await configuredAgain(p, plan.proxies, CONVERGE_TIMEOUT_MS);
    if (configured < plan.proxies)
      errors.push(`converge: only ${configured}/${plan.proxies} proxies configured`);
    last = await settle(c, p);
    wsAfter = await p.stats();
    const digests = await p.digests();
    const expectedCounts: Record<string, number> = {
      clusters: plan.services,
      endpoints: plan.services,
      // The shared outbound listener and the DNS listener (dns|15053: the simulated sidecars
      // send no dns_port, so they get the default), as in the sessions.
      listeners: 2,
      routes: 1,
    };
    const { flat, agree, countsMatch } = digestAgreement(digests, expectedCounts, plan.proxies);
    agreement = {
      agree,
      digests: flat,
      expectedCounts,
      countsMatch,
      nacks: last.nacks,
      staleNonces: last.staleNonces,
      streamErrors: sum(wsAfter, (w) => w.streamErrors),
      anomalies: wsAfter.flatMap((w) => w.anomalies).slice(0, 20),
    };
    converged = agree && countsMatch && last.connected === plan.proxies;
    if (!agree) errors.push(`agreement: proxies disagree: ${JSON.stringify(flat)}`);
  } catch (err) {
    errors.push((err as Error).message);
    log(`[${tag}] error: ${(err as Error).message}`);
  } finally {
    await pool?.close().catch(() => undefined);
    await cp?.stop().catch(() => undefined);
    if (!opts.keepTemp) rmSync(dir, { recursive: true, force: true });
    else log(`[${tag}] kept ${dir}`);
  }

  const ws = wsAfter.length ? wsAfter : wsBefore;
  const result: SoakResult = {
    mode,
    services: plan.services,
    instances: plan.instances,
    proxies: plan.proxies,
    cp: opts.cp,
    seconds: plan.seconds,
    lifeMs: plan.lifeMs,
    flipsPerSecond: plan.flipsPerSecond,
    flips,
    sampleSeconds: plan.sampleSeconds,
    warmupSeconds: plan.warmupSeconds,
    samples,
    rss: series(samples, plan.warmupSeconds, (s) => s.rss),
    heap: series(samples, plan.warmupSeconds, (s) => s.heapUsed),
    reconnects: sum(ws, (w) => w.reconnects),
    reconfigured: sum(ws, (w) => w.reconfigured),
    streamErrors: sum(ws, (w) => w.streamErrors),
    nacks: last?.nacks ?? NaN,
    staleNonces: last?.staleNonces ?? NaN,
    badRequests: last?.badRequests ?? NaN,
    streamsOpened: last?.streamsOpened ?? NaN,
    streamsClosed: last?.streamsClosed ?? NaN,
    connectedAtEnd: last?.connected ?? NaN,
    converged,
    ...(agreement ? { agreement } : {}),
    cpCpuSeconds:
      first && last
        ? round((last.cpuUserUs + last.cpuSystemUs - first.cpuUserUs - first.cpuSystemUs) / 1e6)
        : NaN,
    client:
      wsAfter.length && wsBefore.length
        ? clientCpu(wsBefore, wsAfter, soakEnd - soakStart)
        : { workers: 0, cpuSeconds: NaN, wallSeconds: NaN, maxWorkerBusyPct: NaN },
    anomalies: ws.flatMap((w) => w.anomalies).slice(0, 20),
    errors,
  };
  log(
    `[${tag}] RSS ${(result.rss.start / 2 ** 20).toFixed(1)} → ${(result.rss.end / 2 ** 20).toFixed(1)} MiB ` +
      `(slope ${result.rss.slopeKiBPerMin} KiB/min), heap ${(result.heap.start / 2 ** 20).toFixed(1)} → ` +
      `${(result.heap.end / 2 ** 20).toFixed(1)} MiB (slope ${result.heap.slopeKiBPerMin} KiB/min), ` +
      `${result.reconnects} reconnects, ${result.streamErrors} stream errors, ${result.nacks} NACKs, ` +
      `converged: ${converged}`,
  );
  // Where RSS goes: V8's committed heap, Buffers/external, and the rest (native: malloc'd by
  // V8, Node and libuv outside the heap, fragmentation, code).
  const slope = (pick: (s: SoakSample) => number): number =>
    slopeKiBPerMin(
      samples.filter((s) => s.t >= plan.warmupSeconds).map((s) => [s.t, pick(s)] as const),
    );
  const breakdown = {
    heapTotal: slope((s) => s.heapTotal ?? NaN),
    external: slope((s) => s.external),
    arrayBuffers: slope((s) => s.arrayBuffers ?? NaN),
    native: slope((s) => s.rss - (s.heapTotal ?? NaN) - s.external),
  };
  log(
    `[${tag}] RSS slope by part after warm-up (KiB/min): V8 heap committed ${breakdown.heapTotal}, ` +
      `external ${breakdown.external} (ArrayBuffers ${breakdown.arrayBuffers}), rest (native) ${breakdown.native}`,
  );
  const full = fullConnectionFigures(samples, plan.proxies, plan.warmupSeconds);
  log(
    `[${tag}] with ≥ 95 % of the proxies connected (${full.samples} samples after warm-up): heap slope ` +
      `${full.heapSlopeKiBPerMin} KiB/min, RSS slope ${full.rssSlopeKiBPerMin} KiB/min`,
  );
  // docs/reliability.md's soak rows are rendered from this run file (npm run reliability:report).
  return { ...result, breakdown };
}
