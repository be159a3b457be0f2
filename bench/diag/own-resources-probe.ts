// The W9 declared storm's store side in one process: 10,000 proxies (1,000 services × 10
// instances, 10 declared upstreams each, --scope declared) watched one after the other, as a
// storm brings them (one instance of each service in turn), and each proxy's own resources'
// first SotW or delta entries made, as its first responses would. No network, no streams: the
// translation, versions, sibling templates and encodes a storm pays per proxy, on their own.
//
//   npx tsx bench/diag/own-resources-probe.ts [proxies] [sotw|delta]
//   PROBE_PROFILE=own.cpuprofile npx tsx bench/diag/own-resources-probe.ts   (profiled)
import { IncrementalCatalogParser } from '../../src/catalog/incremental-parse.js';
import { DEFAULT_MESH_SETTINGS } from '../../src/mesh/types.js';
import { RESOURCE_KINDS } from '../../src/protos/envoy.js';
import { siblingCounters } from '../../src/snapshot/sibling-encoding.js';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { GeneratedCatalog } from '../catalog.js';
import { declareUpstreams } from '../scale.js';
import { startProbeProfile } from '../probe-profile.js';

const proxies = Number(process.argv[2] ?? 10_000);
const mode = process.argv[3] === 'sotw' ? 'sotw' : 'delta';
const catalog = new GeneratedCatalog({ services: 1000, instances: 10 }, '/dev/null');
declareUpstreams(catalog.services, 10);
catalog.refresh();
const store = new SnapshotStore({
  logger: createLogger('silent'),
  debounceMs: 0,
  settings: { ...DEFAULT_MESH_SETTINGS, scope: 'declared' },
});
store.setCatalog(new IncrementalCatalogParser().parse(catalog.text(), 'catalog.json'));

const stopProfile = await startProbeProfile();
let ownEntries = 0;
let bytes = 0;
const cpu = process.cpuUsage();
const started = performance.now();
for (const p of catalog.proxies(proxies)) {
  // As the bench's sidecars say who they are (outbound port 15001, the default DNS port).
  const proxy = { nodeId: p.nodeId, service: p.service, outboundPort: 15001, dnsPort: 15053 };
  store.watch(proxy, (view) => {
    for (const kind of RESOURCE_KINDS) {
      for (const r of view.all(kind)) {
        if (view.snapshot.shared[kind].get(r.name) === r) continue; // shared: made at the build
        ownEntries++;
        bytes += (mode === 'delta' ? r.deltaEntry : r.sotwEntry).length;
      }
    }
  });
}
const used = process.cpuUsage(cpu);
console.log(
  `${proxies} proxies, ${mode}: ${((used.user + used.system) / 1000).toFixed(0)} ms CPU ` +
    `(${(performance.now() - started).toFixed(0)} ms wall), ${ownEntries} own entries, ` +
    `${(bytes / 2 ** 20).toFixed(1)} MiB; from a sibling ${siblingCounters.reused} ` +
    `(of its pieces ${siblingCounters.pieces}), encoded as templates ${siblingCounters.encoded}`,
);
await stopProfile();
