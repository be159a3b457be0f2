// W1's per-sidecar work on the control plane's thread, without the network, in a fresh process:
// 100 proxies (one instance of each of 100 services × 3) watched one after the other as a storm
// brings them, each with its SotW requests decoded (a first request with its Node, then one per
// type) and its own resources' first SotW entries made. Run after `warm` rounds of the codec
// warm-up (src/xds/codec-warmup.ts), to see how much of W1's cost is code run for the first
// times (interpreted, then baseline-compiled) rather than work a sidecar needs.
//
//   npx tsx bench/diag/w1-warm-probe.ts [warm-rounds] [proxies]
import protobuf from 'protobufjs';
import { IncrementalCatalogParser } from '../../src/catalog/incremental-parse.js';
import { DEFAULT_MESH_SETTINGS } from '../../src/mesh/types.js';
import { RESOURCE_KINDS, TYPE_URLS } from '../../src/protos/envoy.js';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { warmCodecs } from '../../src/xds/codec-warmup.js';
import { decodeSotwRequest } from '../../src/xds/sotw-request.js';
import { requestedNames } from '../../src/xds/requested-names.js';
import { GeneratedCatalog } from '../catalog.js';

const rounds = Number(process.argv[2] ?? 1);
const proxies = Number(process.argv[3] ?? 100);
const catalog = new GeneratedCatalog({ services: 100, instances: 3 }, '/dev/null');
catalog.refresh();
const store = new SnapshotStore({
  logger: createLogger('silent'),
  debounceMs: 0,
  settings: DEFAULT_MESH_SETTINGS,
});
store.setCatalog(new IncrementalCatalogParser().parse(catalog.text(), 'catalog.json'));
store.flush();
const mesh = store.mesh!;

const warmStarted = performance.now();
for (let i = 0; i < rounds; i++) warmCodecs(mesh);
const warmMs = performance.now() - warmStarted;

/** A SotW request as Envoy's first: its Node (id, cluster, metadata) and a type URL. */
function request(id: string, service: string, typeUrl: string, withNode: boolean): Buffer {
  const w = protobuf.Writer.create();
  if (withNode) {
    w.uint32((2 << 3) | 2).fork();
    w.uint32((1 << 3) | 2).string(id);
    w.uint32((2 << 3) | 2).string(service);
    w.ldelim();
  }
  w.uint32((4 << 3) | 2).string(typeUrl);
  return Buffer.from(w.finish());
}

let bytes = 0;
const cpu = process.cpuUsage();
const started = performance.now();
for (const p of catalog.proxies(proxies)) {
  const kinds = ['clusters', 'endpoints', 'listeners', 'routes'] as const;
  kinds.forEach((kind, i) => {
    const req = decodeSotwRequest(request(p.nodeId, p.service, TYPE_URLS[kind], i === 0));
    requestedNames(req, undefined);
  });
  const proxy = { nodeId: p.nodeId, service: p.service, outboundPort: 15001, dnsPort: 15053 };
  store.watch(proxy, (view) => {
    for (const kind of RESOURCE_KINDS) {
      for (const r of view.all(kind)) {
        if (view.snapshot.shared[kind].get(r.name) === r) continue;
        bytes += r.sotwEntry.length;
      }
    }
  });
}
const used = process.cpuUsage(cpu);
console.log(
  `warm-up ×${rounds}: ${warmMs.toFixed(1)} ms; then ${proxies} sidecars: ` +
    `${((used.user + used.system) / 1000).toFixed(1)} ms CPU, ` +
    `${(performance.now() - started).toFixed(1)} ms wall, ${(bytes / proxies).toFixed(0)} B own SotW entries a sidecar`,
);
