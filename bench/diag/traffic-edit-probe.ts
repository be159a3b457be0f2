// What one traffic edit of one service costs the store at W9 declared (1,000 services × 10
// instances, 10 declared upstreams each, 10,000 proxies watched): watchers the fan-out visited,
// scoped snapshots made, views handed, and the build + fan-out time. Each edit changes one
// service's entry (a router's RequestTimeout, or a splitter's weights), read the way the
// traffic file source reads an edited file (parseTrafficTextByEntries with the last config).
// ~100 proxies hold the edited service in their scope, 10 are its own instances' sidecars.
// No network, no streams.
//
//   npx tsx bench/diag/traffic-edit-probe.ts [router|splitter] [proxies] [edits] [declared|all]
// (scope `all`: every proxy holds every route, so every watcher is visited: the regression
// guard for unscoped meshes.)
//   PROBE_PROFILE=edit.cpuprofile npx tsx ...   (the edits profiled)
import { IncrementalCatalogParser } from '../../src/catalog/incremental-parse.js';
import { DEFAULT_MESH_SETTINGS } from '../../src/mesh/types.js';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { parseTrafficTextByEntries } from '../../src/traffic/traffic-file.js';
import type { TrafficConfig } from '../../src/traffic/types.js';
import { GeneratedCatalog, serviceName } from '../catalog.js';
import { declareUpstreams } from '../scale.js';
import { startProbeProfile } from '../probe-profile.js';

const mode = process.argv[2] ?? 'router';
if (mode !== 'router' && mode !== 'splitter') {
  throw new Error(`mode: expected router or splitter, got ${JSON.stringify(mode)}`);
}
const proxies = Number(process.argv[3] ?? 10_000);
const edits = Number(process.argv[4] ?? 20);
const scope = process.argv[5] ?? 'declared';
if (scope !== 'declared' && scope !== 'all') {
  throw new Error(`scope: expected declared or all, got ${JSON.stringify(scope)}`);
}
const SERVICES = 1000;
/** Every EDITED-th service has an entry (100 entries), and the edits go round them. */
const EDITED = 10;

const catalog = new GeneratedCatalog({ services: SERVICES, instances: 10 }, '/dev/null');
declareUpstreams(catalog.services, 10);
catalog.refresh();

/** The traffic file with entry `k`'s value set to `value` (others at their first value). */
function trafficText(edit: Map<number, number>): string {
  const entries: string[] = [];
  for (let s = 0; s < SERVICES; s += EDITED) {
    const name = serviceName(s);
    const v = edit.get(s) ?? 0;
    if (mode === 'router') {
      entries.push(
        `- Kind: service-router\n  Name: ${name}\n  Routes:\n` +
          `    - Match: { HTTP: { PathPrefix: /admin } }\n` +
          `      Destination: { RequestTimeout: ${1000 + v}ms, NumRetries: 2 }\n`,
      );
    } else {
      // Splits between the service and the next one (reachable from the start: the edits
      // change weights only).
      const other = serviceName((s + 1) % SERVICES);
      entries.push(
        `- Kind: service-splitter\n  Name: ${name}\n  Splits:\n` +
          `    - { Weight: ${90 - (v % 50)}, Service: ${name} }\n` +
          `    - { Weight: ${10 + (v % 50)}, Service: ${other} }\n`,
      );
    }
  }
  return entries.join('');
}

const parser = new IncrementalCatalogParser();
const store = new SnapshotStore({
  logger: createLogger('silent'),
  debounceMs: 0,
  settings: { ...DEFAULT_MESH_SETTINGS, scope },
});
const values = new Map<number, number>();
let traffic: TrafficConfig = parseTrafficTextByEntries(trafficText(values), 'traffic.yaml');
store.setTraffic(traffic);
store.setCatalog(parser.parse(catalog.text(), 'catalog.json'));

let takes = 0;
catalog.proxies(proxies).forEach((p) => {
  const proxy = { nodeId: p.nodeId, service: p.service, outboundPort: 15001, dnsPort: 15053 };
  store.watch(proxy, () => takes++);
});

const notified = (): Promise<void> =>
  new Promise((resolve) => {
    const off = store.onNotified(() => {
      off();
      resolve();
    });
  });

const visits: number[] = [];
const times: number[] = [];
const stopProfile = await startProbeProfile();
const cpuBefore = process.cpuUsage();
for (let k = 0; k < edits; k++) {
  const s = ((k * 37) % (SERVICES / EDITED)) * EDITED; // spread over the entries
  values.set(s, (values.get(s) ?? 0) + 1);
  // The source's part, not timed: the edited file read as the file source reads it.
  traffic = parseTrafficTextByEntries(trafficText(values), 'traffic.yaml', traffic);
  const scopesBefore = store.counters.scopesBuilt;
  const visitsBefore = store.counters.watchersVisited;
  takes = 0;
  const done = notified();
  const started = performance.now();
  store.setTraffic(traffic);
  store.flush();
  const built = store.lastBuild!.encodedAt - performance.timeOrigin;
  await done;
  const ms = performance.now() - started;
  const visited = store.counters.watchersVisited - visitsBefore;
  visits.push(visited);
  times.push(ms);
  console.log(
    `${mode} edit ${serviceName(s)}: ${visited} watchers visited, ` +
      `${store.counters.scopesBuilt - scopesBefore} scoped snapshots made, ${takes} views handed, ` +
      `${ms.toFixed(1)} ms (build ${(built - started).toFixed(1)}, fan-out ` +
      `${(performance.now() - built).toFixed(1)})`,
  );
  await new Promise((r) => setImmediate(r));
}
const cpu = process.cpuUsage(cpuBefore);
await stopProfile();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(
  `${mode} (scope ${scope}): ${edits} edits, watchers visited median ${median(visits)}, ` +
    `build + fan-out median ${median(times).toFixed(1)} ms, max ${Math.max(...times).toFixed(1)} ms, ` +
    `CPU ${((cpu.user + cpu.system) / 1000 / edits).toFixed(1)} ms an edit (parse included)`,
);
store.close();
