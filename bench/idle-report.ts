// RESULTS.md's idle RSS section (issue 16): every `--workload idle` run in order (the history is
// the before/after), then the latest run in detail: samples, heap spaces, modules, attribution.
import type { IdleCatalog, IdleRssResult, IdleRssSample, RunResult } from './types.js';

const TARGET_MIB = 60;
const CATALOGS: IdleCatalog[] = ['empty', 'example', '1000x5'];

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const f1 = (x: number) => x.toFixed(1);
const row = (cells: string[]) => `| ${cells.join(' | ')} |`;
const rule = (n: number) => row(Array.from({ length: n }, () => '---'));

function of(r: IdleRssResult, catalog: IdleCatalog, key: keyof IdleRssSample): number {
  return median(r.samples.filter((s) => s.catalog === catalog).map((s) => s[key] as number));
}

export function idleRuns(
  runs: Array<{ run: RunResult; file: string }>,
): Array<{ run: RunResult; file: string; value: IdleRssResult }> {
  return runs.flatMap(({ run, file }) => (run.idle ?? []).map((value) => ({ run, file, value })));
}

/** `median (min–max)` of one catalog's samples. */
function spread(r: IdleRssResult, catalog: IdleCatalog, key: keyof IdleRssSample): string {
  const xs = r.samples.filter((s) => s.catalog === catalog).map((s) => s[key] as number);
  if (xs.length < 2) return f1(of(r, catalog, key));
  return `${f1(median(xs))} (${f1(Math.min(...xs))}–${f1(Math.max(...xs))})`;
}

function knobs(r: IdleRssResult): string {
  const e = Object.entries(r.env);
  return e.length ? e.map(([k, v]) => `${k}=${v}`).join(' ') : 'defaults';
}

export function idleSection(runs: Array<{ run: RunResult; file: string }>): string | undefined {
  const all = idleRuns(runs);
  const latest = all.at(-1);
  if (!latest) return undefined;
  const r = latest.value;
  const lines = [
    '## Idle RSS (issue 16)',
    '',
    `\`--workload idle\` (not in the default set; bench/idle-rss.ts): the package's bin, \`lucid-mesh serve --catalog F\` with the secure defaults (mTLS, token auth, CA in a fresh data dir) and no proxy connected, measured ${r.settleSeconds} s after \`/ready\`: RSS, RssAnon and RssFile from /proc/PID/status, V8's heap from /metrics (read after /proc). Catalogs: empty, examples/catalog.yaml, and 1,000 services × 5 instances (JSON). ${r.rounds} rounds, interleaved (catalogs in turn). Target: ≤ ${TARGET_MIB} MiB.`,
    '',
    '### Every run (before → after)',
    '',
    row([
      'Run',
      'Commit',
      'Environment',
      'RSS empty',
      'RSS example',
      'RSS 1000×5',
      'Anon / file (example)',
      'Heap used / committed (example)',
      'Modules (source)',
    ]),
    rule(9),
    ...all.map(({ run, value: v }) => {
      const m = v.modules.find((x) => x.catalog === 'example');
      return row([
        run.id,
        `${run.machine.commit}${run.machine.dirty ? '+' : ''}`,
        knobs(v),
        spread(v, 'empty', 'rssMiB'),
        spread(v, 'example', 'rssMiB'),
        spread(v, '1000x5', 'rssMiB'),
        `${f1(of(v, 'example', 'anonMiB'))} / ${f1(of(v, 'example', 'fileMiB'))}`,
        `${f1(of(v, 'example', 'heapUsedMiB'))} / ${f1(of(v, 'example', 'heapCommittedMiB'))}`,
        m ? `${m.count} (${(m.sourceKiB / 1024).toFixed(1)} MiB)` : '',
      ]);
    }),
    '',
    `MiB, median (min–max) over the rounds; \`+\` after a commit: the run had uncommitted changes. Latest, example catalog: ${f1(of(r, 'example', 'rssMiB'))} MiB, ${of(r, 'example', 'rssMiB') <= TARGET_MIB ? 'within' : 'above'} the ${TARGET_MIB} MiB target.`,
    '',
    `### Latest run (${latest.run.id}), per sample`,
    '',
    row([
      'Catalog',
      'Round',
      'Ready ms',
      'RSS',
      'Anon',
      'File',
      'Heap used',
      'Committed',
      'External',
    ]),
    rule(9),
    ...r.samples.map((s) =>
      row([
        s.catalog,
        String(s.round),
        String(s.readyMs),
        f1(s.rssMiB),
        f1(s.anonMiB),
        f1(s.fileMiB),
        f1(s.heapUsedMiB),
        f1(s.heapCommittedMiB),
        f1(s.externalMiB),
      ]),
    ),
  ];
  const sample = r.samples.find((s) => s.catalog === 'example');
  if (sample) {
    lines.push(
      '',
      `V8 heap spaces, example catalog, round ${sample.round} (MiB used / committed): ` +
        sample.spaces.map((s) => `${s.space} ${f1(s.usedMiB)} / ${f1(s.committedMiB)}`).join('; ') +
        '.',
    );
  }
  const mods = r.modules.find((m) => m.catalog === 'example');
  if (mods) {
    lines.push(
      '',
      `Modules loaded (example catalog; the same files for ${CATALOGS.filter((c) => r.modules.find((m) => m.catalog === c)?.count === mods.count).join(', ')}): ${mods.count} files, ${(mods.sourceKiB / 1024).toFixed(2)} MiB of source. Largest packages: ` +
        mods.packages
          .slice(0, 15)
          .map((p) => `${p.name} ${p.count} (${p.sourceKiB.toFixed(0)} KiB)`)
          .join(', ') +
        '.',
    );
  }
  if (r.attribution.length) {
    lines.push(
      '',
      'Attribution: fresh `node` processes importing a growing prefix of the compiled program, measured 3 s after the imports (no catalog, no servers started):',
      '',
      row(['Step', 'RSS', 'Δ RSS', 'Anon', 'File', 'Heap used', 'Committed']),
      rule(7),
      ...r.attribution.map((a, i) =>
        row([
          a.label,
          f1(a.rssMiB),
          i ? f1(a.rssMiB - r.attribution[i - 1]!.rssMiB) : '',
          f1(a.anonMiB),
          f1(a.fileMiB),
          f1(a.heapUsedMiB),
          f1(a.heapCommittedMiB),
        ]),
      ),
    );
  }
  if (r.errors.length) lines.push('', ...r.errors.map((e) => `- error: ${e}`));
  return lines.join('\n');
}
