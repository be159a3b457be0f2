// `--workload failover` (issue 12): three control plane replicas (own processes) on one
// generated catalog, K simulated sidecars that know all three addresses and, like Envoy with a
// bootstrap of three --xds, reopen a broken stream after a jittered back-off on the next
// replica, saying what they hold (SotW version_info, delta initial_resource_versions). All K
// start on the first replica; it is killed with SIGKILL. Measured: the time from the kill
// until every proxy is SYNCED on one of the two survivors (its stream there has every type it
// asked for at the survivor's current version: sent and ACKed, or already held), polled every
// 50 ms; the bytes sent to the proxies meanwhile (the target: only what they lack, so near
// zero); whether every proxy still holds the same content afterwards (digest agreement).
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { GeneratedCatalog } from './catalog.js';
import { startBenchControlPlane, type BenchControlPlane } from './control-plane.js';
import { LoadPool } from './load/pool.js';
import { nowMs, type DigestSummary, type WorkerStats } from './load/protocol.js';
import { round } from './stats.js';
import { digestAgreement, settle, type SessionOptions } from './session.js';
import type { FailoverResult } from './types.js';

export interface FailoverPlan {
  readonly services: number;
  readonly instances: number;
  readonly proxies: number;
}

/** W2's shape: 1,000 services × 5 instances, 1,000 proxies. */
export function failoverPlan(proxies = 1000): FailoverPlan {
  return { services: 1000, instances: 5, proxies };
}

const OUTBOUND_PORT = 15001;
const STORM_TIMEOUT_MS = 180_000;
/** Give up on the failover after this long (the target is 5 s). */
const FAILOVER_TIMEOUT_MS = 60_000;
const POLL_MS = 50;
/** Every proxy here asks for four types: CDS, LDS, EDS, RDS. */
const TYPES = 4;
/** Only the digests are compared (the counts differ as the translation evolves). */
const KIND_COUNTS: Record<string, number> = { clusters: 0, endpoints: 0, listeners: 0, routes: 0 };

const sum = (ws: readonly WorkerStats[], pick: (w: WorkerStats) => number | undefined): number =>
  ws.reduce((n, w) => n + (pick(w) ?? 0), 0);

interface Synced {
  readonly synced: number;
  readonly connected: number;
}

