// RESULTS.md's large-catalog section (W10 = issue 16's "W8": 10,000 services × 3 instances):
// every W10 session in bench/runs/, oldest first, so a change's before and after sit together.
// The target is the build per change (M1) ≤ 20 ms p99.
import type { RunResult, SessionResult } from './types.js';
import type { Summary } from './stats.js';

interface Dated {
  readonly run: RunResult;
  readonly file: string;
  readonly value: SessionResult;
}

const row = (cells: string[]) => `| ${cells.join(' | ')} |`;
const dash = '–';
const f = (x: number | null | undefined, digits = 1): string =>
  x === undefined || x === null || !Number.isFinite(x) ? dash : x.toFixed(digits);
const pair = (s: Summary | undefined, digits = 1) =>
  s && s.n > 0 ? `${f(s.p50, digits)} / ${f(s.p99, digits)}` : dash;
const mib = (bytes: number | undefined) => f(bytes === undefined ? undefined : bytes / 2 ** 20);

/** Every W10 session (profiled ones left out: the profiler costs CPU), oldest first. */
export function w10Sessions(runs: Array<{ run: RunResult; file: string }>): Dated[] {
  const out: Dated[] = [];
  for (const { run, file } of runs) {
    for (const value of run.sessions) {
      if (!value.covers.includes('W10') || value.peer || value.profiles.length > 0) continue;
      out.push({ run, file, value });
    }
  }
  return out.sort((a, b) => a.run.startedAt.localeCompare(b.run.startedAt));
}

export function largeCatalogSection(runs: Array<{ run: RunResult; file: string }>): string {
  const list = w10Sessions(runs);
  if (list.length === 0) return '';
  const header = [
    'Run (UTC)',
    'Commit',
    'Mode',
    'K',
    'Build p50 / p99 ms (target p99 ≤ 20)',
    'Parse p50 / p99 ms',
    'Detect p50 / p99 ms',
    'Fan-out p50 / p99 ms',
    'CP CPU ms / change',
    'Storm s (configured)',
    'Model MiB (per service KiB)',
    'Idle RSS MiB (empty catalog)',
    'Churn 10/s end to end p99 ms',
    'Background cores',
  ];
  const rows = list.map(({ run, value: s }) => {
    const c = s.changes;
    const m = s.memory?.model;
    const st = s.storm;
    return row([
      run.startedAt.slice(0, 16).replace('T', ' '),
      `${run.machine.commit.slice(0, 7)}${run.machine.dirty ? '+' : ''}`,
      s.mode,
      String(s.proxies),
      pair(c?.buildMs),
      pair(c?.sourceMs, 0),
      pair(c?.detectMs, 0),
      pair(c?.fanoutMs, 0),
      f(c?.cpCpuMsPerChange.p50, 0),
      st
        ? `${st.configured === st.proxies ? f(st.allConfiguredMs / 1000) : dash} (${st.configured}/${st.proxies})`
        : dash,
      m ? `${mib(m.modelBytes)} (${f(m.modelBytesPerService / 1024, 2)})` : dash,
      s.memory ? `${mib(s.memory.idleRssBytes)} (${m ? mib(m.emptyRssBytes) : dash})` : dash,
      f(s.churn[0]?.endToEndMs.p99, 0),
      f(s.backgroundCpuCores, 2),
    ]);
  });
  return [
    '## Large catalog (W10 = issue 16’s “W8”)',
    'W10: 10,000 services × 3 instances (a 30,000-instance catalog file), K simulated sidecars (1,000 by default; `--proxies` lowers it: the build does not depend on K). ' +
      'Build = M1: the debounce firing → snapshot built (catalog compared with the last, mesh, translation, encoding, version); parse = catalog file written → the file source delivered the parsed catalog; detect = file written → snapshot built (includes the 100 ms debounce). ' +
      'Model = heap used + external of the control plane with the catalog loaded and no proxy, minus the same on an empty catalog (both after a full GC). ' +
      'Every W10 run in bench/runs/, oldest first: the runs before and after a change to the build sit together (bench/build-probe.ts measures the same build in-process, for profiling).',
    [row(header), row(header.map(() => '---')), ...rows].join('\n'),
  ].join('\n\n');
}
