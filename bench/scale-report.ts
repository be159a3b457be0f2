// RESULTS.md's 10,000-proxy section (W9 = issue 16's "W7"): the latest session of each scope
// and mode, the issue's targets, and the control plane's heap per proxy by owner.
import { basename } from 'node:path';
import type { RunResult, SessionResult } from './types.js';

interface Dated {
  readonly run: RunResult;
  readonly file: string;
  readonly value: SessionResult;
}

const row = (cells: string[]) => `| ${cells.join(' | ')} |`;
const rule = (n: number) => row(Array.from({ length: n }, () => '---'));
const dash = '–';
const f = (x: number | undefined, digits = 0): string =>
  x === undefined || !Number.isFinite(x) ? dash : x.toFixed(digits);
const kib = (bytes: number | undefined) => f(bytes === undefined ? undefined : bytes / 1024, 1);
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);
const scopeOf = (s: SessionResult) => (s.plan.includes('declared') ? 'declared (10)' : 'all');
/** What served ADS (bench --xds-transport); runs from before it had grpc-js. */
const transportOf = (run: RunResult) => run.xdsTransport ?? 'grpc-js';

/** The latest W9 session per plan and mode (profiled ones left out: the profiler costs CPU). */
export function latestW9(runs: Array<{ run: RunResult; file: string }>): Dated[] {
  const latest = new Map<string, Dated>();
  for (const { run, file } of runs) {
    for (const value of run.sessions) {
      if (!value.covers.includes('W9') || value.peer || value.profiles.length > 0) continue;
      latest.set(`${value.plan}|${value.mode}|${transportOf(run)}`, { run, file, value });
    }
  }
  return [...latest.values()].sort(
    (a, b) => b.value.plan.localeCompare(a.value.plan) || b.value.mode.localeCompare(a.value.mode),
  );
}

function sessionsTable(list: Dated[]): string {
  const header = [
    'Scope',
    'Mode',
    'Transport',
    'Run',
    'Configured',
    'All configured s',
    'Per proxy p50 / p99 s',
    'Storm CP CPU s',
    'Storm MiB sent',
    'Client busiest worker % (storm)',
    'CP RSS 0 → K MiB',
    'RSS / proxy KiB',
    'Heap / proxy KiB',
    'V8 committed heap / native rest KB per proxy',
    'Mark-compacts: storm / changes',
    'Proxies per change',
    'Fan-out p50 / p99 ms',
    'End to end p50 / p99 ms',
    'CP CPU ms / change',
    'Churn 10/s: seen by all, end to end p99 ms',
    'Agree',
    'Background cores',
  ];
  const rows = list.map(({ run, file, value: s }) => {
    const st = s.storm;
    const m = s.memory;
    const c = s.changes;
    const churn = s.churn[0];
    const expected = c?.records.map((r) => r.expected ?? s.proxies);
    return row([
      scopeOf(s),
      s.mode,
      transportOf(run),
      `\`${basename(file)}\``,
      st ? `${st.configured}/${st.proxies}` : dash,
      f(st ? st.allConfiguredMs / 1000 : undefined, 1),
      st ? `${f(st.perProxyMs.p50 / 1000, 1)} / ${f(st.perProxyMs.p99 / 1000, 1)}` : dash,
      f(st?.cpCpuSeconds, 1),
      f(st ? st.bytes / 2 ** 20 : undefined, 0),
      st ? `${f(st.client.maxWorkerBusyPct)} (${st.client.workers} workers)` : dash,
      m ? `${mib(m.idleRssBytes)} → ${mib(m.loadedRssBytes)}` : dash,
      kib(m?.rssPerProxyBytes),
      kib(m?.heapPerProxyBytes),
      // Where the RSS per proxy is (docs/benchmarks.md, "SotW at 10,000"); older runs: –.
      m?.nativeRestPerProxyBytes !== undefined
        ? `${f(m.heapCommittedPerProxyBytes! / 1000, 1)} / ${f(m.nativeRestPerProxyBytes / 1000, 1)}`
        : dash,
      st?.majorGcs !== undefined ? `${st.majorGcs} / ${c?.majorGcs ?? dash}` : dash,
      expected?.length ? String(Math.max(...expected)) : dash,
      c ? `${f(c.fanoutMs.p50)} / ${f(c.fanoutMs.p99)}` : dash,
      c ? `${f(c.endToEndMs.p50)} / ${f(c.endToEndMs.p99)}` : dash,
      f(c?.cpCpuMsPerChange.p50, 1),
      churn ? `${churn.complete}/${churn.flips}, ${f(churn.endToEndMs.p99)}` : dash,
      s.agreement ? (s.agreement.agree && s.agreement.countsMatch ? 'yes' : '**no**') : dash,
      f(s.backgroundCpuCores, 2),
    ]);
  });
  return [row(header), rule(header.length), ...rows].join('\n');
}

