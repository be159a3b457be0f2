#!/usr/bin/env node
// Renders the generated tables of docs/reliability.md from the results the reliability tests
// and the soak bench write (test-results/reliability/*.json, gitignored; test/support/
// reliability.ts and bench/soak.ts). Results are merged by id into docs/reliability-results.json
// (committed: a table keeps the rows of tests not run this time, each naming its own run), and
// every table between `<!-- reliability:<section>:begin -->` and `<!-- reliability:<section>:end -->`
// is rewritten; the prose around the markers is left as it is.
//
//   npm run reliability:report [-- --results DIR] [--check]
//
// --check: exit 1 if the doc or the merged results would change, or a row of ROWS has no
// result yet (nothing written).
import { existsSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as prettier from 'prettier';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const DOC = join(root, 'docs/reliability.md');
const MERGED = join(root, 'docs/reliability-results.json');
const SECTIONS = ['hostile', 'outages', 'components', 'documents', 'soak'];
// Every row of the doc, by section, in the order the tables show them: the test named writes
// test-results/reliability/<id>.json once its assertions pass (the soak's come from the
// bench). A row without a result fails `--check`; a result whose id is not here is refused.
const ROWS = {
  hostile: {
    'hostile-snapshot-dump': 'test/admin/snapshot-dump.test.ts',
    'hostile-proxy-isolation': 'test/snapshot/proxy-isolation.test.ts',
    'hostile-max-event-clients': 'test/xds/bounded-maps.test.ts',
    'hostile-max-streams': 'test/xds/limits.test.ts',
    'hostile-stream-rate': 'test/xds/limits.test.ts',
    'hostile-stream-storm': 'test/xds/limits.test.ts',
    'hostile-unauthenticated-flood': 'test/xds/admission-auth.test.ts',
    'hostile-max-request-bytes': 'test/xds/limits.test.ts',
    'hostile-tight-loop': 'test/xds/limits.test.ts',
    'hostile-unread-responses': 'test/xds/limits.test.ts',
    'hostile-node-ids': 'test/xds/bounded-maps.test.ts',
    'hostile-type-urls': 'test/xds/bounded-maps.test.ts',
    'hostile-eds-names': 'test/xds/bounded-maps.test.ts',
    'hostile-delta-names': 'test/xds/bounded-maps.test.ts',
    'hostile-sse-slow-reader': 'test/telemetry/sse-bounds.test.ts',
    'hostile-decoder-fuzz': 'test/xds/fuzz-decode.test.ts',
    'hostile-live-fuzz': 'test/xds/fuzz-live.test.ts',
  },
  outages: {
    'outage-control-plane-kill': 'test/e2e/outage-control-plane.test.ts',
    'outage-data-dir-read-only': 'test/e2e/outage-control-plane.test.ts',
    'outage-data-dir-full': 'test/e2e/outage-control-plane.test.ts',
  },
  components: {
    'outage-consul': 'test/e2e/outage-consul.test.ts',
    'outage-etcd': 'test/e2e/outage-etcd.test.ts',
  },
  documents: {
    'documents-catalog-values': 'test/fuzz/documents.test.ts',
    'documents-policy-values': 'test/fuzz/documents.test.ts',
    'documents-catalog-text': 'test/fuzz/documents.test.ts',
    'documents-policy-text': 'test/fuzz/documents.test.ts',
    'documents-traffic-values': 'test/traffic/property.test.ts',
    'documents-catalog-file': 'test/fuzz/documents.test.ts',
    'documents-policy-file': 'test/fuzz/documents.test.ts',
    'documents-traffic-file': 'test/fuzz/documents.test.ts',
    'documents-consul-entries': 'test/fuzz/consul-responses.test.ts',
    'documents-consul-faults': 'test/fuzz/consul-responses.test.ts',
    'documents-consul-huge-and-index': 'test/fuzz/consul-responses.test.ts',
    'documents-etcd-values': 'test/fuzz/etcd-values.test.ts',
    'documents-etcd-real': 'test/fuzz/etcd-values.test.ts',
  },
  soak: {
    'soak-sotw': 'npm run bench -- --workload soak --mode sotw',
    'soak-delta': 'npm run bench -- --workload soak --mode delta',
  },
};
const sectionOf = new Map(
  Object.entries(ROWS).flatMap(([section, rows]) => Object.keys(rows).map((id) => [id, section])),
);
const REQUIRED = ['id', 'section', 'fault', 'behaviour', 'figures', 'test', 'run'];

function fail(message) {
  console.error(`reliability-report: ${message}`);
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    results: { type: 'string', default: join(root, 'test-results/reliability') },
    'bench-out': { type: 'string', default: join(root, 'bench/runs') },
    check: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  console.log(
    'usage: npm run reliability:report [-- --results DIR] [--bench-out DIR] [--check]\n' +
      '  --results DIR  where the tests and the soak bench wrote their JSON results\n' +
      '                 (default test-results/reliability)\n' +
      '  --bench-out DIR  bench run files to take the soak rows from (default bench/runs)\n' +
      '  --check        exit 1 if docs/reliability.md would change or a row has no result;\n' +
      '                 write nothing',
  );
  process.exit(0);
}

/** One result file, checked: a bad file is named, not skipped. */
function readResult(file) {
  let r;
  try {
    r = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    fail(`${file}: not JSON (${err.message})`);
  }
  for (const key of REQUIRED) if (r?.[key] === undefined) fail(`${file}: ${key}: missing`);
  if (!SECTIONS.includes(r.section))
    fail(
      `${file}: section: expected one of ${SECTIONS.join(' | ')}, got ${JSON.stringify(r.section)}`,
    );
  if (typeof r.run.date !== 'string' || typeof r.run.commit !== 'string')
    fail(`${file}: run: expected {date, commit}`);
  if (sectionOf.get(r.id) !== r.section)
    fail(
      `${file}: id: ${JSON.stringify(r.id)} is not a row of the ${r.section} table ` +
        '(add it to ROWS in scripts/reliability-report.mjs)',
    );
  return r;
}

const mib = (b) => (b / 2 ** 20).toFixed(1);
const n = (x) => Number(x).toLocaleString('en');

/** Least-squares slope of y (bytes) over t (seconds), KiB per minute (as bench/soak-figures.ts). */
function slope(points) {
  if (points.length < 2) return NaN;
  const mt = points.reduce((a, [t]) => a + t, 0) / points.length;
  const my = points.reduce((a, [, y]) => a + y, 0) / points.length;
  let num = 0;
  let den = 0;
  for (const [t, y] of points) {
    num += (t - mt) * (y - my);
    den += (t - mt) ** 2;
  }
  return den === 0 ? NaN : Math.round(((num / den) * 60 * 10) / 1024) / 10;
}

/**
 * A soak of a bench run file (bench/runs/*.json) as a result row. Besides the run's own series,
 * the samples with ≥ 95 % of the proxies connected (bench/soak-figures.ts): on a loaded machine
 * the control plane counts far fewer streams at times and its memory follows that count.
 */
function soakResult(run, file, r) {
  const first = r.samples[0];
  const last = r.samples[r.samples.length - 1];
  const full = r.samples.filter((s) => s.t >= r.warmupSeconds && s.connected >= 0.95 * r.proxies);
  const loads = r.samples.flatMap((s) => (s.load1 === undefined ? [] : [s.load1]));
  const fewest = Math.min(...r.samples.map((s) => s.connected));
  const fullText =
    full.length < 2
      ? `fewer than 2 samples after the warm-up had ≥ 95 % of the proxies connected`
      : `with ≥ 95 % connected (${full.length} samples, ${Math.round(full[0].t)}–${Math.round(full.at(-1).t)} s): ` +
        `heap ${mib(full[0].heapUsed)} → ${mib(full.at(-1).heapUsed)} MiB ` +
        `(${slope(full.map((s) => [s.t, s.heapUsed]))} KiB/min), RSS ${mib(full[0].rss)} → ${mib(full.at(-1).rss)} MiB ` +
        `(${slope(full.map((s) => [s.t, s.rss]))} KiB/min)`;
  const b = r.breakdown;
  return {
    id: `soak-${r.mode}`,
    section: 'soak',
    test: `npm run bench -- --workload soak --mode ${r.mode} --soak-seconds ${r.seconds} (${file})`,
    fault:
      `${n(r.proxies)} simulated proxies (${r.mode}) reconnecting continuously for ${r.seconds / 60} min ` +
      `(each stream closed by its client after a random ${r.lifeMs[0] / 1000}–${r.lifeMs[1] / 1000} s and reopened), ` +
      `${r.flipsPerSecond} endpoint flips/s, ${r.services} × ${r.instances} catalog`,
    behaviour:
      'Serves every reopened stream from scratch: each gets its full config again. Once the reconnects stop, every ' +
      `proxy holds the same config and the control plane counts exactly ${n(r.proxies)} streams.`,
    figures:
      `${n(r.reconnects)} reconnects, ${n(r.reconfigured)} configured again; ${r.streamErrors} stream errors, ` +
      `${r.nacks} NACKs; converged: ${r.converged ? 'yes' : 'no'}. CP heap after GC ${mib(r.heap.start)} → ` +
      `${mib(r.heap.end)} MiB (max ${mib(r.heap.max)}), slope ${r.heap.slopeKiBPerMin} KiB/min after a ` +
      `${r.warmupSeconds} s warm-up. RSS ${mib(r.rss.start)} → ${mib(r.rss.end)} MiB (max ${mib(r.rss.max)}), slope ` +
      `${r.rss.slopeKiBPerMin} KiB/min` +
      (b
        ? ` (V8's committed heap ${b.heapTotal}, external ${b.external}, native rest ${b.native} KiB/min)`
        : '') +
      `. The control plane counted as few as ${n(fewest)} streams; ${fullText}.` +
      (loads.length
        ? ` Machine load (1 min) ${(loads.reduce((a, x) => a + x, 0) / loads.length).toFixed(1)} mean, ${Math.max(...loads).toFixed(1)} max on ${run.machine?.nproc ?? '?'} cores.`
        : ''),
    passed: r.converged && r.errors.length === 0,
    ...(first && last
      ? {
          memoryBefore: { heapBytes: first.heapUsed, rssBytes: first.rss },
          memoryAfter: { heapBytes: last.heapUsed, rssBytes: last.rss },
        }
      : {}),
    run: {
      // When it ended: a run file is written then.
      date: run.finishedAt ?? run.startedAt,
      commit: `${run.machine?.commit ?? 'unknown'}${run.machine?.dirty ? ' (with uncommitted changes)' : ''}`,
      node: run.machine?.node,
      cpus: run.machine?.nproc,
    },
  };
}

/** A passing result beats a failed one; otherwise the newer run wins. */
function better(candidate, old) {
  if (!old) return true;
  if ((candidate.passed === false) !== (old.passed === false)) return old.passed === false;
  return old.run.date <= candidate.run.date;
}

const merged = existsSync(MERGED) ? JSON.parse(readFileSync(MERGED, 'utf8')) : { results: {} };
const candidates = [];
if (existsSync(values.results)) {
  for (const name of readdirSync(values.results)
    .filter((f) => f.endsWith('.json'))
    .sort()) {
    const r = readResult(join(values.results, name));
    // Soak rows come from the bench's run files (below), not from older soak result files.
    if (r.section !== 'soak') candidates.push(r);
  }
}
if (existsSync(values['bench-out'])) {
  for (const name of readdirSync(values['bench-out'])
    .filter((f) => f.endsWith('.json'))
    .sort()) {
    let run;
    try {
      run = JSON.parse(readFileSync(join(values['bench-out'], name), 'utf8'));
    } catch (err) {
      fail(`${join(values['bench-out'], name)}: not JSON (${err.message})`);
    }
    for (const r of run.soak ?? [])
      candidates.push(soakResult(run, relative(root, join(values['bench-out'], name)), r));
  }
}
let fresh = 0;
for (const r of candidates) {
  if (better(r, merged.results[r.id])) {
    merged.results[r.id] = r;
    fresh++;
  }
}

const cell = (text) =>
  String(text)
    .replace(/\|/g, '\\|')
    .replace(/\s*\n\s*/g, ' ');
const runOf = (r) => `${r.run.date.slice(0, 16).replace('T', ' ')} UTC, \`${r.run.commit}\``;

// Results of rows that are no longer in ROWS go (a removed or renamed test).
for (const id of Object.keys(merged.results)) if (!sectionOf.has(id)) delete merged.results[id];
const missing = [...sectionOf.keys()].filter((id) => merged.results[id] === undefined);

function table(section) {
  const head = ['Fault or input', 'What the control plane does', 'Figures', 'Run', 'Test'];
  const lines = [
    `| ${head.join(' | ')} |`,
    `| ${head.map(() => '---').join(' | ')} |`,
    ...Object.entries(ROWS[section]).map(([id, test]) => {
      const r = merged.results[id];
      if (!r) return `| \`${id}\`: no result yet | | | | \`${test}\` |`;
      return `| ${[cell(r.fault), cell(r.behaviour), cell(r.figures), runOf(r), `\`${r.test}\``].join(' | ')} |`;
    }),
  ];
  return lines.join('\n');
}

const doc = readFileSync(DOC, 'utf8');
let out = doc;
for (const section of SECTIONS) {
  const re = new RegExp(
    `(<!-- reliability:${section}:begin[^>]*-->\\n)[\\s\\S]*?(\\n<!-- reliability:${section}:end -->)`,
  );
  if (!re.test(out)) continue;
  out = out.replace(re, (_, begin, end) => `${begin}\n${table(section)}\n${end}`);
}
// Formatted as `prettier --check .` (npm run lint) wants it.
out = await prettier.format(out, { ...(await prettier.resolveConfig(DOC)), filepath: DOC });
const mergedText = await prettier.format(JSON.stringify(merged), {
  ...(await prettier.resolveConfig(MERGED)),
  filepath: MERGED,
});
const oldMerged = existsSync(MERGED) ? readFileSync(MERGED, 'utf8') : '';

const missingText = `rows without a result: ${missing
  .map((id) => `${id} (${ROWS[sectionOf.get(id)][id]})`)
  .join(', ')}`;
if (values.check) {
  const stale = out !== doc || mergedText !== oldMerged;
  console.log(
    stale ? 'docs/reliability.md is not up to date' : 'docs/reliability.md is up to date',
  );
  if (missing.length > 0) console.log(missingText);
  process.exit(stale || missing.length > 0 ? 1 : 0);
}
for (const [file, text] of [
  [MERGED, mergedText],
  [DOC, out],
]) {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}
console.log(
  `docs/reliability.md: ${Object.keys(merged.results).length} generated rows (${fresh} taken from this run's results)`,
);
if (missing.length > 0) console.error(`reliability-report: ${missingText}`);
