// Build time of one change on a large catalog, in-process (no proxies, no file watch): the
// store's build (catalog compare, mesh, translation, encoding, version) after one instance of
// a 10,000-service catalog flips. For profiling W10's "build per change" (run with
// `node --cpu-prof`); the bench's W10 measures the same in the control plane's own process.
//   npx tsx bench/build-probe.ts [services] [instances] [changes]
import { IncrementalCatalogParser } from '../src/catalog/incremental-parse.js';
import { SnapshotStore } from '../src/snapshot/store.js';
import { createLogger } from '../src/telemetry/logger.js';
import { GeneratedCatalog } from './catalog.js';
import { summarize } from './stats.js';
import { startProbeProfile } from './probe-profile.js';

const [services = 10_000, instances = 3, changes = 40] = process.argv
  .slice(2)
  .map((a) => Number(a));
const catalog = new GeneratedCatalog({ services, instances }, '/dev/null');
const parser = new IncrementalCatalogParser();
const store = new SnapshotStore({ logger: createLogger('silent'), debounceMs: 0 });
// One watcher, as a connected sidecar would be (the store builds views for watchers only).
const first = catalog.proxies(1)[0]!;
store.watch({ nodeId: first.nodeId, service: first.service, outboundPort: 15001 }, () => {});
let t = performance.now();
store.setCatalog(parser.parse(catalog.text(), 'catalog.json'));
console.log(`initial build ${(performance.now() - t).toFixed(0)} ms`);
// PROBE_PROFILE=file.cpuprofile: a CPU profile of the changes only (not the initial build).
const stopProfile = await startProbeProfile(200);
const builds: number[] = [];
/** CPU time of each build: on a loaded machine, closer to what a quiet one would take. */
const buildCpu: number[] = [];
const parses: number[] = [];
const phases = {
  compare: [] as number[],
  mesh: [] as number[],
  translate: [] as number[],
  encode: [] as number[],
};
for (const flip of catalog.planFlips(changes)) {
  catalog.apply(flip);
  t = performance.now();
  const parsed = parser.parse(catalog.text(), 'catalog.json');
  parses.push(performance.now() - t);
  store.setCatalog(parsed);
  t = performance.now();
  const cpu = process.cpuUsage();
  store.flush();
  builds.push(performance.now() - t);
  const used = process.cpuUsage(cpu);
  buildCpu.push((used.user + used.system) / 1000);
  const b = store.lastBuild!;
  phases.compare.push(b.comparedAt - b.startedAt);
  phases.mesh.push(b.meshBuiltAt - b.comparedAt);
  phases.translate.push(b.translatedAt - b.meshBuiltAt);
  phases.encode.push(b.encodedAt - b.translatedAt);
}
await stopProfile();
const skip = Math.min(5, Math.floor(changes / 4));
console.log('parse ms', summarize(parses.slice(skip)));
console.log('build ms', summarize(builds.slice(skip)));
console.log('build CPU ms', summarize(buildCpu.slice(skip)));
for (const [phase, list] of Object.entries(phases)) {
  const s = summarize(list.slice(skip));
  console.log(`  ${phase} p50 ${s.p50} p99 ${s.p99}`);
}
store.close();
