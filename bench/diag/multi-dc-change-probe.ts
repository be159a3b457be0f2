// What one endpoint change costs the store in a W9-like mesh of two datacenters (1,000 services
// × 10 instances, half of each service's in dc2; 10 declared upstreams each; two mesh
// gateways, proxy-defaults MeshGateway local; every 10th service fails over to the next one),
// every instance's sidecar and both gateways watched (10,002 proxies): watchers the fan-out visited and the
// build + fan-out time. The changes go round: a dc1 instance, a dc2 instance, an instance of a
// failover target, each flipping its health. No network, no streams.
//
//   npx tsx bench/diag/multi-dc-change-probe.ts [changes]
import type { Catalog } from '../../src/catalog/model.js';
import { parseCatalog } from '../../src/catalog/schema.js';
import { DEFAULT_MESH_SETTINGS } from '../../src/mesh/types.js';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { parseTrafficTextByEntries } from '../../src/traffic/traffic-file.js';

const changes = Number(process.argv[2] ?? 12);
const SERVICES = 1000;
const INSTANCES = 10;
const UPSTREAMS = 10;
const name = (i: number) => `svc-${i % SERVICES}`;
/** Instance ids whose health is critical now. */
const critical = new Set<string>();

function catalog(): Catalog {
  return parseCatalog({
    services: Array.from({ length: SERVICES }, (_, i) => ({
      name: name(i),
      upstreams: Array.from({ length: UPSTREAMS }, (_, k) => name(i + 1 + k)),
      instances: Array.from({ length: INSTANCES }, (_, k) => {
        const id = `${name(i)}-${k}`;
        return {
          id,
          address: `10.${k}.${Math.floor(i / 250)}.${i % 250}`,
          port: 8080,
          sidecarPort: 15006,
          health: critical.has(id) ? 'critical' : 'passing',
          ...(k % 2 === 1 ? { datacenter: 'dc2' } : {}),
        };
      }),
    })),
    gateways: [
      { id: 'gw-dc1', address: '10.250.0.1', port: 8443, wanAddress: '192.0.2.1', wanPort: 443 },
      {
        id: 'gw-dc2',
        datacenter: 'dc2',
        address: '10.250.0.2',
        port: 8443,
        wanAddress: '192.0.2.2',
        wanPort: 443,
      },
    ],
  });
}

let traffic = '- Kind: proxy-defaults\n  Name: global\n  MeshGateway: { Mode: local }\n';
for (let i = 0; i < SERVICES; i += 10) {
  traffic +=
    `- Kind: service-resolver\n  Name: ${name(i)}\n` +
    `  Failover:\n    '*': { Targets: [{ Service: ${name(i + 1)} }] }\n`;
}

const store = new SnapshotStore({
  logger: createLogger('silent'),
  debounceMs: 0,
  settings: { ...DEFAULT_MESH_SETTINGS, scope: 'declared' },
});
store.setTraffic(parseTrafficTextByEntries(traffic, 'traffic.yaml', undefined));
store.setCatalog(catalog());
store.flush();
for (let i = 0; i < SERVICES; i++) {
  for (let k = 0; k < INSTANCES; k++) {
    const proxy = { nodeId: `${name(i)}-${k}`, service: name(i), outboundPort: 15001 };
    store.watch(proxy, () => {});
  }
}
// The gateways' own proxies: visited on every change.
for (const nodeId of ['gw-dc1', 'gw-dc2']) {
  store.watch({ nodeId, service: 'mesh-gateway', outboundPort: 15001 }, () => {});
}
const notified = (): Promise<void> =>
  new Promise((resolve) => {
    const off = store.onNotified(() => {
      off();
      resolve();
    });
  });

const kinds = ['dc1 instance', 'dc2 instance', 'failover target'] as const;
const rows: Array<{ kind: string; visited: number; ms: number; meshMs: number; fanoutMs: number }> =
  [];
for (let n = 0; n < changes; n++) {
  const kind = kinds[n % kinds.length]!;
  // Services 5.., 7.., 11.. (a target of 10): a different one each round.
  const round = Math.floor(n / kinds.length);
  const id =
    kind === 'dc1 instance'
      ? `${name(5 + 20 * round)}-0`
      : kind === 'dc2 instance'
        ? `${name(7 + 20 * round)}-1`
        : `${name(11 + 20 * round)}-2`;
  if (critical.has(id)) critical.delete(id);
  else critical.add(id);
  const offered = catalog(); // the source's part, not timed
  const visits = store.counters.watchersVisited;
  const done = notified();
  const started = performance.now();
  store.setCatalog(offered);
  store.flush();
  await done;
  const ms = performance.now() - started;
  const b = store.lastBuild!;
  const meshMs = b.meshBuiltAt - b.comparedAt;
  const fanoutMs = performance.now() - (b.encodedAt - performance.timeOrigin);
  const visited = store.counters.watchersVisited - visits;
  rows.push({ kind, visited, ms, meshMs, fanoutMs });
  console.log(`${kind} ${id}: ${visited} watchers visited, ${ms.toFixed(1)} ms build + fan-out`);
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (const kind of kinds) {
  const of = rows.filter((r) => r.kind === kind);
  console.log(
    `${kind}: visited ${of.map((r) => r.visited).join('/')}, ` +
      `build + fan-out median ${median(of.map((r) => r.ms)).toFixed(1)} ms ` +
      `(mesh build ${median(of.map((r) => r.meshMs)).toFixed(1)}, ` +
      `fan-out ${median(of.map((r) => r.fanoutMs)).toFixed(1)})`,
  );
}
store.close();
