// One benchmark session: a fresh control plane (own process) on a generated catalog file,
// K simulated sidecars (worker processes) connecting at once, then the measured phases.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { GeneratedCatalog, type Flip, type InstanceDoc } from './catalog.js';
import {
  metricTotal,
  startBenchControlPlane,
  type BenchControlPlane,
  type CpStats,
  type SnapshotEvent,
} from './control-plane.js';
import { LoadPool, type StormStageTimes, type WatchResult } from './load/pool.js';
import { nowMs, type WatchSpec, type WorkerStats } from './load/protocol.js';
import { addressMarker } from './load/wire.js';
import { PEER_NAME, PEER_VERSION, startPeerControlPlane } from './peer-control-plane.js';
import { busyCpuSeconds } from './machine.js';
import { emptyCatalogStats, modelMemory } from './model-memory.js';
import { topSelfTime } from './profile.js';
import { audienceOf, declareUpstreams, scopedAgreement } from './scale.js';
import { heapBreakdownOf } from './heap-breakdown.js';
import { round, summarize } from './stats.js';
import {
  BACKENDS_PER_SERVICE,
  GeneratedTraffic,
  routerEditMarker,
  subsetCluster,
  subsetOf,
  type RouterEdit,
  type SubsetName,
} from './traffic.js';
import type {
  AgreementResult,
  ChangeRecord,
  ChangesResult,
  ChurnResult,
  ClientCpu,
  CpSettings,
  HeapBreakdown,
  MemoryResult,
  Mode,
  PeerMode,
  ProfileResult,
  SessionResult,
  StormResult,
  TrafficResult,
} from './types.js';
import type { ChurnPlan, SessionPlan } from './workloads.js';

export interface SessionOptions {
  readonly mode: Mode;
  readonly cp: CpSettings;
  /** Load-client worker processes. */
  readonly workers: number;
  /** Profile the control plane's storm/changes/churn phases into this directory. */
  readonly profileDir?: string;
  readonly keepTemp?: boolean;
  readonly log: (line: string) => void;
  /** Churn: at most one catalog file write per this many ms (flips due in between are batched). */
  readonly churnWriteMs: number;
  /** Run against the go-control-plane reference peer instead of lucid-mesh (`--peer`). */
  readonly peer?: { readonly mode: PeerMode; readonly binary: string };
  /** `--repeat`: the round this session belongs to (recorded in the result). */
  readonly round?: number;
  /**
   * `--heap-snapshot`: heap snapshots of the control plane with K proxies (after the memory
   * phase) and with none (after the load client left), here; their per-proxy breakdown goes
   * into the result (bench/heap-breakdown.ts).
   */
  readonly heapSnapshotDir?: string;
}

/** The outbound port every simulated sidecar announces (as Envoy's bootstrap metadata would). */
const OUTBOUND_PORT = 15001;
const STORM_TIMEOUT_MS = 180_000;
const CHANGE_TIMEOUT_MS = 60_000;
/** Changes made and measured before the sequential changes, but not counted (JIT warm-up). */
const WARMUP_CHANGES = 2;
const DRAIN_TIMEOUT_MS = 60_000;

export function clientCpu(before: WorkerStats[], after: WorkerStats[], wallMs: number): ClientCpu {
  let cpu = 0;
  let maxBusy = 0;
  after.forEach((a, i) => {
    const b = before[i]!;
    const us = a.cpuUserUs + a.cpuSystemUs - b.cpuUserUs - b.cpuSystemUs;
    cpu += us;
    maxBusy = Math.max(maxBusy, wallMs > 0 ? us / 1000 / wallMs : 0);
  });
  return {
    workers: after.length,
    cpuSeconds: round(cpu / 1e6),
    wallSeconds: round(wallMs / 1000),
    maxWorkerBusyPct: round(maxBusy * 100, 1),
  };
}

const cpuMs = (a: CpStats, b: CpStats): number =>
  (b.cpuUserUs + b.cpuSystemUs - a.cpuUserUs - a.cpuSystemUs) / 1000;

/**
 * Waits until the control plane is quiet: every response it sent has reached the clients and
 * its counters did not move for one poll interval (so ACK processing is included in CPU).
 */