export async function runFailover(
  plan: FailoverPlan,
  opts: SessionOptions,
): Promise<FailoverResult> {
  const { mode, log } = opts;
  const tag = `failover ${mode}`;
  const dir = mkdtempSync(join(tmpdir(), 'lucid-bench-failover-'));
  mkdirSync(join(dir, 'catalog'));
  const catalog = new GeneratedCatalog(
    { services: plan.services, instances: plan.instances },
    join(dir, 'catalog', 'catalog.json'),
  );
  catalog.write();
  const errors: string[] = [];
  log(
    `[${tag}] 3 replicas, ${plan.services}×${plan.instances}×${plan.proxies}; kill -9 of the one serving every proxy`,
  );

  const replicas: BenchControlPlane[] = [];
  let pool: LoadPool | undefined;
  let result: Omit<FailoverResult, 'mode' | 'services' | 'instances' | 'proxies' | 'errors'> = {
    reestablishedMs: NaN,
    firstMs: NaN,
    p50Ms: NaN,
    bytesResent: NaN,
    responsesResent: NaN,
    bytesPerProxy: NaN,
    stormBytes: NaN,
    failovers: NaN,
    survivorCpuSeconds: NaN,
    agree: false,
    curve: [],
  };
  try {
    for (let i = 0; i < 3; i++) {
      replicas.push(
        await startBenchControlPlane(
          {
            source: 'file',
            catalogPath: catalog.path,
            logLevel: opts.cp.logLevel as never,
            debounceMs: opts.cp.debounceMs,
            maxDebounceMs: opts.cp.maxDebounceMs,
          },
          join(dir, `cp-${i}.log`),
        ),
      );
    }
    const [victim, ...survivors] = replicas as [BenchControlPlane, ...BenchControlPlane[]];
    const targets = replicas.map((r) => `127.0.0.1:${r.xdsPort}`);
    pool = await LoadPool.start(catalog.proxies(plan.proxies), opts.workers);
    const p = pool;
    // Every proxy starts on the first replica (the others are its failover targets).
    const storm = await p.connect(targets[0]!, mode, OUTBOUND_PORT, STORM_TIMEOUT_MS, targets);
    if (!storm.complete) throw new Error('storm: not every proxy was configured');
    await settle(victim, p);
    const before = await p.stats();
    const digestsBefore = await p.digests();
    const stormBytes = sum(before, (w) => w.responseBytes);
    const survivorsBefore = await Promise.all(survivors.map((s) => s.stats()));
    log(
      `[${tag}] ${plan.proxies} proxies configured on replica 0 (${(stormBytes / 2 ** 20).toFixed(1)} MiB); killing it`,
    );

    // --profile: the survivors' CPU profiles while they take the proxies over.
    if (opts.profileDir) await Promise.all(survivors.map((s) => s.profileStart()));
    const loadAvg1 = round(loadavg()[0] ?? NaN, 2);
    const killedAt = nowMs();
    victim.proc.child.kill('SIGKILL');
    const curve: Array<[number, number]> = [];
    let firstMs = NaN;
    let p50Ms = NaN;
    let doneMs = NaN;
    while (nowMs() - killedAt < FAILOVER_TIMEOUT_MS) {
      const counts = await Promise.all(
        survivors.map((s) => s.proc.request<Synced>({ op: 'synced', types: TYPES })),
      );
      const t = round(nowMs() - killedAt, 0);
      const synced = counts.reduce((n, c) => n + c.synced, 0);
      if (curve.length === 0 || curve[curve.length - 1]![1] !== synced) curve.push([t, synced]);
      if (synced > 0 && Number.isNaN(firstMs)) firstMs = t;
      if (synced >= plan.proxies / 2 && Number.isNaN(p50Ms)) p50Ms = t;
      if (synced >= plan.proxies) {
        doneMs = t;
        break;
      }
      await sleep(POLL_MS);
    }
    if (Number.isNaN(doneMs)) {
      errors.push(`not every proxy was SYNCED on a survivor within ${FAILOVER_TIMEOUT_MS} ms`);
    }
    if (opts.profileDir) {
      const dirOf = opts.profileDir;
      await Promise.all(
        survivors.map((s, i) =>
          s.profileStop(join(dirOf, `failover-${mode}-survivor-${i + 1}.cpuprofile`)),
        ),
      );
      log(`[${tag}] survivor profiles in ${dirOf}`);
    }
    // Let anything still on its way arrive before counting the bytes.
    await sleep(1_000);
    const after = await p.stats();
    const survivorsAfter = await Promise.all(survivors.map((s) => s.stats()));
    const bytesResent = sum(after, (w) => w.responseBytes) - stormBytes;
    // Every proxy holds one and the same content per type, the content it held before the kill.
    const held = (d: DigestSummary) => digestAgreement(d, KIND_COUNTS, plan.proxies);
    const was = held(digestsBefore);
    const now = held(await p.digests());
    const agree = now.agree && JSON.stringify(now.flat) === JSON.stringify(was.flat);
    if (!agree)
      errors.push(
        `agreement: before ${JSON.stringify(was.flat)}, after ${JSON.stringify(now.flat)}`,
      );
    const perReplica = survivorsAfter.map((s) => s.connected);
    result = {
      reestablishedMs: doneMs,
      firstMs,
      p50Ms,
      bytesResent,
      responsesResent: sum(after, (w) => w.responses) - sum(before, (w) => w.responses),
      bytesPerProxy: round(bytesResent / plan.proxies, 1),
      stormBytes,
      failovers: sum(after, (w) => w.failovers),
      survivorCpuSeconds: round(
        survivorsAfter.reduce(
          (n, s, i) =>
            n +
            (s.cpuUserUs +
              s.cpuSystemUs -
              survivorsBefore[i]!.cpuUserUs -
              survivorsBefore[i]!.cpuSystemUs) /
              1e6,
          0,
        ),
      ),
      agree,
      curve,
      perReplica,
      loadAvg1,
    };
    log(
      `[${tag}] all ${plan.proxies} SYNCED on the survivors ${doneMs} ms after the kill ` +
        `(first ${firstMs} ms, half ${p50Ms} ms; ${perReplica.join(' + ')} streams); ` +
        `${bytesResent} bytes resent in ${result.responsesResent} responses ` +
        `(${result.bytesPerProxy} B/proxy; the storm was ${stormBytes} B); agree: ${result.agree}`,
    );
  } catch (err) {
    errors.push((err as Error).message);
    log(`[${tag}] error: ${(err as Error).message}`);
  } finally {
    await pool?.close().catch(() => undefined);
    for (const r of replicas) await r.stop().catch(() => undefined);
    if (!opts.keepTemp) rmSync(dir, { recursive: true, force: true });
    else log(`[${tag}] kept ${dir}`);
  }
  return {
    mode,
    services: plan.services,
    instances: plan.instances,
    proxies: plan.proxies,
    ...result,
    errors,
  };
}