function targetsTable(list: Dated[]): string {
  const rows: string[] = [];
  const status = (ok: boolean | undefined) =>
    ok === undefined ? 'not measured' : ok ? 'met' : '**missed**';
  for (const { run, value: s } of list) {
    const tag = `${scopeOf(s)}, ${s.mode}, ${transportOf(run)}`;
    // Timings on a shared machine: what else ran says how far to trust them.
    const bg =
      s.backgroundCpuCores !== undefined && s.backgroundCpuCores >= 0.5
        ? `; other work used ${f(s.backgroundCpuCores, 2)} of the 2 cores`
        : '';
    if (s.plan.includes('declared')) {
      const all = s.storm?.configured === s.proxies ? s.storm.allConfiguredMs : undefined;
      rows.push(
        row([
          `All ${s.proxies.toLocaleString('en')} configured (${tag})`,
          '≤ 10 s',
          all === undefined
            ? `${s.storm?.configured ?? 0} configured`
            : `${f(all / 1000, 1)} s (${f(s.storm?.cpCpuSeconds, 1)} s of control-plane CPU)${bg}`,
          status(all === undefined ? false : all <= 10_000),
        ]),
      );
      const p99 = s.changes?.endToEndMs.p99;
      rows.push(
        row([
          `One endpoint change, write → every proxy that holds it, p99 (${tag})`,
          '≤ 500 ms',
          `${f(p99)} ms (fan-out p99 ${f(s.changes?.fanoutMs.p99)} ms)${bg}`,
          status(p99 === undefined ? undefined : p99 <= 500),
        ]),
      );
    } else {
      const ok = s.agreement ? s.agreement.agree && s.agreement.countsMatch : undefined;
      rows.push(
        row([
          `Finishes, every proxy agreeing (${tag})`,
          'yes',
          s.agreement
            ? `${s.storm?.configured}/${s.proxies} configured, agree: ${ok ? 'yes' : 'no'}${s.errors.length ? `; ${s.errors.length} errors` : ''}`
            : `did not finish: ${s.errors[0] ?? ''}`,
          status(ok ?? false),
        ]),
      );
    }
    const rss = s.memory?.rssPerProxyBytes;
    rows.push(
      row([
        `RSS per proxy at ${s.proxies.toLocaleString('en')} (${tag})`,
        '≤ 40 KiB',
        `${kib(rss)} KiB`,
        status(rss === undefined ? undefined : rss <= 40 * 1024),
      ]),
    );
    if (s.heapBreakdown) {
      // Per stream and per proxy; the snapshot and scopes are shared (per proxy by division).
      const own =
        (s.heapBreakdown.byCategory['lucid-mesh streams'] ?? 0) +
        (s.heapBreakdown.byCategory['lucid-mesh proxy config'] ?? 0);
      rows.push(
        row([
          `lucid-mesh's own state per proxy (heap snapshot, ${tag})`,
          '< 5 KiB',
          `${kib(own)} KiB`,
          status(own < 5 * 1024),
        ]),
      );
    }
  }
  const header = ['Target (issue 16, its "W7")', 'Goal', 'Measured', 'Status'];
  return [row(header), rule(4), ...rows].join('\n');
}

function breakdownTable(d: Dated, top = 30): string {
  const b = d.value.heapBreakdown!;
  const cats = Object.entries(b.byCategory).sort((x, y) => y[1] - x[1]);
  return [
    `**${scopeOf(d.value)}, ${d.value.mode}** (\`${basename(d.file)}\`, K = ${b.proxies.toLocaleString('en')}): ${b.totalBytesPerProxy.toLocaleString('en')} B per proxy in all (V8 heap and the native memory V8's snapshot reports, such as nghttp2's); by part: ${cats.map(([c, n]) => `${c} ${n.toLocaleString('en')} B`).join(', ')}; owners under 16 B each: ${b.restBytesPerProxy} B.`,
    '',
    row(['Owner . edge', 'Part', 'B / proxy', 'Owners / proxy']),
    rule(4),
    ...b.entries
      .slice(0, top)
      .map((e) =>
        row([
          `\`${e.label.replace(/\|/g, '\\|')}\``,
          e.category,
          String(e.bytesPerProxy),
          String(e.objectsPerProxy),
        ]),
      ),
  ].join('\n');
}

