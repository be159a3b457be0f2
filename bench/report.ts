// bench/RESULTS.md from the run files (bench/runs/*.json): the latest result per workload, mode
// and source, the targets, profile hot spots and a before/after history. Never edited by hand.
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import * as prettier from 'prettier';
import { REPO_ROOT } from './ipc.js';
import { peerComparison } from './peer-report.js';
import { latestScopeEnvoy, scopeEnvoySection } from './scope-report.js';
import { idleRuns, idleSection } from './idle-report.js';
import { scaleSection } from './scale-report.js';
import { isScoped, W6_DECLARED } from './scale.js';
import { largeCatalogSection } from './large-catalog-report.js';
import { fullConnectionFigures, loadFigures, minConnected } from './soak-figures.js';
import type { Summary } from './stats.js';
import {
  RESULT_SCHEMA,
  type EnvoyRunResult,
  type MachineInfo,
  type RunResult,
  type SessionResult,
  type SoakResult,
  type FailoverResult,
} from './types.js';

interface Dated<T> {
  readonly run: RunResult;
  readonly file: string;
  readonly value: T;
}

export function loadRuns(outDir: string): Array<{ run: RunResult; file: string }> {
  if (!existsSync(outDir)) return [];
  const runs: Array<{ run: RunResult; file: string }> = [];
  for (const name of readdirSync(outDir).sort()) {
    if (!name.endsWith('.json')) continue;
    try {
      const run = JSON.parse(readFileSync(join(outDir, name), 'utf8')) as RunResult;
      if (run.schema === RESULT_SCHEMA) runs.push({ run, file: join(outDir, name) });
    } catch {
      // not a run file
    }
  }
  return runs.sort((a, b) => a.run.startedAt.localeCompare(b.run.startedAt));
}

// ---- formatting ---------------------------------------------------------------------------

