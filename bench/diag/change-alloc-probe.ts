// What one endpoint flip costs the store at W9 declared (1,000 services × 10 instances, 10
// declared upstreams each, 10,000 proxies watched): scoped snapshots made, views handed out
// (new objects and pushes), watchers the fan-out visited, and the bytes the new generation
// keeps until the next change.
// Old views are pinned across the change, so the heap's growth after a full GC is what the
// change made and kept (not what it replaced). No network, no streams.
//
//   npx tsx --expose-gc bench/diag/change-alloc-probe.ts [proxies] [changes]
//   PROBE_PROFILE=change.cpuprofile npx tsx --expose-gc ...   (the changes profiled)
import { PerformanceObserver, constants, type PerformanceEntry } from 'node:perf_hooks';
import { IncrementalCatalogParser } from '../../src/catalog/incremental-parse.js';
import { DEFAULT_MESH_SETTINGS } from '../../src/mesh/types.js';
import { RESOURCE_KINDS } from '../../src/protos/envoy.js';
import type { ProxyView } from '../../src/snapshot/proxy-view.js';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { GeneratedCatalog } from '../catalog.js';
import { declareUpstreams } from '../scale.js';
import { startProbeProfile } from '../probe-profile.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc (npx tsx --expose-gc ...)');
const proxies = Number(process.argv[2] ?? 10_000);
const changes = Number(process.argv[3] ?? 5);
const catalog = new GeneratedCatalog({ services: 1000, instances: 10 }, '/dev/null');
declareUpstreams(catalog.services, 10);
catalog.refresh();
const parser = new IncrementalCatalogParser();
const store = new SnapshotStore({
  logger: createLogger('silent'),
  debounceMs: 0,
  settings: { ...DEFAULT_MESH_SETTINGS, scope: 'declared' },
});
store.setCatalog(parser.parse(catalog.text(), 'catalog.json'));

const last: (ProxyView | undefined)[] = [];
let takes = 0;
let newViews = 0;
const snapshots = new Set<object>();
catalog.proxies(proxies).forEach((p, i) => {
  const proxy = { nodeId: p.nodeId, service: p.service, outboundPort: 15001, dnsPort: 15053 };
  store.watch(proxy, (view) => {
    takes++;
    const prev = last[i];
    if (view !== prev) newViews++;
    // As a stream does with each view it is handed (the diffs are memoized per snapshot).
    if (prev) for (const kind of RESOURCE_KINDS) view.diffFrom(prev, kind);
    snapshots.add(view.snapshot);
    last[i] = view;
  });
});

// Mark-compacts that began while a change was being applied (not the probe's own gc() calls).
let window: [number, number] = [0, -1];
let majors = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
    const inChange = e.startTime >= window[0] && e.startTime <= window[1];
    if (kind === constants.NODE_PERFORMANCE_GC_MAJOR && inChange) majors++;
  }
}).observe({ entryTypes: ['gc'] });

const notified = (): Promise<void> =>
  new Promise((resolve) => {
    const off = store.onNotified(() => {
      off();
      resolve();
    });
  });

const stopProfile = await startProbeProfile();
for (const flip of catalog.planFlips(changes)) {
  gc();
  const pinned = [...last]; // the old generation stays alive: growth = what the change kept
  const heapBefore = process.memoryUsage().heapUsed;
  const scopesBefore = store.counters.scopesBuilt;
  const visitsBefore = store.counters.watchersVisited;
  takes = newViews = majors = 0;
  snapshots.clear();
  catalog.apply(flip);
  const done = notified();
  const parsed = parser.parse(catalog.text(), 'catalog.json'); // the source's part, not timed
  const started = performance.now();
  store.setCatalog(parsed);
  store.flush();
  const built = store.lastBuild!.encodedAt - performance.timeOrigin;
  await done;
  const ms = performance.now() - started;
  const notifyMs = performance.now() - built;
  window = [started, started + ms];
  await new Promise((r) => setImmediate(r)); // the GC entries of the change are reported
  gc();
  const kept = process.memoryUsage().heapUsed - heapBefore;
  console.log(
    `flip ${flip.service}: ${store.counters.scopesBuilt - scopesBefore} scoped snapshots made, ` +
      `${snapshots.size} handed out, ${store.counters.watchersVisited - visitsBefore} ` +
      `watchers visited, ${newViews} new views, ${takes} views handed ` +
      `(pushes), kept ${(kept / 2 ** 20).toFixed(1)} MiB, ${ms.toFixed(0)} ms (build and ` +
      `fan-out; fan-out ${notifyMs.toFixed(0)} ms), ` +
      `${majors} mark-compacts`,
  );
  pinned.length = 0;
}
await stopProfile();
store.close();
