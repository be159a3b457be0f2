// `--workload soak`: a long run that looks for leaks. A control plane (own process, as in W2) on
// a generated catalog, K simulated sidecars that disconnect and reconnect continuously (each
// stream lives a random 5–30 s, then the client closes it and opens a fresh one for the same
// node), and catalog churn at a modest rate. The control plane's RSS and heap are sampled after
// a forced full GC every ~10 s; the report gives start, end, min/max and the least-squares slope
// after a warm-up, the stream errors the clients did not cause, NACKs, and whether every proxy
// converged once the reconnects stopped.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { GeneratedCatalog } from './catalog.js';
import { startBenchControlPlane, type BenchControlPlane, type CpStats } from './control-plane.js';
import { LoadPool } from './load/pool.js';
import { nowMs, type WorkerStats } from './load/protocol.js';
import { round } from './stats.js';
import { clientCpu, digestAgreement, settle, type SessionOptions } from './session.js';
import type { AgreementResult, SoakResult, SoakSample, SoakSeries } from './types.js';
// The reliability doc's result files (the same writer as the outage tests').
import { writeReliabilityResult } from '../test/support/reliability.js';

export interface SoakPlan {
  readonly services: number;
  readonly instances: number;
  readonly proxies: number;
  readonly seconds: number;
  readonly lifeMs: readonly [number, number];
  readonly flipsPerSecond: number;
  readonly sampleSeconds: number;
  readonly warmupSeconds: number;
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

/** Least-squares slope of y (bytes) over t (seconds), in KiB per minute. */
export function slopeKiBPerMin(points: ReadonlyArray<readonly [number, number]>): number {
  const n = points.length;
  if (n < 2) return NaN;
  const mt = points.reduce((a, [t]) => a + t, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [t, y] of points) {
    num += (t - mt) * (y - my);
    den += (t - mt) ** 2;
  }
  return den === 0 ? NaN : round(((num / den) * 60) / 1024, 1);
}

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
    const deadline = soakStart + plan.seconds * 1000;
    const flipEvery = 1000 / plan.flipsPerSecond;
    let nextFlip = soakStart + flipEvery;
    let nextSample = soakStart + plan.sampleSeconds * 1000;
    let nextLog = soakStart + 60_000;
    while (nowMs() < deadline) {
      const now = nowMs();
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
            `${(s.heapUsed / 2 ** 20).toFixed(1)} MiB, ${s.connected} connected, ${s.reconnects} reconnects`,
        );
        nextLog += 60_000;
      }
      await sleep(Math.max(1, Math.min(nextFlip, nextSample, deadline) - nowMs()));
    }
    soakEnd = nowMs();
    await sample();

    // ---- stop the reconnects; every proxy must converge ----------------------------------
    await Promise.all(p.workers.map((w) => w.request({ op: 'soakStop' })));
    const until = nowMs() + CONVERGE_TIMEOUT_MS;
    for (;;) {
      const ws = await p.stats();
      if (sum(ws, (w) => w.configuredNow) === plan.proxies) break;
      if (nowMs() > until) {
        errors.push(
          `converge: only ${sum(ws, (w) => w.configuredNow)}/${plan.proxies} proxies configured`,
        );
        break;
      }
      await sleep(250);
    }
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
  writeSoakResult(result, breakdown);
  return result;
}

/** test-results/reliability/soak-<mode>.json for docs/reliability.md (npm run reliability:report). */
function writeSoakResult(r: SoakResult, breakdown: Record<string, number>): void {
  const mib = (b: number): string => (b / 2 ** 20).toFixed(1);
  const first = r.samples[0];
  const last = r.samples[r.samples.length - 1];
  writeReliabilityResult({
    id: `soak-${r.mode}`,
    section: 'soak',
    test: `npm run bench -- --workload soak --mode ${r.mode} --soak-seconds ${r.seconds}`,
    fault:
      `${r.proxies.toLocaleString('en')} simulated proxies (${r.mode}) reconnecting continuously for ${r.seconds / 60} min ` +
      `(each stream closed by its client after a random ${r.lifeMs[0] / 1000}–${r.lifeMs[1] / 1000} s and reopened), ` +
      `${r.flipsPerSecond} endpoint flips/s, ${r.services} × ${r.instances} catalog`,
    behaviour:
      'Serves every reopened stream from scratch: each gets its full config again. Once the reconnects stop, every ' +
      `proxy holds the same config and the control plane counts exactly ${r.proxies.toLocaleString('en')} streams.`,
    figures:
      `${r.reconnects.toLocaleString('en')} reconnects, ${r.reconfigured.toLocaleString('en')} configured again; ` +
      `${r.streamErrors} stream errors, ${r.nacks} NACKs; converged: ${r.converged ? 'yes' : 'no'}` +
      `${r.errors.length ? ` (${r.errors.join('; ')})` : ''}. CP heap after GC ${mib(r.heap.start)} → ${mib(r.heap.end)} MiB ` +
      `(max ${mib(r.heap.max)}), slope ${r.heap.slopeKiBPerMin} KiB/min after a ${r.warmupSeconds} s warm-up. ` +
      `RSS ${mib(r.rss.start)} → ${mib(r.rss.end)} MiB (max ${mib(r.rss.max)}), slope ${r.rss.slopeKiBPerMin} KiB/min; ` +
      `of which V8's committed heap ${breakdown.heapTotal}, external ${breakdown.external}, native rest ${breakdown.native} KiB/min.`,
    passed: r.converged && r.errors.length === 0,
    ...(first && last
      ? {
          memoryBefore: { heapBytes: first.heapUsed, rssBytes: first.rss },
          memoryAfter: { heapBytes: last.heapUsed, rssBytes: last.rss },
        }
      : {}),
  });
}