const dash = '–';
const ok = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function ms(v: number | null | undefined): string {
  if (!ok(v)) return dash;
  if (v >= 10_000) return `${(v / 1000).toFixed(1)} s`;
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

const pair = (
  s: Summary | undefined,
  a: 'p50' | 'p99' = 'p50',
  b: 'p99' | 'max' = 'p99',
): string => (s && s.n > 0 ? `${ms(s[a])} / ${ms(s[b])}` : dash);

function kib(bytes: number | undefined): string {
  if (!ok(bytes)) return dash;
  return (bytes / 1024).toFixed(bytes >= 100 * 1024 ? 0 : 1);
}

function mib(bytes: number | undefined): string {
  return ok(bytes) ? (bytes / 1024 / 1024).toFixed(1) : dash;
}

function num(v: number | undefined, digits = 0): string {
  return ok(v) ? v.toFixed(digits) : dash;
}

function table(header: string[], rows: string[][]): string {
  const esc = (c: string) => c.replace(/\|/g, '\\|');
  return [
    `| ${header.map(esc).join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n');
}

const shape = (s: SessionResult): string => `${s.services}×${s.instances}×${s.proxies}`;
const label = (s: SessionResult): string => s.plan;

function machineLine(m: MachineInfo): string {
  return (
    `${m.nproc} CPUs (${m.cpuModel}), ${(m.memTotalBytes / 1024 ** 3).toFixed(1)} GiB RAM, ` +
    `${m.platform}, Node ${m.node}`
  );
}

const mark = (met: boolean | undefined): string =>
  met === undefined ? dash : met ? 'met' : '**missed**';

// ---- selection ----------------------------------------------------------------------------

/**
 * Latest session per (plan, mode, source). Profiled sessions (the profiler costs CPU) only
 * feed the hot-spot section, never the tables.
 */
function latestSessions(
  runs: Array<{ run: RunResult; file: string }>,
  profiled: boolean,
): Array<Dated<SessionResult>> {
  const latest = new Map<string, Dated<SessionResult>>();
  for (const { run, file } of runs) {
    for (const s of run.sessions) {
      if (s.profiles.length > 0 !== profiled || s.peer) continue;
      latest.set(`${s.plan}|${s.mode}|${s.cp.source}`, { run, file, value: s });
    }
  }
  return [...latest.values()];
}

function latestEnvoy(runs: Array<{ run: RunResult; file: string }>): Array<Dated<EnvoyRunResult>> {
  const latest = new Map<string, Dated<EnvoyRunResult>>();
  for (const { run, file } of runs) {
    for (const e of run.envoy) latest.set(`${e.mode}|${e.source}`, { run, file, value: e });
  }
  return [...latest.values()];
}

/** Latest soak per mode (older run files have none). */
function latestSoak(runs: Array<{ run: RunResult; file: string }>): Array<Dated<SoakResult>> {
  const latest = new Map<string, Dated<SoakResult>>();
  for (const { run, file } of runs) {
    for (const s of run.soak ?? []) latest.set(s.mode, { run, file, value: s });
  }
  return [...latest.values()];
}

/** Failover runs kept per mode: the latest eight (a change shows next to the runs before it). */
const FAILOVER_RUNS_KEPT = 8;

/**
 * The latest failover runs per mode (older run files have none). Runs made with --profile
 * are left out: the profiler's own cost would read as a regression.
 */
function latestFailover(
  runs: Array<{ run: RunResult; file: string }>,
): Array<Dated<FailoverResult>> {
  const latest = new Map<string, Array<Dated<FailoverResult>>>();
  for (const { run, file } of runs) {
    if (run.argv.includes('--profile')) continue;
    for (const f of run.failover ?? []) {
      const list = latest.get(f.mode) ?? [];
      list.push({ run, file, value: f });
      latest.set(f.mode, list.slice(-FAILOVER_RUNS_KEPT));
    }
  }
  return [...latest.values()].flat();
}

function failoverTable(list: Array<Dated<FailoverResult>>): string {
  const rows = list.map(({ run, value: f }) => [
    f.mode,
    `${run.id} (${run.machine.commit}${run.machine.dirty ? ', dirty' : ''})`,
    `${f.services}×${f.instances}×${f.proxies}`,
    `**${num(f.reestablishedMs, 0)}**${ok(f.reestablishedMs) && f.reestablishedMs <= 5000 ? '' : ' (over 5 s)'}`,
    num(f.firstMs, 0),
    num(f.p50Ms, 0),
    (f.perReplica ?? []).join(' + ') || dash,
    String(f.failovers),
    `${f.bytesResent} B in ${f.responsesResent}`,
    num(f.bytesPerProxy, 1),
    mib(f.stormBytes),
    num(f.survivorCpuSeconds, 1),
    num(f.loadAvg1, 1),
    f.agree ? 'yes' : 'no',
  ]);
  return table(
    [
      'Mode',
      'Run (commit)',
      'S×I×K',
      'All K SYNCED on survivors ms (target ≤ 5,000)',
      'First ms',
      'Half ms',
      'Streams per survivor',
      'Reopen attempts',
      'Bytes resent',
      'Bytes per proxy',
      'For scale: first connect MiB',
      'Survivors CPU s',
      'Load (1 min) at kill',
      'Same content after',
    ],
    rows,
  );
}

const signed = (v: number | undefined): string =>
  ok(v) ? `${v > 0 ? '+' : ''}${v.toFixed(1)}` : dash;

/** Heap and RSS over the samples with (nearly) every proxy connected: like against like. */
function fullCell(s: SoakResult): string {
  const f = fullConnectionFigures(s.samples, s.proxies, s.warmupSeconds);
  if (!f.first || !f.last) return '–';
  return (
    `heap ${mib(f.first.heapUsed)} → ${mib(f.last.heapUsed)} (${signed(f.heapSlopeKiBPerMin)}), ` +
    `RSS ${mib(f.first.rss)} → ${mib(f.last.rss)} (${signed(f.rssSlopeKiBPerMin)}); ${f.samples} samples, ` +
    `${Math.round(f.first.t)}–${Math.round(f.last.t)} s`
  );
}

function loadCell(s: SoakResult): string {
  const load = loadFigures(s.samples);
  return load ? `${load.mean} / ${load.max}` : '–';
}

function soakTable(list: Array<Dated<SoakResult>>): string {
  const rows = list.map(({ value: s }) => [
    s.mode,
    `${s.services}×${s.instances}×${s.proxies}`,
    `${s.seconds} s`,
    `${s.lifeMs[0] / 1000}–${s.lifeMs[1] / 1000} s`,
    `${s.flips} (${s.flipsPerSecond}/s)`,
    `${s.reconnects} / ${s.reconfigured}`,
    `${mib(s.rss.start)} → ${mib(s.rss.end)}`,
    `${mib(s.rss.min)} / ${mib(s.rss.max)}`,
    signed(s.rss.slopeKiBPerMin),
    `${mib(s.heap.start)} → ${mib(s.heap.end)}`,
    `${mib(s.heap.min)} / ${mib(s.heap.max)}`,
    signed(s.heap.slopeKiBPerMin),
    fullCell(s),
    String(s.streamErrors),
    String(s.nacks),
    `${minConnected(s.samples)}/${s.proxies}`,
    `${s.connectedAtEnd}/${s.proxies}`,
    s.converged ? 'yes' : 'no',
    num(s.cpCpuSeconds, 1),
    num(s.client.maxWorkerBusyPct),
    loadCell(s),
  ]);
  return table(
    [
      'Mode',
      'S×I×K',
      'Duration',
      'Stream life',
      'Flips',
      'Reconnects / reconfigured',
      'CP RSS start → end MiB',
      'RSS min / max MiB',
      'RSS slope KiB/min',
      'CP heap start → end MiB',
      'Heap min / max MiB',
      'Heap slope KiB/min',
      'With ≥ 95 % connected: heap, RSS first → last MiB (slopes KiB/min)',
      'Stream errors',
      'NACKs',
      'Fewest connected',
      'Connected at end',
      'Converged',
      'CP CPU s',
      'Client busiest worker %',
      'Machine load mean / max',
    ],
    rows,
  );
}

const ORDER = ['Q', 'W1', 'W2', 'W4', 'W5', 'W6', 'W7', 'W9', 'W10'];
function sortSessions(list: Array<Dated<SessionResult>>): Array<Dated<SessionResult>> {
  const rank = (s: SessionResult) => Math.min(...s.covers.map((c) => ORDER.indexOf(c)));
  return [...list].sort(
    (a, b) =>
      rank(a.value) - rank(b.value) ||
      a.value.plan.localeCompare(b.value.plan) ||
      a.value.mode.localeCompare(b.value.mode),
  );
}

// ---- sections -----------------------------------------------------------------------------

function targets(sessions: Array<Dated<SessionResult>>): string {
  const rows: string[][] = [];
  const w2 = (mode: string) =>
    sessions.find(
      (d) =>
        d.value.covers.includes('W2') &&
        d.value.mode === mode &&
        d.value.changes &&
        !isScoped(d.value),
    )?.value;
  const big = (mode: string) =>
    sessions.find(
      (d) =>
        d.value.proxies >= 1000 &&
        d.value.mode === mode &&
        d.value.storm &&
        !d.value.traffic &&
        !isScoped(d.value),
    )?.value;
  for (const mode of ['sotw', 'delta']) {
    const s = w2(mode);
    const p99 = s?.changes?.fanoutMs.p99;
    rows.push([
      `W2 fan-out p99 (snapshot built → last of 1000 proxies), ${mode}`,
      '≤ 50 ms',
      ms(p99),
      mark(ok(p99) ? p99 <= 50 : undefined),
    ]);
  }
  for (const mode of ['sotw', 'delta']) {
    const s = big(mode);
    const m = s?.memory;
    rows.push([
      `Memory per connected proxy (RSS, K=${s?.proxies ?? 1000}), ${mode}`,
      '≤ 10 KB',
      m ? `${kib(m.rssPerProxyBytes)} KiB (heap ${kib(m.heapPerProxyBytes)} KiB)` : dash,
      mark(m ? m.rssPerProxyBytes <= 10_000 : undefined),
    ]);
  }
  for (const mode of ['sotw', 'delta']) {
    const s = big(mode);
    const t = s?.storm?.allConfiguredMs;
    rows.push([
      `W6 storm: 1000 proxies connect at once → all fully configured, ${mode}`,
      '≤ 2 s',
      ms(t),
      mark(ok(t) ? t <= 2000 : undefined),
    ]);
  }
  // Issue 16: "W2 storm (W6) ≤ 2 s with scoping" (bench/scale.ts, W6_DECLARED).
  for (const mode of ['sotw', 'delta']) {
    const s = sessions.find(
      (d) => d.value.plan === W6_DECLARED.name && d.value.mode === mode,
    )?.value;
    if (!s) continue;
    const t = s.storm?.allConfiguredMs;
    rows.push([
      `W6 storm with scoping: ${s.proxies} proxies, 10 declared upstreams each (--scope declared) → all fully configured, ${mode}`,
      '≤ 2 s',
      ok(t) && s.storm ? `${ms(t)} (CP CPU ${num(s.storm.cpCpuSeconds, 2)} s)` : dash,
      mark(ok(t) ? t <= 2000 : undefined),
    ]);
  }
  const encodes = sessions.filter((d) => d.value.changes);
  if (encodes.length > 0) {
    const parts = encodes.map(
      (d) =>
        `${label(d.value)} ${d.value.mode} (K=${d.value.proxies}): ${num(d.value.changes!.encodesPerChange.max)}`,
    );
    const met = encodes.every(
      (d) => d.value.changes!.encodesPerChange.max === (d.value.traffic?.resourcesPerFlip ?? 1),
    );
    rows.push([
      'Encodes per endpoint flip, max over changes (changed resources: 1; W7: 2, the service’s assignment and its subset’s)',
      'the changed resources, at any K',
      parts.join('; '),
      mark(met),
    ]);
  }
  for (const mode of ['sotw', 'delta']) {
    const s = sessions.find((d) => d.value.mode === mode && d.value.traffic?.routerEdits)?.value;
    const edits = s?.traffic?.routerEdits;
    if (!s || !edits) continue;
    rows.push([
      `Encodes per router edit (W7: the outbound RouteConfiguration), max over changes, ${mode}`,
      '1 at any K',
      num(edits.encodesPerChange.max),
      mark(edits.encodesPerChange.max === 1),
    ]);
  }
  return table(['Target', 'Goal', 'Measured', 'Status'], rows);
}

function changesTable(sessions: Array<Dated<SessionResult>>): string {
  const rows = sessions
    .flatMap(({ value: s }) => [
      ...(s.changes ? [{ s, c: s.changes, name: label(s) }] : []),
      ...(s.traffic?.routerEdits
        ? [{ s, c: s.traffic.routerEdits, name: `${label(s)} router edits` }]
        : []),
    ])
    .map(({ s, c, name }) => {
      return [
        name,
        s.mode,
        shape(s),
        `${c.complete}/${c.count}`,
        pair(c.buildMs),
        ms(c.detectMs.p50),
        ms(c.notifyMs.p50),
        pair(c.fanoutMs),
        ms(c.firstProxyMs.p50),
        pair(c.endToEndMs),
        num(c.cpCpuMsPerChange.p50, 1),
        kib(c.bytesPerChange.p50),
        num(c.encodesPerChange.max),
        num(c.responsesPerChange.p50),
        num((c.client.cpuSeconds * 1000) / Math.max(1, c.count), 1),
        num(c.client.maxWorkerBusyPct),
      ];
    });
  return table(
    [
      'Workload',
      'Mode',
      'S×I×K',
      'Changes seen by all',
      'M1 build p50 / p99 ms',
      'Detect p50 ms',
      'Notify p50 ms',
      'M3 fan-out p50 / p99 ms',
      'First proxy p50 ms',
      'End to end p50 / p99 ms',
      'M5 CP CPU ms / change',
      'M7 KiB sent / change',
      'Encodes / change (max)',
      'Responses / change',
      'Client CPU ms / change',
      'Client busiest worker %',
    ],
    rows,
  );
}

/** Ratio W7 / W2 and whether it is within the target (≤ 1.5×). */
const TRAFFIC_TARGET = 1.5;
function ratio(w7: number | undefined, w2: number | undefined): { text: string; met?: boolean } {
  if (!ok(w7) || !ok(w2)) return { text: dash };
  if (w2 <= 0) return { text: dash, met: w7 <= w2 };
  const r = w7 / w2;
  return { text: `${r.toFixed(2)}×`, met: r <= TRAFFIC_TARGET };
}

/**
 * W7 (W2 + a resolver, router and splitter on every service) next to W2, per mode: the
 * target is "no worse than 1.5× W2" for each metric, for endpoint flips and for router edits.
 */
export function trafficComparison(sessions: Array<Dated<SessionResult>>): string {
  const rows: string[][] = [];
  const notes: string[] = [];
  for (const mode of ['sotw', 'delta']) {
    const w2d = sessions.find(
      (d) =>
        d.value.covers.includes('W2') &&
        d.value.mode === mode &&
        d.value.changes &&
        !d.value.traffic,
    );
    const w7d = sessions.find((d) => d.value.covers.includes('W7') && d.value.mode === mode);
    const w2 = w2d?.value;
    const w7 = w7d?.value;
    if (!w7) continue;
    const runOf = (d: Dated<SessionResult> | undefined): string =>
      d ? `\`${basename(d.file)}\` (${num(d.value.backgroundCpuCores, 2)} cores)` : dash;
    notes.push(`${mode}: W2 from ${runOf(w2d)}, W7 from ${runOf(w7d)}`);
    const flips = w7.changes;
    const edits = w7.traffic?.routerEdits;
    const metrics: Array<{
      name: string;
      get: (c: SessionResult['changes']) => number | undefined;
      fmt: (v: number | undefined) => string;
    }> = [
      { name: 'M1 build p50 ms', get: (c) => c?.buildMs.p50, fmt: ms },
      { name: 'M1 build p99 ms', get: (c) => c?.buildMs.p99, fmt: ms },
      { name: 'M3 fan-out p50 ms', get: (c) => c?.fanoutMs.p50, fmt: ms },
      { name: 'M3 fan-out p99 ms', get: (c) => c?.fanoutMs.p99, fmt: ms },
      { name: 'M5 CP CPU ms / change (p50)', get: (c) => c?.cpCpuMsPerChange.p50, fmt: ms },
    ];
    for (const m of metrics) {
      const base = m.get(w2?.changes);
      const a = ratio(m.get(flips), base);
      const b = ratio(m.get(edits), base);
      rows.push([
        m.name,
        mode,
        m.fmt(base),
        m.fmt(m.get(flips)),
        a.text,
        mark(a.met),
        m.fmt(m.get(edits)),
        b.text,
        mark(b.met),
      ]);
    }
    const heap = ratio(w7.memory?.heapPerProxyBytes, w2?.memory?.heapPerProxyBytes);
    rows.push([
      'M6 heap / proxy KiB (after a full GC; per session)',
      mode,
      kib(w2?.memory?.heapPerProxyBytes),
      kib(w7.memory?.heapPerProxyBytes),
      heap.text,
      mark(heap.met),
      '(same session)',
      dash,
      dash,
    ]);
  }
  if (rows.length === 0) return '';
  const compared =
    'Sessions compared, with the CPU other processes used during each (background): ' +
    `${notes.join('; ')}.`;
  const header = [
    'Metric',
    'Mode',
    'W2 (endpoint flips)',
    'W7 endpoint flips',
    'W7 / W2',
    '≤ 1.5×',
    'W7 router edits',
    'W7 / W2',
    '≤ 1.5×',
  ];
  return `${table(header, rows)}\n\n${compared}`;
}

function stormTable(sessions: Array<Dated<SessionResult>>): string {
  const rows = sessions
    .filter((d) => d.value.storm)
    .map(({ value: s }) => {
      const st = s.storm!;
      const m = s.memory;
      return [
        s.covers.includes('W6') && s.covers.length > 1 ? `W6 (in ${label(s)})` : label(s),
        s.mode,
        shape(s),
        `${st.configured}/${st.proxies}`,
        ms(st.allConfiguredMs),
        st.connectedMs && ok(st.connectedMs.max)
          ? `${ms(st.connectedMs.max)} / ${ms(st.firstServedMs)}`
          : dash,
        pair(st.perProxyMs),
        num(st.cpCpuSeconds, 2),
        mib(st.bytes),
        m ? kib(m.rssPerProxyBytes) : dash,
        m ? kib(m.heapPerProxyBytes) : dash,
        m ? kib(m.heapExternalPerProxyBytes) : dash,
        m ? `${mib(m.idleRssBytes)} → ${mib(m.loadedRssBytes)}` : dash,
        num(st.client.maxWorkerBusyPct),
      ];
    });
  return table(
    [
      'Workload',
      'Mode',
      'S×I×K',
      'Configured',
      'All configured ms',
      'All connected / first response ms',
      'Per proxy p50 / p99 ms',
      'CP CPU s',
      'MiB sent',
      'M6 RSS / proxy KiB',
      'Heap / proxy KiB',
      'Heap+external / proxy KiB',
      'CP RSS 0 → K proxies MiB',
      'Client busiest worker %',
    ],
    rows,
  );
}

function churnTable(sessions: Array<Dated<SessionResult>>): string {
  const rows: string[][] = [];
  for (const { value: s } of sessions) {
    for (const c of s.churn) {
      rows.push([
        label(s),
        s.mode,
        shape(s),
        `${c.ratePerSecond}/s × ${c.seconds} s`,
        `${c.complete}/${c.flips}`,
        `${num(c.achievedRate, 1)} (${num(c.fileWrites)} writes)`,
        num(c.snapshots),
        pair(c.endToEndMs),
        pair(c.fanoutMs),
        pair(c.buildMs),
        num(c.cpBusyPct),
        num(c.cpCpuMsPerFlip, 1),
        kib(c.bytesPerFlip),
        num(c.encodesPerFlip, 2),
        num(c.client.maxWorkerBusyPct),
      ]);
    }
  }
  return table(
    [
      'Workload',
      'Mode',
      'S×I×K',
      'Flips',
      'Seen by all',
      'Flips written / s (file writes)',
      'Snapshots',
      'End to end p50 / p99 ms',
      'Fan-out p50 / p99 ms',
      'Build p50 / p99 ms',
      'CP busy %',
      'CP CPU ms / flip',
      'KiB sent / flip',
      'Encodes / flip',
      'Client busiest worker %',
    ],
    rows,
  );
}

function agreementTable(sessions: Array<Dated<SessionResult>>): string {
  const rows = sessions.map(({ value: s }) => {
    const a = s.agreement;
    return [
      label(s),
      s.mode,
      shape(s),
      a ? (a.agree ? 'yes' : '**no**') : dash,
      a ? (a.countsMatch ? 'yes' : '**no**') : dash,
      a ? String(a.nacks) : dash,
      a ? String(a.staleNonces) : dash,
      a ? String(a.streamErrors) : dash,
      s.errors.length ? String(s.errors.length) : '0',
      num(s.backgroundCpuCores, 2),
    ];
  });
  return table(
    [
      'Workload',
      'Mode',
      'S×I×K',
      'All proxies agree',
      'Resource counts as expected',
      'M9 NACKs',
      'Stale nonces',
      'Stream errors',
      'Harness errors',
      'Background CPU (cores)',
    ],
    rows,
  );
}

function envoyTable(list: Array<Dated<EnvoyRunResult>>): string {
  const rows = list.map(({ value: e }) => [
    e.mode,
    e.source,
    e.skipped ? 'skipped' : `${e.envoys} × Envoy ${e.envoyVersion}`,
    e.skipped ? e.skipped : `${e.services}×${e.instances}`,
    e.skipped ? dash : `${e.complete}/${e.changes}`,
    e.skipped ? dash : pair(e.appliedMs),
    e.skipped ? dash : ms(e.firstEnvoyMs.p50),
    e.skipped || !e.snapshotToAllMs ? dash : pair(e.snapshotToAllMs),
    e.skipped ? dash : String(e.pollIntervalMs),
    e.skipped ? dash : String(e.updateRejected),
    e.skipped ? dash : String(e.nacks),
    e.skipped ? dash : e.agree ? 'yes' : '**no**',
  ]);
  return table(
    [
      'Mode',
      'Source',
      'Envoys',
      'Catalog S×I',
      'Changes applied by all',
      'Change → all Envoys applied p50 / p99 ms',
      'First Envoy p50 ms',
      'Snapshot built → all Envoys p50 / p99 ms',
      'Admin poll ms',
      'update_rejected',
      'CP NACKs',
      'All agree',
    ],
    rows,
  );
}

function profilesSection(sessions: Array<Dated<SessionResult>>): string {
  const parts: string[] = [];
  for (const { value: s } of sessions) {
    for (const p of s.profiles) {
      parts.push(
        `### ${label(s)} ${s.mode}, ${p.phase} (${p.totalMs} ms on the control plane's main thread)\n\n` +
          table(
            ['Self %', 'Self ms', 'Function', 'Where'],
            p.top
              .slice(0, 15)
              .map((e) => [e.selfPct.toFixed(1), e.selfMs.toFixed(1), `\`${e.fn}\``, e.where]),
          ),
      );
    }
  }
  return parts.join('\n\n');
}

/**
 * The history rows of an existing RESULTS.md. Run files went to bench/out/ (not committed) until
 * 2026-12-01, so those runs are gone from a fresh clone: their rows are carried over from the file.
 */
export function carriedHistory(previous: string): string[][] {
  const at = previous.indexOf('## History');
  if (at < 0) return [];
  const rows: string[][] = [];
  for (const line of previous.slice(at).split('\n').slice(1)) {
    if (line.startsWith('## ')) break;
    if (!line.startsWith('|') || /^\|\s*-/.test(line) || line.includes('| Workload')) continue;
    rows.push(
      line
        .split('|')
        .slice(1, -1)
        .map((c) => c.trim()),
    );
  }
  return rows;
}

/** Workload label order (W1 … W7), then sotw before delta, then time. */
function historyOrder(a: string[], b: string[]): number {
  const w = (r: string[]) => Number(/W(\d+)/.exec(r[0] ?? '')?.[1] ?? 99);
  const m = (r: string[]) => (r[1] === 'sotw' ? 0 : 1);
  return (
    w(a) - w(b) ||
    (a[0] ?? '').localeCompare(b[0] ?? '') ||
    m(a) - m(b) ||
    (a[2] ?? '').localeCompare(b[2] ?? '')
  );
}

function history(runs: Array<{ run: RunResult; file: string }>, carried: string[][] = []): string {
  const rows: string[][] = [];
  const byKey = new Map<string, Array<Dated<SessionResult>>>();
  for (const { run, file } of runs) {
    for (const s of run.sessions) {
      if (s.profiles.length > 0 || s.peer) continue;
      const key = `${s.plan}|${s.mode}|${s.cp.source}`;
      const list = byKey.get(key) ?? [];
      list.push({ run, file, value: s });
      byKey.set(key, list);
    }
  }
  // Workloads in their usual order (W1 … W7), whatever order their first runs came in.
  const rank = (list: Array<Dated<SessionResult>>): number =>
    Math.min(...list[0]!.value.covers.map((c) => ORDER.indexOf(c)));
  for (const list of [...byKey.values()].sort((a, b) => rank(a) - rank(b))) {
    if (list.length < 2) continue;
    for (const { run, value: s } of list) {
      rows.push([
        label(s),
        s.mode,
        run.startedAt.slice(0, 16).replace('T', ' '),
        `${run.machine.commit}${run.machine.dirty ? '+' : ''}`,
        s.changes ? pair(s.changes.fanoutMs) : dash,
        s.changes ? num(s.changes.cpCpuMsPerChange.p50, 1) : dash,
        s.storm ? ms(s.storm.allConfiguredMs) : dash,
        s.memory ? kib(s.memory.rssPerProxyBytes) : dash,
        s.churn.map((c) => `${c.ratePerSecond}/s: ${ms(c.endToEndMs.p99)}`).join(', ') || dash,
        s.changes ? ms(s.changes.buildMs.p50) : dash,
        s.memory ? mib(s.memory.idleRssBytes) : dash,
      ]);
    }
  }
  // Earlier runs' rows whose run files are gone; a run whose file is here wins. Rows from
  // before the build and idle RSS columns were added get dashes there.
  const seen = new Set(rows.map((r) => `${r[0]}|${r[1]}|${r[2]}`));
  for (const r of carried) {
    if (seen.has(`${r[0]}|${r[1]}|${r[2]}`)) continue;
    if (r.length === 9) rows.push([...r, dash, dash]);
    else if (r.length === 11) rows.push(r);
  }
  rows.sort(historyOrder);
  if (rows.length === 0) return '';
  return table(
    [
      'Workload',
      'Mode',
      'Run (UTC)',
      'Commit',
      'Fan-out p50 / p99 ms',
      'CP CPU ms / change',
      'Storm ms',
      'RSS / proxy KiB',
      'Churn end-to-end p99',
      'Build p50 ms',
      'Idle RSS MiB',
    ],
    rows,
  );
}

// ---- the document -------------------------------------------------------------------------

export function renderResults(
  runs: Array<{ run: RunResult; file: string }>,
  carried: string[][] = [],
): string {
  const sessions = sortSessions(latestSessions(runs, false));
  const profiledSessions = sortSessions(latestSessions(runs, true));
  const envoy = latestEnvoy(runs);
  const soak = latestSoak(runs);
  const failover = latestFailover(runs);
  const used = new Map<string, RunResult>();
  for (const d of [...sessions, ...profiledSessions, ...envoy, ...soak, ...failover])
    used.set(d.file, d.run);
  const scopedRun = latestScopeEnvoy(runs);
  if (scopedRun) used.set(scopedRun.file, scopedRun.run);
  for (const i of idleRuns(runs)) used.set(i.file, i.run);
  const usedRuns = [...used.entries()].sort((a, b) => a[1].startedAt.localeCompare(b[1].startedAt));
  const machines = new Set(usedRuns.map(([, r]) => machineLine(r.machine)));
  const commits = new Set(
    usedRuns.map(
      ([, r]) => `${r.machine.commit}${r.machine.dirty ? ' (with uncommitted changes)' : ''}`,
    ),
  );
  const cp = sessions[0]?.value.cp;
  const out: string[] = [];
  out.push('# lucid-mesh benchmark results');
  out.push(
    '<!-- Generated by `npm run bench` (bench/report.ts) from the run files in bench/runs/. Do not edit by hand: re-run the benchmark, or `npm run bench -- --report-only` to regenerate. -->',
  );
  out.push(
    '> **Generated file — do not edit.** Written by `npm run bench` from the JSON run files in `bench/runs/` (committed). ' +
      'What every number means and how a proxy is judged to have a change: [docs/benchmarks.md](../docs/benchmarks.md). ' +
      'Runs before 2026-12-01, whose run files were not kept: [RESULTS-2026-11.md](RESULTS-2026-11.md) (frozen).',
  );
  if (usedRuns.length === 0) {
    out.push('No runs yet: `npm run bench`.');
    return out.join('\n\n') + '\n';
  }
  out.push(
    [
      `- **Machine:** ${[...machines].join('; ')}`,
      `- **Commit:** ${[...commits].join(', ')}`,
      `- **Runs:** ${usedRuns.map(([f, r]) => `${r.startedAt.slice(0, 19).replace('T', ' ')} UTC (\`${basename(f)}\`${r.quick ? ', quick' : ''})`).join('; ')}`,
      cp
        ? `- **Control plane:** own process, \`startControlPlane\` as \`lucid-mesh serve\` runs it, ${cp.source} source, log level \`${cp.logLevel}\` (to a file), debounce ${cp.debounceMs} ms (max ${cp.maxDebounceMs} ms)`
        : '',
      '- **Load client:** simulated sidecars in separate worker processes (one HTTP/2 connection each); their CPU is reported so a reader can tell they were not the bottleneck.',
      `- **Background:** other processes' CPU during each session is in the run files; ${backgroundNote(sessions)}`,
    ]
      .filter(Boolean)
      .join('\n'),
  );
  out.push('## Targets\n\n' + targets(sessions));
  if (sessions.some((d) => d.value.changes)) {
    out.push(
      '## Sequential changes: fan-out (M1, M3, M5, M7)\n\n' +
        'One endpoint flip at a time (an instance toggles passing ↔ critical, so one ClusterLoadAssignment changes; W7: two, the service’s and its subset’s); each is measured alone, after 2 warm-up flips (their fan-out is in the run file, `warmupFanoutMs`). ' +
        '“W7 router edits”: one service-router edited at a time in the traffic file, measured the same way (detect = traffic file written → snapshot built; fan-out = snapshot built → the last proxy received the `outbound` RouteConfiguration carrying the edit). ' +
        'Fan-out = snapshot built → the last of K proxies received that cluster’s new assignment; end to end = catalog file written → same. ' +
        'Detect = file written → snapshot built (file watch, parse, the 100 ms debounce, build).\n\n' +
        changesTable(sessions),
    );
  }
  const traffic = trafficComparison(sessions);
  if (traffic) {
    out.push(
      '## Traffic configuration (W7) against W2\n\n' +
        'W7 is W2 (1000 services × 5 instances × 1000 proxies) plus, on every service, a service-resolver with subsets v1/v2 (by instance tag), a service-router (`/admin` → v2, header `x-canary: 1` → v2, `/api/` with a timeout and 3 retries) and a service-splitter 90/10: 3,000 entries in a traffic file the control plane watches (`serve --traffic`). ' +
        'Every service has three EDS clusters (the service, `~v1`, `~v2`); an endpoint flip changes two assignments (the service’s and its subset’s) and a proxy has it when it has both. ' +
        'A router edit changes one router’s `/api/` route (timeout 2 s ↔ 3 s and a request header) in the traffic file; a proxy has it when the `outbound` RouteConfiguration it is sent carries the new header value. ' +
        'W2 is the latest W2 measurement of the same mode (the W2+W5+W6 session of the default set). Target: no worse than 1.5× W2 on each metric.\n\n' +
        traffic,
    );
  }
  if (sessions.some((d) => d.value.storm)) {
    out.push(
      '## Cold storm and memory (W6, M6)\n\nAll K sidecars open their streams at once; "configured" = CDS, EDS for every cluster, LDS and RDS received. "All connected / first response": streams opened → the last proxy’s HTTP/2 connection up, and → the first response any proxy received (the rest of "all configured" is the control plane serving the streams, one thread; docs/benchmarks.md, "The small storm"). Memory after a full GC, with 0 and with K proxies connected.\n\n' +
        stormTable(sessions),
    );
  }
  if (sessions.some((d) => d.value.churn.length > 0)) {
    out.push(
      '## Churn (W5)\n\nEndpoint flips written at a fixed rate; every flip must reach every proxy.\n\n' +
        churnTable(sessions),
    );
  }
  out.push(
    '## Agreement, NACKs (M9) and background load\n\n' +
      'Background CPU: what other processes on the machine used during the session, in cores (of ' +
      `${usedRuns[0]![1].machine.nproc}); the control plane, the load client and they share the machine.\n\n` +
      agreementTable(sessions),
  );
  if (envoy.length > 0) {
    out.push(
      '## Real Envoy convergence\n\n' +
        'A change is applied when every Envoy’s `cluster.<name>.membership_total` (admin `/stats`, polled) equals the expected number of endpoints; ' +
        'file source: an endpoint flip written to the catalog file; consul: an instance registered in (or deregistered from) a real Consul agent. ' +
        'At the end every Envoy’s `/clusters` must list the same endpoints, as many per cluster as the catalog has.\n\n' +
        envoyTable(envoy),
    );
  }
  if (soak.length > 0) {
    out.push(
      '## Soak\n\n' +
        '`--workload soak` (not in the default set): K simulated sidecars whose streams each live a random time in the range shown, then are closed by the client and reopened for the same node, under endpoint flips; no proxy is ever left disconnected for long. ' +
        'The control plane’s RSS and V8 heap are sampled after a forced full GC every ' +
        `${soak[0]!.value.sampleSeconds} s; the slopes are least-squares fits over the samples after a warm-up of ${soak[0]!.value.warmupSeconds} s (target: no growth beyond noise). ` +
        'Stream errors are stream ends the clients did not cause. Converged: once the reconnects stop, every proxy is configured, all hold the same shared content with the catalog’s counts, and the control plane counts K streams.\n\n' +
        soakTable(soak) +
        '\n\nOn a loaded machine the control plane falls behind and counts far fewer streams at times (“Fewest connected”), and its heap and RSS follow that count; the “≥ 95 % connected” column compares like with like. Before the fix, the 10-minute runs (06:14 UTC delta at load 7–15, 06:31 SotW) had V8’s heap after GC rising ~0.6 MiB/min with ≥ 95 % connected: unref’d --max-stream-age timers with delays of their own (fixed in 658a8fb). The runs after it (07:49 SotW, 08:11 delta) still had +0.3 MiB/min of heap: every service an endpoint flip touched was kept twice, once in the translation cache (fixed in 02b16d4) and once in the catalog parser (513a11e), until all 1,000 had been flipped (500 s). Both runs above are after those fixes: heap after GC with ≥ 95 % connected −1.2 KiB/min (SotW, 43.8 MiB at every fully connected sample from 180 s) and +24 KiB/min (delta); the target (no growth beyond noise) is met for the heap. RSS: SotW 235–246 MiB from 120 s; delta 209–217 MiB, then a native step to 220–227 MiB at 470 s (docs/reliability.md, “Soak”). What the native part of RSS is (docs/benchmarks.md, “Soak (W8)”): 60–90 MiB in the first 30–60 s of churn, then flat; HTTP/2 churn against grpc-js alone grows it ~43 MiB (glibc keeping freed per-message copies; bench/diag/http2-churn.mjs)',
    );
  }
  if (failover.length > 0) {
    out.push(
      '## Failover (issue 12)\n\n' +
        '`--workload failover` (not in the default set): three control plane replicas (own processes) on one catalog; K simulated sidecars that, like Envoy bootstrapped with three `--xds`, reopen a broken stream after a jittered back-off (0.25 s base, 2 s max) on another replica, saying what they hold (SotW `version_info`, delta `initial_resource_versions`). ' +
        'All K start on the first replica, which is killed with SIGKILL. Re-established = SYNCED on a survivor: its stream there has every type it asked for at the survivor’s current version (sent and ACKed, or already held), polled every 50 ms. ' +
        'Bytes resent: every response byte the proxies received from the kill until a second after the last was SYNCED (target: only what they lack, near zero). Same content after: every proxy holds the same content per type as before the kill.\n\n' +
        failoverTable(failover),
    );
  }
  const scoped = latestScopeEnvoy(runs);
  if (scoped) out.push(scopeEnvoySection(scoped.value));
  const idle = idleSection(runs);
  if (idle) out.push(idle);
  const scale = scaleSection(runs);
  if (scale) out.push(scale);
  const large = largeCatalogSection(runs);
  if (large) out.push(large);
  const prof = profilesSection(profiledSessions);
  if (prof) {
    out.push(
      '## Control-plane profile hot spots\n\n' +
        'From `--profile` runs (kept out of the tables above: the profiler costs CPU). Self time by function while the phase ran, V8 sampling profiler in the control-plane process, idle excluded.\n\n' +
        prof,
    );
  }
  const peers = peerComparison(runs);
  if (peers)
    out.push(
      '## go-control-plane side by side\n\n' +
        'The same sessions (same generated catalogs, same load client, same phases) run against a reference peer, `bench/peers/go-control-plane`: go-control-plane v0.14.0 written as its users write one (`cache.NewSnapshotCache(true, …)` + `server.NewServer`), reading the same catalog file. ' +
        '*per-node*: one snapshot per node id, every known node’s rebuilt on each change; *shared*: one snapshot for every proxy (its best case; no per-proxy inbound listener). ' +
        'Sessions are interleaved (lucid-mesh, then the peer, per round), so both see the same spell of a shared 2-core machine: treat differences under ~1.5× as noise. ' +
        'Ratio = peer / lucid-mesh (above 1: lucid-mesh lower). The peer’s CPU and RSS are read from /proc; what favours either side: [docs/benchmarks.md](../docs/benchmarks.md#go-control-plane-side-by-side).\n\n' +
        peers,
    );
  const hist = history(runs, carried);
  if (hist)
    out.push(
      '## History (before / after)\n\nEvery run file in bench/runs/ for workloads run more than once, and the rows of earlier runs kept from this file (runs before 2026-12-01, whose run files were not committed). Build p50: M1, catalog change → snapshot built. Idle RSS: the control plane with the catalog loaded and no proxy connected.\n\n' +
        hist,
    );
  const errors = sessions.flatMap((d) =>
    d.value.errors.map((e) => `- ${label(d.value)} ${d.value.mode}: ${e}`),
  );
  for (const d of soak) errors.push(...d.value.errors.map((e) => `- soak ${d.value.mode}: ${e}`));
  for (const d of failover)
    errors.push(...d.value.errors.map((e) => `- failover ${d.value.mode}: ${e}`));
  if (errors.length) out.push('## Harness errors\n\n' + errors.slice(0, 30).join('\n'));
  return out.join('\n\n') + '\n';
}

function backgroundNote(sessions: Array<Dated<SessionResult>>): string {
  const values = sessions.map((d) => d.value.backgroundCpuCores).filter(ok);
  if (values.length === 0) return 'not measured.';
  return `between ${Math.min(...values).toFixed(2)} and ${Math.max(...values).toFixed(2)} cores on average (of ${sessions[0]!.run.machine.nproc}).`;
}

/** Regenerates `resultsPath` from every run file in `outDir`; formatted with the repo's Prettier config. */
export async function writeResults(outDir: string, resultsPath: string): Promise<string> {
  const previous = existsSync(resultsPath) ? readFileSync(resultsPath, 'utf8') : '';
  const text = renderResults(loadRuns(outDir), carriedHistory(previous));
  const config = (await prettier.resolveConfig(join(REPO_ROOT, 'bench', 'RESULTS.md'))) ?? {};
  const formatted = await prettier.format(text, { ...config, parser: 'markdown' });
  writeFileSync(resultsPath, formatted);
  return relative(process.cwd(), resultsPath) || resultsPath;
}