export async function settle(
  cp: BenchControlPlane,
  pool: LoadPool,
  timeoutMs = 20_000,
): Promise<CpStats> {
  const deadline = nowMs() + timeoutMs;
  let prev: CpStats | undefined;
  for (;;) {
    const [s, ws] = await Promise.all([cp.stats(), pool.stats()]);
    const received = ws.reduce((n, w) => n + w.responses, 0);
    if (
      prev &&
      s.responses === received &&
      s.responses === prev.responses &&
      s.acks === prev.acks &&
      s.staleNonces === prev.staleNonces &&
      s.snapshotsBuilt === prev.snapshotsBuilt
    ) {
      return s;
    }
    if (nowMs() > deadline) return s;
    prev = s;
    await sleep(50);
  }
}

function watchFor(
  watchId: number,
  flip: Flip,
  detail: boolean,
  audience?: readonly string[],
): WatchSpec {
  return {
    watchId,
    kind: 'endpoints',
    name: flip.service,
    marker: addressMarker(flip.address),
    present: flip.health !== 'critical',
    detail,
    ...(audience ? { audience } : {}),
  };
}

/** What one watch looks for (WatchSpec without the ids the pool hands out). */
type Watch = Omit<WatchSpec, 'watchId' | 'detail'>;

/** A sequential change: what proxies must receive, and how to make it. */
interface PlannedChange {
  readonly n: number;
  readonly cluster: string;
  readonly health: string;
  /** A proxy has the change once every one of these has been seen. */
  readonly watches: readonly Watch[];
  /** Proxies that should see it (all of them, but for W9 scoped). */
  readonly expected: number;
  /** Applies the change to the generated document (not yet written). */
  apply(): void;
  /** Writes the document the control plane watches. */
  write(): void;
}

/**
 * One change seen through several watches (W7's endpoint flip changes the service's and the
 * subset's assignments): the last proxy to have all of it is the latest of the watches' last
 * proxies (exact); its first proxy is taken as the latest of the watches' first proxies (a lower
 * bound, exact when the resources travel in one response, as they do); per-proxy times are the
 * first watch's (the service's assignment).
 */
function combine(results: readonly WatchResult[]): WatchResult {
  if (results.length === 1) return results[0]!;
  return {
    watchId: results[0]!.watchId,
    count: Math.min(...results.map((r) => r.count)),
    first: Math.max(...results.map((r) => r.first)),
    last: Math.max(...results.map((r) => r.last)),
    ...(results[0]!.times ? { times: results[0]!.times } : {}),
  };
}

/** The last snapshot built at or before `t` (the one a proxy seeing the change at `t` got it from). */
function snapshotAtOrBefore(
  snapshots: readonly SnapshotEvent[],
  t: number,
): SnapshotEvent | undefined {
  let found: SnapshotEvent | undefined;
  for (const s of snapshots) if (s.builtAt <= t) found = s;
  return found;
}

/** The storm's stages from the workers' times (ms after t0; a proxy that never got there is left out). */
function stormStages(
  stages: StormStageTimes,
  t0: number,
): Pick<StormResult, 'connectedMs' | 'firstResponseMs' | 'firstServedMs'> {
  const since = (list: number[]) => list.filter((t) => t > 0).map((t) => t - t0);
  const first = since(stages.firstResponse);
  return {
    connectedMs: summarize(since(stages.connected)),
    firstResponseMs: summarize(first),
    ...(first.length > 0 ? { firstServedMs: round(Math.min(...first)) } : {}),
  };
}

