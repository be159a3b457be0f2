// RESULTS.md's comparison with the go-control-plane reference peer (`--peer`): for each
// workload and xDS mode, the latest run that measured both, each metric for lucid-mesh and the
// peer from the same round of that run (interleaved sessions), and the ratio peer / lucid-mesh.
import type { Summary } from './stats.js';
import type { PeerMode, RunResult, SessionResult } from './types.js';

const dash = '–';
const ok = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function fmt(v: number | undefined, unit: string): string {
  if (!ok(v)) return dash;
  if (unit === 'ms' && v >= 10_000) return `${(v / 1000).toFixed(1)} s`;
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

/** How many times the peer's value is lucid-mesh's (>1: lucid-mesh lower). */
function ratio(lucid: number | undefined, peer: number | undefined): string {
  if (!ok(lucid) || !ok(peer) || lucid <= 0) return dash;
  const r = peer / lucid;
  return `${r >= 10 ? r.toFixed(0) : r.toFixed(2)}×`;
}

const p = (s: Summary | undefined, k: 'p50' | 'p99'): number | undefined =>
  s && s.n > 0 ? s[k] : undefined;

/** Metric rows: lower is better for every one of them. */
const METRICS: ReadonlyArray<{
  readonly name: string;
  readonly unit: string;
  readonly get: (s: SessionResult) => number | undefined;
}> = [
  {
    name: 'Fan-out p50 (built → last proxy), ms',
    unit: 'ms',
    get: (s) => p(s.changes?.fanoutMs, 'p50'),
  },
  { name: 'Fan-out p99, ms', unit: 'ms', get: (s) => p(s.changes?.fanoutMs, 'p99') },
  {
    name: 'End to end p50 (file written → last proxy), ms',
    unit: 'ms',
    get: (s) => p(s.changes?.endToEndMs, 'p50'),
  },
  { name: 'End to end p99, ms', unit: 'ms', get: (s) => p(s.changes?.endToEndMs, 'p99') },
  {
    name: 'Detect p50 (file written → built), ms',
    unit: 'ms',
    get: (s) => p(s.changes?.detectMs, 'p50'),
  },
  { name: 'CPU per change p50, ms', unit: 'ms', get: (s) => p(s.changes?.cpCpuMsPerChange, 'p50') },
  {
    name: 'Bytes sent per change p50, KiB',
    unit: 'KiB',
    get: (s) => kib(p(s.changes?.bytesPerChange, 'p50')),
  },
  { name: 'Cold storm: all configured, ms', unit: 'ms', get: (s) => s.storm?.allConfiguredMs },
  { name: 'Cold storm: CPU, s', unit: 's', get: (s) => s.storm?.cpCpuSeconds },
  { name: 'Cold storm: bytes sent, MiB', unit: 'MiB', get: (s) => mib(s.storm?.bytes) },
  { name: 'RSS, no proxy connected, MiB', unit: 'MiB', get: (s) => mib(s.memory?.idleRssBytes) },
  { name: 'RSS with K proxies, MiB', unit: 'MiB', get: (s) => mib(s.memory?.loadedRssBytes) },
  { name: 'RSS per proxy, KiB', unit: 'KiB', get: (s) => kib(s.memory?.rssPerProxyBytes) },
  { name: 'Load client CPU per change, ms', unit: 'ms', get: (s) => clientMsPerChange(s) },
];

function kib(b: number | undefined): number | undefined {
  return ok(b) ? b / 1024 : undefined;
}
function mib(b: number | undefined): number | undefined {
  return ok(b) ? b / 1024 / 1024 : undefined;
}
function clientMsPerChange(s: SessionResult): number | undefined {
  const c = s.changes;
  return c && c.records.length > 0 ? (c.client.cpuSeconds * 1000) / c.records.length : undefined;
}

interface Comparison {
  readonly run: RunResult;
  readonly plan: string;
  readonly mode: string;
  readonly round: number;
  readonly lucid: SessionResult;
  readonly peers: Map<PeerMode, SessionResult>;
}

/** Every (plan, mode, round) of a run that has lucid-mesh and at least one peer session. */
function comparisons(run: RunResult): Comparison[] {
  const out: Comparison[] = [];
  for (const s of run.sessions) {
    if (!s.peer) continue;
    const key = (x: SessionResult) => `${x.plan}|${x.mode}|${x.round ?? 1}`;
    const lucid = run.sessions.find((x) => !x.peer && key(x) === key(s));
    if (!lucid) continue;
    let c = out.find((x) => x.lucid === lucid);
    if (!c) {
      c = { run, plan: s.plan, mode: s.mode, round: s.round ?? 1, lucid, peers: new Map() };
      out.push(c);
    }
    c.peers.set(s.peer.mode, s);
  }
  return out;
}

function table(header: string[], rows: string[][]): string {
  const esc = (c: string) => c.replace(/\|/g, '\\|');
  return [
    `| ${header.map(esc).join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n');
}

function comparisonTable(c: Comparison): string {
  const modes = (['per-node', 'shared'] as const).filter((m) => c.peers.has(m));
  const header = ['Metric (lower is better)', 'lucid-mesh'];
  for (const m of modes) header.push(`go-control-plane ${m}`, 'ratio');
  const rows = METRICS.map((metric) => {
    const l = metric.get(c.lucid);
    const row = [metric.name, fmt(l, metric.unit)];
    for (const m of modes) {
      const v = metric.get(c.peers.get(m)!);
      row.push(fmt(v, metric.unit), ratio(l, v));
    }
    return row;
  });
  const agree = (s: SessionResult) =>
    s.agreement ? (s.agreement.agree && s.agreement.countsMatch ? 'yes' : '**no**') : dash;
  rows.push([
    'Every proxy agrees, counts as the catalog',
    agree(c.lucid),
    ...modes.flatMap((m) => [agree(c.peers.get(m)!), '']),
  ]);
  rows.push([
    'Harness errors',
    String(c.lucid.errors.length),
    ...modes.flatMap((m) => [String(c.peers.get(m)!.errors.length), '']),
  ]);
  return table(header, rows);
}

/** The section's tables (empty when no run compared a peer). */
export function peerComparison(runs: ReadonlyArray<{ run: RunResult; file: string }>): string {
  // The latest two runs per (plan, mode, peer modes compared), all their rounds: a re-run
  // shows next to the run before it, so a reader sees how much the shared machine moved them.
  const latest = new Map<string, Comparison[][]>();
  for (const { run } of runs) {
    const byKey = new Map<string, Comparison[]>();
    for (const c of comparisons(run)) {
      const key = `${c.plan}|${c.mode}|${[...c.peers.keys()].sort().join('+')}`;
      byKey.set(key, [...(byKey.get(key) ?? []), c]);
    }
    for (const [key, list] of byKey) latest.set(key, [...(latest.get(key) ?? []), list].slice(-2));
  }
  // Workload, SotW before delta, then run by run, round by round.
  const order = (c: Comparison) =>
    `${c.plan.padEnd(12)}|${c.mode === 'sotw' ? 0 : 1}|${c.run.startedAt}|${String(c.round).padStart(3, '0')}`;
  const all = [...latest.values()].flat(2).sort((a, b) => order(a).localeCompare(order(b)));
  return all
    .map((c) => {
      const rounds = c.run.sessions.filter(
        (s) => !s.peer && s.plan === c.plan && s.mode === c.mode,
      ).length;
      const s = c.lucid;
      return (
        `### ${c.plan} ${c.mode}: ${s.services} services × ${s.instances} instances × ${s.proxies} proxies` +
        `${rounds > 1 ? `, round ${c.round} of ${rounds}` : ''}\n\n` +
        `Run ${c.run.startedAt.slice(0, 16).replace('T', ' ')} UTC, commit ${c.run.machine.commit}${c.run.machine.dirty ? '+' : ''}; ` +
        `background load ${[s, ...c.peers.values()].map((x) => (ok(x.backgroundCpuCores) ? x.backgroundCpuCores.toFixed(2) : dash)).join(' / ')} cores ` +
        `(lucid-mesh / peer sessions).\n\n` +
        comparisonTable(c)
      );
    })
    .join('\n\n');
}
