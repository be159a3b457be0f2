// `npm run bench -- [options]`: the benchmark harness's command line. See --help and
// docs/benchmarks.md.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_OUT_DIR, DEFAULT_RESULTS, runBench, type BenchOptions } from './harness.js';
import { writeResults } from './report.js';
import { soakPlan } from './soak.js';
import { failoverPlan } from './failover.js';
import { PEER_NAME } from './peer-control-plane.js';
import {
  DEFAULT_XDS_TRANSPORT,
  XDS_TRANSPORTS,
  type XdsTransportName,
} from '../src/xds/ads-transport.js';
import type { Mode, PeerMode } from './types.js';
import { DEFAULT_SET, QUICK_SET, parseWorkloads, type SessionPlan } from './workloads.js';

const HELP = `Usage: npm run bench -- [options]

Benchmarks lucid-mesh: a control plane in its own process, K simulated Envoy sidecars (ADS
streams in worker processes), and real Envoys. Writes a run file to bench/out/ and regenerates
bench/RESULTS.md from all run files there. What each number means: docs/benchmarks.md.

With no --workload: the default set (W1, W4, W2+W5+W6, W7 in SotW and delta, then 5 real
Envoys), about 10 minutes on 2 cores.

Options:
  --workload LIST       W1, W2, W4, W5, W6, W7, W9, W10, Q (quick), envoy; comma-separated; A+B
                        shares one session between workloads of the same shape (e.g. W2+W5+W6)
                          W1 100 services × 3 instances × 100 proxies, 20 endpoint flips
                          W2 1000×5×1000, 20 flips      W4 50×2000×200 (large EDS), 20 flips
                          W5 1000×5×1000, flips at 10/s then 100/s, 30 s each (churn)
                          W6 1000×5×1000, the cold storm only (all proxies connect at once)
                          W7 W2 + a resolver (2 subsets), router and splitter on every service
                             (a watched traffic file): 20 flips, then 10 router edits
                          W10 issue 16's "W8": 10000×3×1000 (a large catalog): storm, the
                             model's memory (0 proxies vs an empty catalog), 20 flips with
                             the build time per change, churn at 10/s for 30 s. Not in the
                             default set
                          W9  issue 16's "W7": 1000×10×10000 (10,000 proxies, 4 load
                             workers), two sessions: "W9 declared" (every service declares 10
                             upstreams, the control plane runs --scope declared) and "W9 all"
                             (every sidecar gets the whole mesh); storm, memory, 20 flips,
                             churn 10/s for 20 s. W9:declared or W9:all runs one. Takes
                             minutes; not in the default set
                          W6:declared  W2's catalog and proxies (1000×5×1000), every service
                             declaring 10 upstreams, the control plane with --scope declared:
                             storm (issue 16's "W6 with scoping ≤ 2 s"), memory, 20 flips,
                             churn 10/s for 20 s. Not in the default set
                          envoy  5 real Envoys, 20 changes, change → every Envoy applied it
                          soak   1000×5×1000, every stream closed and reopened by its client
                                 after a random 5–30 s, 2 flips/s, for --soak-seconds (default
                                 600); control-plane RSS and heap sampled every 10 s. Not in the
                                 default set
                          failover  3 replicas, 1000×5×1000 all on the first, which is killed
                                 with -9: time until every proxy is SYNCED on the other two,
                                 and the bytes resent. Not in the default set
                          scope-envoy  one real Envoy sidecar with 1,000 services in scope vs
                                 10 declared upstreams (docs/scoping.md): its RSS and
                                 config_dump size, 2 interleaved rounds. Not in the default set
                          idle   \`lucid-mesh serve\` (the bin) with no proxy: RSS (anon/file),
                                 V8 heap spaces and the modules loaded, 10 s after /ready, on
                                 an empty, the example and a 1000×5 catalog (--repeat rounds,
                                 default 3), plus RSS per import step. Not in the default set
  --mode MODE           sotw | delta | both (default both; sotw when the only workload is soak)
  --soak-seconds N      soak duration (default 600)
  --soak-snapshots-at LIST  with --heap-snapshot and soak: minutes into the soak to take the
                        heap snapshots at, comma-separated (e.g. 2,4.5); one more is taken
                        at the end (default: once the warm-up is over, and at the end)
  --source SOURCE       file | consul (default file). consul applies to the real-Envoy run:
                        changes are registrations in a real Consul agent
  --quick               smoke set, under a minute: Q (30×3×30, 5 flips, 2 s churn), both modes
  --proxies N           override K (simulated proxies) for every session
  --changes N           override the number of sequential flips per session
  --router-edits N      override the number of sequential router edits (W7)
  --churn-seconds N     override the churn duration (W5)
  --workers N           load-client worker processes (default 2)
  --churn-write-ms N    churn: at most one catalog file write per N ms, flips due in between
                        share it (default 100; 0 = one write per flip, which the file
                        source's 50 ms write-stability wait cannot follow at 100 flips/s)
  --envoys N            real Envoys (default 5)        --envoy-changes N  (default 20)
  --debounce-ms N       control plane --debounce-ms (default 100, as serve)
  --max-debounce-ms N   control plane --max-debounce-ms (default 1000, as serve)
  --cp-log-level LEVEL  control plane log level (default info, as serve; logs go to a file)
  --xds-transport NAME  what serves ADS in the control plane: http2 | grpc-js (serve
                        --xds-transport; default: serve's default)
  --peer NAME           also run every session against a reference control plane, interleaved
                        with lucid-mesh's (same catalogs, same load client): go-control-plane
                        (bench/peers/go-control-plane, built by scripts/install-tools.sh
                        gcp-peer). RESULTS.md compares the two. Not with W7 (the peer reads
                        no traffic file); soak and envoy still run lucid-mesh only
  --peer-mode MODE      per-node (one snapshot per node id, default) | shared (one snapshot
                        for every proxy: go-control-plane's best case) | both
  --repeat N            rounds of each session (with --peer: lucid-mesh, peer, lucid-mesh,
                        peer, …; default 1)
  --heap-snapshot       V8 heap snapshots of the control plane with K proxies and with none
                        (after the load client left); the heap per proxy by owner goes to the
                        run file and RESULTS.md (bench/heap-breakdown.ts); the snapshots
                        stay in bench/out/heap/<run>/ (with --out DIR: DIR/heap/<run>/)
                        until the next --heap-snapshot run. With soak: one after the
                        warm-up and one at the end, kept; compare them with
                        bench/heap-breakdown.ts
  --profile             CPU-profile the control plane during each phase; hot spots go to
                        the run file and RESULTS.md (.cpuprofile files under
                        bench/out/profiles/, with --out DIR under DIR/profiles/)
  --out DIR             where run files go (default bench/runs, committed: RESULTS.md is
                        generated from every run file there)
  --results FILE        RESULTS.md to regenerate (default bench/RESULTS.md)
  --no-results          do not regenerate RESULTS.md
  --report-only         only regenerate RESULTS.md from the run files in --out
  --keep                keep the temporary catalog and control-plane log of each session
  -h, --help            this text

Environment:
  LUCID_BENCH_CP_FLAGS  more node/V8 flags for the control-plane process (e.g. --trace-gc;
                        with --keep its output stays in the kept cp.log)
`;

