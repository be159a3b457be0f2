// What a traffic edit that changes no service's part costs the store (issue 16): watchers
// visited, services translated, resources encoded, build + fan-out ms. 1,000 services with
// one instance and 2 declared upstreams each, every 10th with service-defaults UpstreamConfig
// Overrides, 1,000 sidecars watched. Each edit is read the way the traffic file source reads
// an edited file (parseTrafficTextByEntries with the last config):
//   router: a router's RequestTimeout of a service without overrides (the services with
//           overrides must keep their objects: before bc6342c each was new on every edit);
//   none:   an entry of a service not in the catalog (no service changes: before 56e30d0
//           scope all visited every watcher).
// No network, no streams.
//
//   npx tsx bench/diag/stable-identity-probe.ts [router|none] [all|declared] [edits]
import { parseCatalog } from '../../src/catalog/schema.js';
import { DEFAULT_MESH_SETTINGS } from '../../src/mesh/types.js';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { parseTrafficTextByEntries } from '../../src/traffic/traffic-file.js';

const mode = process.argv[2] ?? 'router';
if (mode !== 'router' && mode !== 'none') {
  throw new Error(`mode: expected router or none, got ${JSON.stringify(mode)}`);
}
const scope = process.argv[3] ?? 'declared';
if (scope !== 'all' && scope !== 'declared') {
  throw new Error(`scope: expected all or declared, got ${JSON.stringify(scope)}`);
}
const EDITS = Number(process.argv[4] ?? 20);
const SERVICES = 1000;

const name = (i: number) => `svc-${String(i % SERVICES).padStart(4, '0')}`;
const catalog = parseCatalog({
  services: Array.from({ length: SERVICES }, (_, i) => ({
    name: name(i),
    instances: [{ id: `${name(i)}-a`, address: '10.0.0.1', port: 8080, sidecarPort: 15006 }],
    upstreams: [name(i + 1), name(i + 2)],
  })),
});

/** The traffic file at edit `v`. */
function text(v: number): string {
  const out: string[] = [];
  for (let i = 0; i < SERVICES; i += 10) {
    out.push(
      `- Kind: service-defaults\n  Name: ${name(i)}\n  UpstreamConfig:\n` +
        `    Overrides:\n      - { Name: ${name(i + 1)}, ConnectTimeoutMs: 1000 }\n`,
    );
  }
  out.push(
    `- Kind: service-router\n  Name: ${mode === 'none' ? 'not-in-catalog' : name(5)}\n` +
      `  Routes:\n    - Match: { HTTP: { PathPrefix: /admin } }\n` +
      `      Destination: { RequestTimeout: ${1000 + v}ms }\n`,
  );
  return out.join('');
}

const store = new SnapshotStore({
  logger: silentLogger,
  debounceMs: 0,
  maxDebounceMs: 0,
  settings: { ...DEFAULT_MESH_SETTINGS, scope },
});
let traffic = parseTrafficTextByEntries(text(0), 'traffic.yaml');
store.setTraffic(traffic);
store.setCatalog(catalog);
store.flush();
for (let i = 0; i < SERVICES; i++) {
  store.watch({ nodeId: `${name(i)}-a`, service: name(i), outboundPort: 15001 }, () => {});
}
const counters = { ...store.counters };
const encoded = store.encoder.counters.encoded;
const ms: number[] = [];
for (let k = 1; k <= EDITS; k++) {
  traffic = parseTrafficTextByEntries(text(k), 'traffic.yaml', traffic);
  const started = performance.now();
  store.setTraffic(traffic);
  store.flush();
  ms.push(performance.now() - started);
  // Lets a sliced fan-out pass finish before the next edit.
  await new Promise((resolve) => setImmediate(resolve));
}
ms.sort((a, b) => a - b);
const perEdit = (n: number) => n / EDITS;
console.log(
  JSON.stringify({
    mode,
    scope,
    edits: EDITS,
    watchersVisited: perEdit(store.counters.watchersVisited - counters.watchersVisited),
    servicesTranslated: perEdit(store.counters.servicesTranslated - counters.servicesTranslated),
    encoded: perEdit(store.encoder.counters.encoded - encoded),
    buildAndFanoutMsMedian: Number(ms[EDITS >> 1]!.toFixed(1)),
  }),
);
store.close();