export async function runSession(plan: SessionPlan, opts: SessionOptions): Promise<SessionResult> {
  const started = nowMs();
  const { mode, log } = opts;
  const tag = `${plan.name} ${mode}${opts.peer ? ` ${PEER_NAME} ${opts.peer.mode}` : ''}`;
  const dir = mkdtempSync(join(tmpdir(), 'lucid-bench-'));
  // The catalog gets a directory of its own: the file source watches the catalog's directory,
  // and the control plane's log written beside it would wake the watcher on every line.
  mkdirSync(join(dir, 'catalog'));
  // W7: instances are tagged with their subset (v1 / v2) for the resolvers' filters.
  const tagged = (_s: number, i: number, doc: InstanceDoc): InstanceDoc => ({
    ...doc,
    tags: [subsetOf(i, plan.instances)],
  });
  const catalog = new GeneratedCatalog(
    { services: plan.services, instances: plan.instances },
    join(dir, 'catalog', 'catalog.json'),
    plan.traffic ? tagged : undefined,
  );
  if (plan.scope) {
    declareUpstreams(catalog.services, plan.scope.upstreams);
    catalog.refresh();
  }
  catalog.write();
  // The traffic file, in a directory of its own too (each file watcher watches its directory).
  let traffic: GeneratedTraffic | undefined;
  if (plan.traffic) {
    mkdirSync(join(dir, 'traffic'));
    traffic = new GeneratedTraffic(
      catalog.services.map((s) => s.name),
      join(dir, 'traffic', 'traffic.json'),
    );
    traffic.write();
  }
  const backendsPerService = traffic ? BACKENDS_PER_SERVICE : 1;
  const errors: string[] = [];
  const profiles: ProfileResult[] = [];
  let storm: StormResult | undefined;
  let memory: MemoryResult | undefined;
  let changes: ChangesResult | undefined;
  let routerEdits: ChangesResult | undefined;
  const churn: ChurnResult[] = [];
  let agreement: AgreementResult | undefined;
  let heapBreakdown: HeapBreakdown | undefined;
  const metrics: Record<string, number | undefined> = {};
  let watchSeq = 1;

  log(`[${tag}] ${plan.services} services × ${plan.instances} instances × ${plan.proxies} proxies`);
  const result = (rest: Partial<SessionResult>): SessionResult => ({
    plan: plan.name,
    ...(opts.peer
      ? { peer: { name: PEER_NAME, version: PEER_VERSION, mode: opts.peer.mode } }
      : {}),
    ...(opts.round !== undefined ? { round: opts.round } : {}),
    covers: plan.covers,
    mode,
    services: plan.services,
    instances: plan.instances,
    proxies: plan.proxies,
    cp: opts.cp,
    catalogBytes: catalog.text().length,
    wallSeconds: round((nowMs() - started) / 1000, 1),
    churn,
    metrics,
    profiles,
    errors,
    ...(traffic ? { traffic: trafficResult() } : {}),
    ...rest,
  });
  function trafficResult(): TrafficResult {
    return {
      entries: traffic!.entries,
      fileBytes: traffic!.text().length,
      // The service's assignment and the flipped instance's subset's.
      resourcesPerFlip: 2,
      ...(routerEdits ? { routerEdits } : {}),
    };
  }
  const proxySpecs = catalog.proxies(plan.proxies);
  /** Who should receive a change to `service` (W9 scoped: the proxies that declare it). */
  const audience = (service: string) => audienceOf(catalog.services, proxySpecs, service);
  let cp: BenchControlPlane;
  let empty: CpStats | undefined;
  try {
    if (plan.modelMemory && !opts.peer) {
      empty = await emptyCatalogStats(dir, {
        source: opts.cp.source,
        logLevel: opts.cp.logLevel as never,
        debounceMs: opts.cp.debounceMs,
        maxDebounceMs: opts.cp.maxDebounceMs,
      });
    }
    cp = opts.peer
      ? await startPeerControlPlane(
          { catalogPath: catalog.path, peerMode: opts.peer.mode, binary: opts.peer.binary },
          join(dir, 'cp.log'),
        )
      : await startBenchControlPlane(
          {
            source: opts.cp.source,
            catalogPath: catalog.path,
            ...(traffic ? { trafficPath: traffic.path } : {}),
            logLevel: opts.cp.logLevel as never,
            debounceMs: opts.cp.debounceMs,
            maxDebounceMs: opts.cp.maxDebounceMs,
            ...(plan.scope ? { scope: 'declared' as const } : {}),
          },
          join(dir, 'cp.log'),
        );
  } catch (err) {
    errors.push((err as Error).message);
    log(`[${tag}] error: ${(err as Error).message}`);
    if (!opts.keepTemp) rmSync(dir, { recursive: true, force: true });
    return result({});
  }
  let pool: LoadPool | undefined;
  const sysBefore = busyCpuSeconds();
  const cpFirst = await cp.stats();
  const harnessBefore = process.cpuUsage();
  let backgroundCpuCores: number | undefined;

  const profiled = async <T>(phase: string, fn: () => Promise<T>): Promise<T> => {
    // The peer has no profiler (Go's pprof would need a server of its own).
    if (!opts.profileDir || opts.peer) return fn();
    await cp.profileStart();
    try {
      return await fn();
    } finally {
      const file = join(
        opts.profileDir,
        `${plan.name}-${mode}-${phase}.cpuprofile`.replace(/\+/g, '_'),
      );
      await cp.profileStop(file);
      const { totalMs, top } = topSelfTime(file, 25);
      profiles.push({ phase, file, totalMs, top });
    }
  };

  try {
    const idle = await cp.gcStats();
    pool = await LoadPool.start(proxySpecs, plan.workers ?? opts.workers);
    const p = pool;

    // ---- storm: every sidecar connects at once ------------------------------------------
    const before = await cp.stats();
    const wBefore = await p.stats();
    let allAt = NaN;
    let t0 = 0;
    let times: number[] = [];
    let stages: StormStageTimes = { connected: [], firstResponse: [] };
    const settled = await profiled('storm', async () => {
      t0 = nowMs();
      const target = `127.0.0.1:${cp.xdsPort}`;
      // A stream refused (--max-streams, --stream-rate) or broken is reopened after Envoy's
      // jittered back-off, as a real sidecar does, rather than lost.
      const res = await p.connect(
        target,
        mode,
        OUTBOUND_PORT,
        plan.stormTimeoutMs ?? STORM_TIMEOUT_MS,
        [target],
      );
      times = res.times.filter((t) => typeof t === 'number' && t > 0);
      stages = res.stages;
      allAt = res.complete ? Math.max(...times) : NaN;
      if (!res.complete)
        errors.push(`storm: only ${times.length}/${plan.proxies} proxies configured`);
      return settle(cp, p);
    });
    const wAfter = await p.stats();
    storm = {
      proxies: plan.proxies,
      configured: times.length,
      allConfiguredMs: round(allAt - t0),
      perProxyMs: summarize(times.map((t) => t - t0)),
      ...stormStages(stages, t0),
      cpCpuSeconds: round(cpuMs(before, settled) / 1000),
      ...gcBetween(before, settled),
      settledExternalBytes: settled.external,
      settledRssBytes: settled.rss,
      peakExternalBytes: settled.peakExternalBytes,
      peakRssBytes: settled.peakRssBytes,
      responses: settled.responses - before.responses,
      bytes: settled.responseBytes - before.responseBytes,
      encodes: settled.encoded - before.encoded,
      client: clientCpu(wBefore, wAfter, settled.at - t0),
    };
    log(
      `[${tag}] storm: ${storm.configured}/${plan.proxies} configured in ${storm.allConfiguredMs} ms ` +
        `(CP ${storm.cpCpuSeconds} s CPU, client busiest ${storm.client.maxWorkerBusyPct}%; ` +
        `all connected at ${storm.connectedMs?.max} ms, first response at ${storm.firstServedMs} ms)`,
    );

    // ---- memory: K proxies vs 0 ----------------------------------------------------------
    const loaded = await cp.gcStats();
    const k = Math.max(1, times.length);
    memory = {
      proxies: times.length,
      idleRssBytes: idle.rss,
      loadedRssBytes: loaded.rss,
      idleHeapBytes: idle.heapUsed,
      loadedHeapBytes: loaded.heapUsed,
      rssPerProxyBytes: Math.round((loaded.rss - idle.rss) / k),
      heapPerProxyBytes: Math.round((loaded.heapUsed - idle.heapUsed) / k),
      heapExternalPerProxyBytes: Math.round(
        (loaded.heapUsed + loaded.external - idle.heapUsed - idle.external) / k,
      ),
      heapCommittedPerProxyBytes: Math.round((loaded.heapTotal - idle.heapTotal) / k),
      nativeRestPerProxyBytes: Math.round(
        (loaded.rss -
          loaded.heapTotal -
          loaded.external -
          (idle.rss - idle.heapTotal - idle.external)) /
          k,
      ),
      newSpaceBytes: { idle: idle.newSpaceBytes, loaded: loaded.newSpaceBytes },
      oldSpaceBytes: { idle: idle.oldSpaceBytes, loaded: loaded.oldSpaceBytes },
      ...(empty ? { model: modelMemory(empty, idle, plan.services) } : {}),
    };
    if (memory.model) {
      log(
        `[${tag}] model: ${(memory.model.modelBytes / 2 ** 20).toFixed(1)} MiB heap+external ` +
          `(${(memory.model.modelBytesPerService / 1024).toFixed(2)} KiB per service) over an empty catalog`,
      );
    }
    log(
      `[${tag}] memory: ${(memory.rssPerProxyBytes / 1024).toFixed(1)} KiB RSS, ` +
        `${(memory.heapPerProxyBytes / 1024).toFixed(1)} KiB heap per proxy`,
    );
    const heapFile = (when: string) =>
      join(
        opts.heapSnapshotDir!,
        `${plan.name}-${mode}-${when}.heapsnapshot`.replace(/[+ ]/g, '_'),
      );
    if (opts.heapSnapshotDir && !opts.peer) {
      await cp.heapSnapshot(heapFile('loaded'));
      log(`[${tag}] heap snapshot with ${times.length} proxies: ${heapFile('loaded')}`);
    }

    // ---- sequential changes --------------------------------------------------------------
    if (plan.changes > 0 && storm.configured === plan.proxies) {
      changes = await profiled('changes', () => runChanges(plan.changes));
      log(
        `[${tag}] changes: fan-out p50 ${changes.fanoutMs.p50} / p99 ${changes.fanoutMs.p99} ms, ` +
          `end-to-end p99 ${changes.endToEndMs.p99} ms, ${changes.encodesPerChange.p50} encodes/change, ` +
          `CP ${changes.cpCpuMsPerChange.p50} ms CPU/change`,
      );
    }

    // ---- sequential router edits (W7) ----------------------------------------------------
    const edits = plan.traffic?.routerEdits ?? 0;
    if (edits > 0 && storm.configured === plan.proxies) {
      routerEdits = await profiled('router-edits', () => runRouterEdits(edits));
      log(
        `[${tag}] router edits: fan-out p50 ${routerEdits.fanoutMs.p50} / p99 ${routerEdits.fanoutMs.p99} ms, ` +
          `build p50 ${routerEdits.buildMs.p50} ms, detect p50 ${routerEdits.detectMs.p50} ms, ` +
          `${routerEdits.encodesPerChange.p50} encodes/change, CP ${routerEdits.cpCpuMsPerChange.p50} ms CPU/change`,
      );
    }

    // ---- churn ---------------------------------------------------------------------------
    for (const c of plan.churn) {
      if (storm.configured !== plan.proxies) break;
      const r = await profiled(`churn${c.rate}`, () => runChurn(c));
      churn.push(r);
      log(
        `[${tag}] churn ${c.rate}/s: ${r.complete}/${r.flips} flips seen by all, ` +
          `end-to-end p50 ${r.endToEndMs.p50} / p99 ${r.endToEndMs.p99} ms, ${r.snapshots} snapshots, ` +
          `CP busy ${r.cpBusyPct}%`,
      );
    }

    // ---- agreement -----------------------------------------------------------------------
    const final = await settle(cp, p);
    // Scoped, each service's proxies hold their own scope: they agree per service.
    const digests = await p.digests(plan.scope !== undefined);
    const ws = await p.stats();
    const sysAfter = busyCpuSeconds();
    if (sysBefore !== undefined && sysAfter !== undefined) {
      const harness = process.cpuUsage(harnessBefore);
      const ours =
        cpuMs(cpFirst, final) / 1000 +
        ws.reduce((n, w) => n + (w.cpuUserUs + w.cpuSystemUs) / 1e6, 0) +
        (harness.user + harness.system) / 1e6;
      const wall = (final.at - cpFirst.at) / 1000;
      backgroundCpuCores = round(Math.max(0, sysAfter - sysBefore - ours) / wall, 2);
    }
    const inScope = plan.scope ? Math.min(plan.scope.upstreams, plan.services - 1) : plan.services;
    const expectedCounts: Record<string, number> = {
      clusters: inScope * backendsPerService,
      endpoints: inScope * backendsPerService,
      // The shared outbound listener and the DNS listener (dns|15053: the simulated sidecars
      // send no dns_port, so they get the default).
      listeners: 2,
      routes: 1,
    };
    const { flat, agree, countsMatch } = plan.scope
      ? scopedAgreement(digests, expectedCounts, proxySpecs)
      : digestAgreement(digests, expectedCounts, plan.proxies);
    agreement = {
      agree,
      digests: flat,
      expectedCounts,
      countsMatch,
      nacks: final.nacks,
      staleNonces: final.staleNonces,
      streamErrors: ws.reduce((n, w) => n + w.streamErrors, 0),
      anomalies: ws.flatMap((w) => w.anomalies).slice(0, 20),
    };
    if (!agree) errors.push(`agreement: proxies disagree: ${JSON.stringify(flat)}`);
    if (opts.heapSnapshotDir && !opts.peer && memory.proxies > 0) {
      // The same process with no proxy: every stream gone, then the per-proxy difference.
      await p.close();
      pool = undefined;
      const deadline = nowMs() + 30_000;
      while ((await cp.stats()).connected > 0 && nowMs() < deadline) await sleep(100);
      // One more build, so what only the gone proxies used (their own resources' encodings,
      // kept until the next build) is swept as it would be in a running mesh.
      const [flip] = catalog.planFlips(1);
      const index = cp.snapshots.length - 1;
      catalog.apply(flip!);
      catalog.write();
      await cp.nextSnapshot(index, CHANGE_TIMEOUT_MS).catch(() => undefined);
      await cp.heapSnapshot(heapFile('idle'));
      heapBreakdown = heapBreakdownOf(heapFile('idle'), heapFile('loaded'), memory.proxies);
      log(
        `[${tag}] heap per proxy: ${heapBreakdown.totalBytesPerProxy} B ` +
          `${JSON.stringify(heapBreakdown.byCategory)}`,
      );
    }
    const text = await cp.metricsText();
    for (const name of [
      'lucid_mesh_resources_encoded_total',
      'lucid_mesh_resources_reused_total',
      'lucid_mesh_xds_responses_total',
      'lucid_mesh_xds_response_bytes_total',
      'lucid_mesh_xds_acks_total',
      'lucid_mesh_xds_nacks_total',
      'lucid_mesh_xds_stale_nonces_total',
      'lucid_mesh_snapshots_built_total',
      'lucid_mesh_connected_proxies',
      'lucid_mesh_process_resident_memory_bytes',
      'lucid_mesh_process_heap_bytes',
      'lucid_mesh_nodejs_heap_size_used_bytes',
      'service_discovery_latency_seconds_sum',
      'service_discovery_latency_seconds_count',
      'lucid_mesh_convergence_seconds_sum',
      'lucid_mesh_convergence_seconds_count',
    ]) {
      metrics[name] = metricTotal(text, name);
    }
  } catch (err) {
    errors.push((err as Error).message);
    log(`[${tag}] error: ${(err as Error).message}`);
  } finally {
    await pool?.close().catch(() => undefined);
    await cp.stop().catch(() => undefined);
    if (!opts.keepTemp) rmSync(dir, { recursive: true, force: true });
    else log(`[${tag}] kept ${dir}`);
  }

  return result({
    backgroundCpuCores,
    storm,
    memory,
    changes,
    agreement,
    ...(heapBreakdown ? { heapBreakdown } : {}),
  });

  // ---- phases (closures over cp, pool, catalog) ------------------------------------------

  /** An endpoint flip as a sequential change (W7: its subset's assignment changes too). */
  function flipChange(flip: Flip): PlannedChange {
    const who = audience(flip.service);
    const watches: Watch[] = [
      {
        kind: 'endpoints',
        name: flip.service,
        marker: addressMarker(flip.address),
        present: flip.health !== 'critical',
        ...(who.audience ? { audience: who.audience } : {}),
      },
    ];
    if (traffic) {
      const inst = catalog.services
        .find((x) => x.name === flip.service)!
        .instances.find((x) => x.id === flip.instance)!;
      watches.push({
        ...watches[0]!,
        name: subsetCluster(flip.service, inst.tags![0] as SubsetName),
      });
    }
    return {
      n: flip.n,
      cluster: flip.service,
      health: flip.health,
      watches,
      expected: who.expected,
      apply: () => catalog.apply(flip),
      write: () => catalog.write(),
    };
  }

  /** A router edit as a sequential change: proxies have it when their routes carry it. */
  function editChange(edit: RouterEdit): PlannedChange {
    return {
      n: edit.n,
      cluster: `service-router/${edit.service}`,
      health: `RequestTimeout ${edit.timeoutMs} ms`,
      watches: [
        { kind: 'routes', name: 'outbound', marker: routerEditMarker(edit), present: true },
      ],
      expected: plan.proxies,
      apply: () => traffic!.apply(edit),
      write: () => traffic!.write(),
    };
  }

  function runChanges(count: number): Promise<ChangesResult> {
    return measureChanges(catalog.planFlips(count + WARMUP_CHANGES).map(flipChange), count);
  }

  function runRouterEdits(count: number): Promise<ChangesResult> {
    return measureChanges(traffic!.planRouterEdits(count + WARMUP_CHANGES).map(editChange), count);
  }

  /** Makes `planned` changes one at a time (the first WARMUP_CHANGES not counted), each measured alone. */
  async function measureChanges(
    planned: readonly PlannedChange[],
    count: number,
  ): Promise<ChangesResult> {
    const p = pool!;
    const records: ChangeRecord[] = [];
    const perProxy: number[] = [];
    const arm = async (change: PlannedChange): Promise<number[]> => {
      const ids = change.watches.map(() => watchSeq++);
      await p.watch(change.watches.map((w, i) => ({ ...w, watchId: ids[i]!, detail: true })));
      return ids;
    };
    // Warm-up: the first changes after the storm run code paths the storm did not (partial
    // pushes), and V8 compiles them then. Measured like the rest, kept apart in the run file.
    const warmup: number[] = [];
    for (const change of planned.slice(0, planned.length - count)) {
      const ids = await arm(change);
      const snapIndex = cp.snapshots.length - 1;
      change.apply();
      change.write();
      try {
        const snap = await cp.nextSnapshot(snapIndex, CHANGE_TIMEOUT_MS);
        const res = combine(await p.results(ids, CHANGE_TIMEOUT_MS));
        warmup.push(round(res.last - snap.builtAt));
      } catch (err) {
        errors.push(`warm-up change ${change.cluster} #${change.n}: ${(err as Error).message}`);
      }
      await settle(cp, p);
    }
    const loggedBefore = cp.loggedBuildMs().length;
    const wBefore = await p.stats();
    const phaseBefore = await cp.stats();
    const phaseStart = nowMs();
    for (const change of planned.slice(planned.length - count)) {
      const ids = await arm(change);
      const before = await cp.stats();
      const snapIndex = cp.snapshots.length - 1;
      change.apply();
      const writeAt = nowMs();
      change.write();
      let snap: SnapshotEvent | undefined;
      let res: WatchResult | undefined;
      try {
        snap = await cp.nextSnapshot(snapIndex, CHANGE_TIMEOUT_MS);
        res = combine(await p.results(ids, CHANGE_TIMEOUT_MS));
      } catch (err) {
        errors.push(`change ${change.cluster} #${change.n}: ${(err as Error).message}`);
      }
      const after = await settle(cp, p);
      if (!snap || !res) continue;
      if (res.count < change.expected) {
        errors.push(
          `change ${change.cluster} #${change.n}: only ${res.count}/${change.expected} proxies saw it`,
        );
      }
      for (const t of res.times ?? []) perProxy.push(t - snap.builtAt);
      records.push({
        n: change.n,
        cluster: change.cluster,
        health: change.health,
        writeAt,
        sourceAt: snap.sourceAt,
        buildStartedAt: snap.buildStartedAt,
        builtAt: snap.builtAt,
        notifiedAt: snap.notifiedAt,
        firstAt: res.first,
        lastAt: res.last,
        detected: res.count,
        ...(change.expected !== plan.proxies ? { expected: change.expected } : {}),
        snapshots: after.snapshotsBuilt - before.snapshotsBuilt,
        cpCpuMs: round(cpuMs(before, after)),
        ...gcBetween(before, after),
        encodes: after.encoded - before.encoded,
        responses: after.responses - before.responses,
        bytes: after.responseBytes - before.responseBytes,
        acks: after.acks - before.acks,
      });
    }
    const wAfter = await p.stats();
    const full = records.filter((r) => r.detected === (r.expected ?? plan.proxies));
    // The control plane's own 'snapshot built' lines for this phase's changes.
    const logged = cp.loggedBuildMs().slice(loggedBefore, loggedBefore + records.length);
    return {
      count,
      warmupFanoutMs: warmup,
      complete: full.length,
      buildMs: summarize(records.map((r) => r.builtAt - r.buildStartedAt)),
      loggedBuildMs: summarize(logged),
      sourceMs: summarize(records.map((r) => r.sourceAt - r.writeAt)),
      detectMs: summarize(records.map((r) => r.builtAt - r.writeAt)),
      notifyMs: summarize(records.map((r) => r.notifiedAt - r.builtAt)),
      fanoutMs: summarize(full.map((r) => r.lastAt - r.builtAt)),
      firstProxyMs: summarize(full.map((r) => r.firstAt - r.builtAt)),
      perProxyMs: summarize(perProxy),
      endToEndMs: summarize(full.map((r) => r.lastAt - r.writeAt)),
      cpCpuMsPerChange: summarize(records.map((r) => r.cpCpuMs)),
      ...gcBetween(phaseBefore, await cp.stats()),
      bytesPerChange: summarize(records.map((r) => r.bytes)),
      encodesPerChange: summarize(records.map((r) => r.encodes)),
      responsesPerChange: summarize(records.map((r) => r.responses)),
      snapshotsPerChange: summarize(records.map((r) => r.snapshots)),
      client: clientCpu(wBefore, wAfter, nowMs() - phaseStart),
      records,
    };
  }

  async function runChurn(c: ChurnPlan): Promise<ChurnResult> {
    const p = pool!;
    const total = Math.max(1, Math.round(c.rate * c.seconds));
    const interval = 1000 / c.rate;
    // Flips due within one write interval go out in one file write (a real source batches
    // too; the file source cannot follow a file rewritten faster than its 50 ms stability wait).
    const perWrite = Math.max(1, Math.round(opts.churnWriteMs / interval));
    const flips = catalog.planFlips(total);
    const ids = flips.map(() => watchSeq++);
    const audiences = flips.map((f) => audience(f.service));
    // Watches are armed one second ahead of their flip, in batches, so arming never delays
    // a write (a watch armed early cannot fire early: its marker describes the new state).
    const batch = Math.max(perWrite, Math.ceil(c.rate / perWrite) * perWrite);
    const arm = (b: number) =>
      p.watch(
        flips
          .slice(b * batch, (b + 1) * batch)
          .map((f, i) =>
            watchFor(ids[b * batch + i]!, f, false, audiences[b * batch + i]!.audience),
          ),
      );
    await arm(0);
    let armed = arm(1);
    const before = await cp.stats();
    const wBefore = await p.stats();
    const snapFrom = cp.snapshots.length;
    const writes: number[] = [];
    let fileWrites = 0;
    const start = nowMs();
    for (let f = 0; f < total; f += perWrite) {
      if (f % batch === 0 && f > 0) {
        await armed;
        armed = arm(f / batch + 1);
      }
      const wait = start + f * interval - nowMs();
      if (wait > 0) await sleep(wait);
      const group = flips.slice(f, f + perWrite);
      for (const flip of group) catalog.apply(flip);
      const at = nowMs();
      catalog.write();
      fileWrites++;
      for (let i = 0; i < group.length; i++) writes.push(at);
    }
    await armed;
    const end = nowMs();
    const results = await p.results(ids, DRAIN_TIMEOUT_MS);
    const after = await settle(cp, p);
    const wAfter = await p.stats();
    const snaps = cp.snapshots.slice(snapFrom);
    const full = results
      .map((r, i) => ({ r, writeAt: writes[i]! }))
      .filter(({ r }, i) => r.count === audiences[i]!.expected);
    const windowMs = after.at - start;
    const cpCpu = cpuMs(before, after);
    return {
      ratePerSecond: c.rate,
      seconds: c.seconds,
      flips: total,
      achievedRate: round(total / ((end - start) / 1000), 1),
      fileWrites,
      complete: full.length,
      snapshots: after.snapshotsBuilt - before.snapshotsBuilt,
      endToEndMs: summarize(full.map(({ r, writeAt }) => r.last - writeAt)),
      fanoutMs: summarize(
        full.map(({ r }) => {
          const s = snapshotAtOrBefore(snaps, r.first);
          return s ? r.last - s.builtAt : NaN;
        }),
      ),
      buildMs: summarize(snaps.map((s) => s.builtAt - s.buildStartedAt)),
      cpCpuSeconds: round(cpCpu / 1000),
      cpBusyPct: round((cpCpu / windowMs) * 100, 1),
      cpCpuMsPerFlip: round(cpCpu / total),
      bytesPerFlip: Math.round((after.responseBytes - before.responseBytes) / total),
      encodesPerFlip: round((after.encoded - before.encoded) / total),
      responsesPerSnapshot: round(
        (after.responses - before.responses) /
          Math.max(1, after.snapshotsBuilt - before.snapshotsBuilt),
        1,
      ),
      client: clientCpu(wBefore, wAfter, windowMs),
    };
  }
}