/** Every W9 session, oldest first: what each fix changed (before/after), with its commit. */
function historyTable(runs: Array<{ run: RunResult; file: string }>): string {
  const header = [
    'Run',
    'Commit',
    'Scope',
    'Mode',
    'Transport',
    'All configured s',
    'Storm CP CPU s',
    'RSS / proxy KiB',
    'lucid-mesh state / proxy KiB',
    'End to end p99 ms',
    'Background cores',
  ];
  const rows: string[] = [];
  for (const { run, file } of runs) {
    for (const s of run.sessions) {
      if (!s.covers.includes('W9') || s.peer || s.proxies < 10_000) continue;
      const own = s.heapBreakdown
        ? (s.heapBreakdown.byCategory['lucid-mesh streams'] ?? 0) +
          (s.heapBreakdown.byCategory['lucid-mesh proxy config'] ?? 0)
        : undefined;
      rows.push(
        row([
          `\`${basename(file)}\`${s.profiles.length ? ' (profiled)' : ''}`,
          `${run.machine.commit}${run.machine.dirty ? '+' : ''}`,
          scopeOf(s),
          s.mode,
          transportOf(run),
          s.storm?.configured === s.proxies ? f(s.storm.allConfiguredMs / 1000, 1) : dash,
          f(s.storm?.cpCpuSeconds, 1),
          kib(s.memory?.rssPerProxyBytes),
          kib(own),
          f(s.changes?.endToEndMs.p99),
          f(s.backgroundCpuCores, 2),
        ]),
      );
    }
  }
  return [row(header), rule(header.length), ...rows].join('\n');
}

/** Markdown for RESULTS.md, or '' when no W9 session was run. */
export function scaleSection(runs: Array<{ run: RunResult; file: string }>): string {
  const list = latestW9(runs);
  if (list.length === 0) return '';
  const parts = [
    '## 10,000 proxies on one instance (W9 = issue 16’s “W7”)',
    '',
    '`--workload W9` (not in the default set; bench/scale.ts). The issue calls it W7; the bench’s W7 (traffic) and W8 (soak) were taken, so it is W9 here (and the issue’s “W8”, the 10,000-service catalog, is W10). 1,000 services × 10 instances × 10,000 simulated sidecars, one control plane, the load client in 4 worker processes on the same 2 cores. Two sessions: **declared** — every service declares 10 upstreams (the next 10 services, so 1,000 distinct scopes of 10) and the control plane runs `--scope declared`: a sidecar receives 10 clusters, 10 assignments and its scope’s virtual hosts, and an endpoint flip reaches the 100 sidecars whose service declares it; **all** — every sidecar receives the whole mesh (1,000 clusters). Storm, memory with 0 and 10,000 proxies, 20 sequential flips (after 2 warm-up flips), churn at 10 flips/s for 20 s; “agree” = every proxy of a service holds the same content of every type, with the expected resource counts.',
    '',
    targetsTable(list),
    '',
    sessionsTable(list),
    '',
    'Every 10,000-proxy session in bench/runs/, oldest first (what each fix changed; docs/benchmarks.md, “10,000 proxies (W9)”, says which):',
    '',
    historyTable(runs),
  ];
  const withHeap = list.filter((d) => d.value.heapBreakdown);
  if (withHeap.length > 0) {
    parts.push(
      '',
      '### The control plane’s memory per proxy, by owner',
      '',
      '`--heap-snapshot` (bench/heap-breakdown.ts): a V8 heap snapshot of the control-plane process with K proxies connected (after the storm) and one after the load client has left; each node’s self size is charged to the top of its single-retainer chain (an object that dominates it), labelled with that owner’s constructor and the first edge below it (a shared object by the first named owner up its retainers, or by the closure or module variable holding it: `<var ownBlockDigests>`; a WeakMap’s value by the map’s holder, not its key’s); the difference between the two snapshots, divided by K. Parts: “lucid-mesh streams” (the ADS streams, their subscriptions and version maps, the per-stream status and recent pushes, the store’s watch of each) and “lucid-mesh proxy config” (the proxy’s own resources — inbound listener, local app cluster — encoded, the encoder’s entries for them, and its view) are lucid-mesh’s state per proxy, the target’s subject (runs before 2026-11-30 10:00 filed the watches and the encoder’s per-proxy entries as shared, and the module caches keyed by a proxy — its own block, a copy of its resources’ bytes in SotW — under “other”); “lucid-mesh snapshot, scopes and model” is shared (per scope or per mesh) and only divided by K here; “grpc-js and HTTP/2” the call, stream and session objects and nghttp2’s native memory. With K proxies in one snapshot and none in the other, what the model churned between the two (flips, churn) lands in “other” and “snapshot”, divided by K.',
    );
    for (const d of withHeap) parts.push('', breakdownTable(d));
  }
  return parts.join('\n');
}
