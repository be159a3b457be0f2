// A .cpuprofile (bench --profile writes them to bench/out/profiles/<run>/) summed up: self time
// by file and by function, inclusive time by function, the callers of a function, and busy /
// GC / idle per second. What the W9 storm notes in docs/benchmarks.md were read from.
//
//   node bench/diag/profile-summary.mjs FILE.cpuprofile [ROWS]          files, functions, inclusive
//   node bench/diag/profile-summary.mjs FILE.cpuprofile --callers REGEX [DEPTH]
//   node bench/diag/profile-summary.mjs FILE.cpuprofile --timeline [MS]
//
// Times are the profiler's wall-clock samples: on a loaded machine a function is charged for
// the time its thread was descheduled too, so compare shares, not milliseconds, across runs.
import { readFileSync } from 'node:fs';

const [file, ...args] = process.argv.slice(2);
if (!file) {
  process.stderr.write(
    'usage: profile-summary.mjs FILE.cpuprofile [ROWS | --callers REGEX [DEPTH] | --timeline [MS]]\n',
  );
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const shortUrl = (url) =>
  (url || '(native)')
    .replace(/^file:\/\/.*?\/(bench\/out\/js\/)?(?=src\/|bench\/)/, '')
    .replace(/.*node_modules\//, 'nm/');
const label = (id) => {
  const { functionName, url, lineNumber } = byId.get(id).callFrame;
  return `${functionName || '(anonymous)'} ${shortUrl(url)}:${lineNumber + 1}`;
};
/** Each sample with the time after it (timeDeltas[i] is the time before sample i). */
function* samples() {
  let t = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i];
    const dt = profile.timeDeltas[i + 1] ?? 0;
    if (dt > 0) yield { id: profile.samples[i], t, dt };
  }
}
const ms = (us) => (us / 1000).toFixed(0).padStart(7);
const top = (map, n) => [...map].sort((a, b) => b[1] - a[1]).slice(0, n);

if (args[0] === '--callers') {
  const re = new RegExp(args[1] ?? '.');
  const depth = Number(args[2] ?? 4);
  const chains = new Map();
  let total = 0;
  for (const { id, dt } of samples()) {
    if (!re.test(label(id))) continue;
    total += dt;
    const chain = [];
    for (let p = parent.get(id), d = 0; p !== undefined && d < depth; p = parent.get(p), d++)
      chain.push(label(p));
    const key = chain.join(' < ');
    chains.set(key, (chains.get(key) ?? 0) + dt);
  }
  console.log(`${ms(total)} ms self in functions matching ${re}`);
  for (const [k, v] of top(chains, 30)) console.log(`${ms(v)}  ${k}`);
} else if (args[0] === '--timeline') {
  const bucket = Number(args[1] ?? 1000) * 1000;
  const rows = [];
  for (const { id, t, dt } of samples()) {
    const fn = byId.get(id).callFrame.functionName;
    const row = (rows[Math.floor(t / bucket)] ??= { busy: 0, gc: 0, idle: 0 });
    if (fn === '(idle)') row.idle += dt;
    else if (fn === '(garbage collector)') row.gc += dt;
    else row.busy += dt;
  }
  console.log('   at      busy       gc     idle  (ms)');
  rows.forEach(
    (r, i) =>
      r && console.log(`${String(i).padStart(5)} ${ms(r.busy)}  ${ms(r.gc)}  ${ms(r.idle)}`),
  );
} else {
  const rows = Number(args[0] ?? 30);
  const self = new Map();
  const byFile = new Map();
  const inclusive = new Map();
  let total = 0;
  let idle = 0;
  for (const { id, dt } of samples()) {
    const { functionName, url } = byId.get(id).callFrame;
    if (functionName === '(idle)') {
      idle += dt;
      continue;
    }
    total += dt;
    self.set(label(id), (self.get(label(id)) ?? 0) + dt);
    byFile.set(shortUrl(url), (byFile.get(shortUrl(url)) ?? 0) + dt);
    const seen = new Set();
    for (let p = id; p !== undefined; p = parent.get(p)) {
      const l = label(p);
      if (seen.has(l)) continue; // recursion: once per sample
      seen.add(l);
      inclusive.set(l, (inclusive.get(l) ?? 0) + dt);
    }
  }
  const pct = (us) => `${((us / total) * 100).toFixed(1).padStart(5)} %`;
  console.log(`${ms(total)} ms on the thread, ${ms(idle)} ms idle`);
  for (const [title, map] of [
    ['self by file', byFile],
    ['self by function', self],
    ['inclusive', inclusive],
  ]) {
    console.log(`--- ${title}`);
    for (const [k, v] of top(map, rows)) console.log(`${ms(v)} ${pct(v)}  ${k}`);
  }
}