function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(2);
}

function int(
  flag: string,
  value: string | undefined,
  min: number,
  fallback?: number,
): number | undefined {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min)
    fail(`--${flag}: expected an integer ≥ ${min}, got ${JSON.stringify(value)}`);
  return n;
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: process.argv.slice(2),
      allowPositionals: false,
      options: {
        workload: { type: 'string' },
        mode: { type: 'string' },
        'soak-seconds': { type: 'string' },
        'soak-snapshots-at': { type: 'string' },
        source: { type: 'string', default: 'file' },
        quick: { type: 'boolean', default: false },
        proxies: { type: 'string' },
        changes: { type: 'string' },
        'router-edits': { type: 'string' },
        'churn-seconds': { type: 'string' },
        workers: { type: 'string' },
        'churn-write-ms': { type: 'string' },
        envoys: { type: 'string' },
        'envoy-changes': { type: 'string' },
        'debounce-ms': { type: 'string' },
        'max-debounce-ms': { type: 'string' },
        'cp-log-level': { type: 'string', default: 'info' },
        profile: { type: 'boolean', default: false },
        'heap-snapshot': { type: 'boolean', default: false },
        peer: { type: 'string' },
        'peer-mode': { type: 'string' },
        'xds-transport': { type: 'string' },
        repeat: { type: 'string' },
        out: { type: 'string' },
        results: { type: 'string' },
        'no-results': { type: 'boolean', default: false },
        'report-only': { type: 'boolean', default: false },
        keep: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    fail(`${(err as Error).message} (see --help)`);
  }
  const v = parsed.values;
  if (v.help) {
    process.stdout.write(HELP);
    return;
  }
  const outDir = v.out ? resolve(v.out) : DEFAULT_OUT_DIR;
  const resultsPath = v['no-results']
    ? undefined
    : v.results
      ? resolve(v.results)
      : DEFAULT_RESULTS;
  if (v['report-only']) {
    if (!resultsPath) fail('--report-only and --no-results leave nothing to do');
    process.stderr.write(`results: ${await writeResults(outDir, resultsPath)}\n`);
    return;
  }

  const workloadParts = (v.workload ?? '').split(',').map((p) => p.trim().toLowerCase());
  const soakOnly = workloadParts.length > 0 && workloadParts.every((p) => p === 'soak');
  const modeArg = v.mode ?? (soakOnly ? 'sotw' : 'both');
  const modes: Mode[] =
    modeArg === 'both'
      ? ['sotw', 'delta']
      : modeArg === 'sotw' || modeArg === 'delta'
        ? [modeArg]
        : fail(`--mode: expected sotw, delta or both, got ${JSON.stringify(modeArg)}`);
  if (v.source !== 'file' && v.source !== 'consul')
    fail(`--source: expected file or consul, got ${JSON.stringify(v.source)}`);
  const source = v.source;
  const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
  if (!levels.includes(v['cp-log-level']))
    fail(
      `--cp-log-level: expected one of ${levels.join(', ')}, got ${JSON.stringify(v['cp-log-level'])}`,
    );

  let sessions: SessionPlan[];
  let envoy = false;
  let soak = false;
  let failover = false;
  let scopeEnvoy = false;
  let idle = false;
  let label: string;
  if (v.workload) {
    const parts = v.workload.split(',').map((p) => p.trim());
    envoy = parts.some((p) => p.toLowerCase() === 'envoy');
    soak = parts.some((p) => p.toLowerCase() === 'soak');
    failover = parts.some((p) => p.toLowerCase() === 'failover');
    scopeEnvoy = parts.some((p) => p.toLowerCase() === 'scope-envoy');
    idle = parts.some((p) => p.toLowerCase() === 'idle');
    const rest = parts.filter(
      (p) => !['envoy', 'soak', 'failover', 'scope-envoy', 'idle'].includes(p.toLowerCase()),
    );
    try {
      sessions = rest.length ? parseWorkloads(rest.join(',')) : [];
    } catch (err) {
      fail((err as Error).message);
    }
    label = parts.join('_').replace(/[+:]/g, '-');
  } else if (v.quick) {
    sessions = QUICK_SET;
    label = 'quick';
  } else {
    sessions = DEFAULT_SET;
    envoy = true;
    label = 'default';
  }
  if (source === 'consul' && sessions.length > 0) {
    fail(
      '--source consul: only the real-Envoy run reads Consul (use --workload envoy); the simulated-proxy workloads use the catalog file',
    );
  }
  const proxies = int('proxies', v.proxies, 1);
  const changes = int('changes', v.changes, 0);
  const churnSeconds = int('churn-seconds', v['churn-seconds'], 1);
  const routerEdits = int('router-edits', v['router-edits'], 0);
  sessions = sessions.map((s) => ({
    ...s,
    proxies: proxies ?? s.proxies,
    changes: changes ?? s.changes,
    churn: s.churn.map((c) => ({ ...c, seconds: churnSeconds ?? c.seconds })),
    ...(s.traffic ? { traffic: { routerEdits: routerEdits ?? s.traffic.routerEdits } } : {}),
  }));
  for (const s of sessions) {
    if (s.proxies > s.services * s.instances)
      fail(
        `--proxies: ${s.proxies} is more than the ${s.services * s.instances} instances of ${s.name}`,
      );
  }
  const debounceMs = int('debounce-ms', v['debounce-ms'], 0, 100)!;
  const maxDebounceMs = int(
    'max-debounce-ms',
    v['max-debounce-ms'],
    0,
    Math.max(1000, debounceMs),
  )!;
  if (maxDebounceMs < debounceMs)
    fail(`--max-debounce-ms: must be at least --debounce-ms (${debounceMs}), got ${maxDebounceMs}`);

  if (v.peer !== undefined && v.peer !== PEER_NAME)
    fail(`--peer: expected ${PEER_NAME}, got ${JSON.stringify(v.peer)}`);
  if (v['peer-mode'] !== undefined && v.peer === undefined)
    fail('--peer-mode: only with --peer go-control-plane');
  const peerModeArg = v['peer-mode'] ?? 'per-node';
  const peerModes: PeerMode[] =
    peerModeArg === 'both'
      ? ['per-node', 'shared']
      : peerModeArg === 'per-node' || peerModeArg === 'shared'
        ? [peerModeArg]
        : fail(
            `--peer-mode: expected per-node, shared or both, got ${JSON.stringify(peerModeArg)}`,
          );
  if (v.peer !== undefined && sessions.some((s) => s.traffic))
    fail('--peer: W7 needs a traffic file, which the go-control-plane peer does not read');
  if (v.peer !== undefined && sessions.some((s) => s.scope))
    fail(
      '--peer: W6:declared and W9:declared need --scope declared, which the peer does not implement',
    );
  if (v.peer !== undefined && sessions.length === 0)
    fail('--peer: no session workload to compare (soak and envoy run lucid-mesh only)');
  const repeat = int('repeat', v.repeat, 1, 1)!;

  const soakSeconds = int('soak-seconds', v['soak-seconds'], 10, 600)!;
  if (v['soak-seconds'] !== undefined && !soak) fail('--soak-seconds: only with --workload soak');
  if (soak && proxies !== undefined && proxies > 5000)
    fail(`--proxies: ${proxies} is more than the 5000 instances of the soak catalog`);

  const snapshotsAt = v['soak-snapshots-at'];
  if (snapshotsAt !== undefined && (!soak || !v['heap-snapshot']))
    fail('--soak-snapshots-at: only with --workload soak and --heap-snapshot');
  const snapshotAtSeconds = snapshotsAt?.split(',').map((m) => {
    const min = Number(m.trim());
    if (m.trim() === '' || !Number.isFinite(min) || min <= 0 || min * 60 >= soakSeconds)
      fail(
        `--soak-snapshots-at: expected minutes > 0 and before the end of the soak (${soakSeconds / 60} min), got ${JSON.stringify(m)}`,
      );
    return Math.round(min * 60);
  });

  const xdsTransport = (v['xds-transport'] ?? DEFAULT_XDS_TRANSPORT) as XdsTransportName;
  if (!XDS_TRANSPORTS.includes(xdsTransport))
    fail(
      `--xds-transport: expected ${XDS_TRANSPORTS.join(' | ')}, got ${JSON.stringify(xdsTransport)}`,
    );
  // Every control plane the bench starts (cp-child.ts) reads it, as serve does.
  process.env.LUCID_XDS_TRANSPORT = xdsTransport;

  const opts: BenchOptions = {
    sessions,
    ...(soak
      ? {
          soak: {
            ...soakPlan(soakSeconds, proxies ?? 1000),
            ...(snapshotAtSeconds ? { snapshotAtSeconds } : {}),
          },
        }
      : {}),
    ...(failover ? { failover: failoverPlan(proxies ?? 1000) } : {}),
    ...(scopeEnvoy ? { scopeEnvoy: { rounds: Math.max(repeat, 2) } } : {}),
    ...(idle ? { idle: { rounds: v.repeat === undefined ? 3 : repeat } } : {}),
    envoy: envoy
      ? {
          envoys: int('envoys', v.envoys, 1, 5)!,
          changes: int('envoy-changes', v['envoy-changes'], 1, 20)!,
          source,
        }
      : undefined,
    modes,
    ...(v.peer !== undefined ? { peer: { modes: peerModes, repeat } } : { repeat }),
    cp: { source: 'file', logLevel: v['cp-log-level'], debounceMs, maxDebounceMs },
    workers: int('workers', v.workers, 1, 2)!,
    churnWriteMs: int('churn-write-ms', v['churn-write-ms'], 0, 100)!,
    profile: v.profile,
    heapSnapshot: v['heap-snapshot'],
    quick: v.quick,
    outDir,
    resultsPath,
    keepTemp: v.keep,
    argv: process.argv.slice(2),
    xdsTransport,
    label,
  };
  await runBench(opts);
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`bench: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