/**
 * Whether every proxy holds the same config (one digest per kind, held by all `proxies`) and
 * that config has the expected number of resources per kind.
 */
export function digestAgreement(
  digests: Record<string, { digests?: Record<string, number> } | undefined>,
  expectedCounts: Record<string, number>,
  proxies: number,
): { flat: Record<string, Record<string, number>>; agree: boolean; countsMatch: boolean } {
  const flat: Record<string, Record<string, number>> = {};
  let agree = true;
  let countsMatch = true;
  for (const kind of Object.keys(expectedCounts)) {
    const d = digests[kind]?.digests ?? {};
    flat[kind] = d;
    const keys = Object.keys(d);
    if (keys.length !== 1 || d[keys[0]!] !== proxies) agree = false;
    for (const key of keys)
      if (Number(key.split(':')[0]) !== expectedCounts[kind]) countsMatch = false;
  }
  return { flat, agree, countsMatch };
}

/** GC pause ms and mark-compacts between two control-plane stats (when it reports them). */
function gcBetween(before: CpStats, after: CpStats): { gcMs?: number; majorGcs?: number } {
  if (before.gcMs === undefined || after.gcMs === undefined) return {};
  return {
    gcMs: round(after.gcMs - before.gcMs),
    majorGcs: (after.majorGcs ?? 0) - (before.majorGcs ?? 0),
  };
}
