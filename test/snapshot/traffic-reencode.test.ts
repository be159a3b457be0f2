// A traffic entry change re-encodes only the resources it touches, and re-translates only the
// services whose mesh part changed (the store's encode counters and translation cache).
import { describe, expect, it } from 'vitest';
import { parseCatalog } from '../../src/catalog/schema.js';
import { DEFAULT_MESH_SETTINGS } from '../../src/mesh/types.js';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { parseTrafficDocument } from '../../src/traffic/schema.js';
import { translateProxy } from '../../src/translate/index.js';

const SERVICES = 20;

function catalog() {
  return parseCatalog({
    services: Array.from({ length: SERVICES }, (_, i) => ({
      name: `svc-${i}`,
      instances: [
        { id: `svc-${i}-a`, address: '10.0.0.1', port: 8080, sidecarPort: 15006, tags: ['v1'] },
        { id: `svc-${i}-b`, address: '10.0.0.2', port: 8080, sidecarPort: 15006, tags: ['v2'] },
      ],
    })),
  });
}

/** A resolver with two subsets and a router on every service; `timeout` for svc-3's router. */
function traffic(timeout = '1s', v2Tag = 'v2') {
  return parseTrafficDocument(
    Array.from({ length: SERVICES }, (_, i) => [
      {
        Kind: 'service-resolver',
        Name: `svc-${i}`,
        Subsets: {
          v1: { Filter: '"v1" in Service.Tags' },
          v2: { Filter: i === 5 ? `"${v2Tag}" in Service.Tags` : '"v2" in Service.Tags' },
        },
      },
      {
        Kind: 'service-router',
        Name: `svc-${i}`,
        Routes: [
          {
            Match: { HTTP: { PathPrefix: '/admin' } },
            Destination: { ServiceSubset: 'v2', RequestTimeout: i === 3 ? timeout : '1s' },
          },
        ],
      },
    ]).flat(),
  );
}

function storeWith(): SnapshotStore {
  const store = new SnapshotStore({ logger: silentLogger, debounceMs: 0, maxDebounceMs: 0 });
  store.setTraffic(traffic());
  store.setCatalog(catalog());
  store.flush();
  return store;
}

describe('traffic changes re-encode only what they touch', () => {
  it('a router edit re-encodes the one route configuration and translates one service', () => {
    const store = storeWith();
    const before = store.encoder.counters.encoded;
    const translated = store.counters.servicesTranslated;
    store.setTraffic(traffic('2s'));
    store.flush();
    expect(store.encoder.counters.encoded - before).toBe(1);
    expect(store.counters.servicesTranslated - translated).toBe(1);
    expect(
      store.snapshot?.mesh.services.find((s) => s.name === 'svc-3')?.routes[0]?.timeoutMs,
    ).toBe(2000);
    store.close();
  });

  it('a subset filter edit re-encodes that subset’s endpoints only', () => {
    const store = storeWith();
    const before = store.encoder.counters.encoded;
    const version = store.snapshot!.version;
    store.setTraffic(traffic('1s', 'v1'));
    store.flush();
    // svc-5~v2 now selects the v1-tagged instance: its ClusterLoadAssignment changes, nothing else.
    expect(store.encoder.counters.encoded - before).toBe(1);
    expect(store.snapshot!.version).not.toBe(version);
    store.close();
  });

  it('re-applying equal traffic configuration re-encodes nothing', () => {
    const store = storeWith();
    const version = store.snapshot!.version;
    const before = store.encoder.counters.encoded;
    store.setTraffic(traffic());
    store.flush();
    expect(store.encoder.counters.encoded - before).toBe(0);
    expect(store.snapshot!.version).toBe(version);
    store.close();
  });

  it('a router edit does not re-translate the proxies whose part of the mesh is unchanged', () => {
    let translated = 0;
    const store = new SnapshotStore({
      logger: silentLogger,
      debounceMs: 0,
      maxDebounceMs: 0,
      translateProxy: (mesh, proxy) => {
        translated++;
        return translateProxy(mesh, proxy);
      },
    });
    store.setTraffic(traffic());
    store.setCatalog(catalog());
    store.flush();
    for (let i = 0; i < SERVICES; i++) {
      store.watch({ nodeId: `svc-${i}-a`, service: `svc-${i}`, outboundPort: 15001 }, () => {});
    }
    expect(translated).toBe(SERVICES);
    store.setTraffic(traffic('2s'));
    store.flush();
    // svc-3's router changed: only its proxy's mesh part (its service) is new; its own
    // resources are checked by content and found unchanged, so nothing is re-encoded.
    expect(translated).toBeLessThanOrEqual(SERVICES + 1);
    store.close();
  });

  it('with tracing on, an endpoint change still translates only its service', () => {
    const store = new SnapshotStore({
      logger: silentLogger,
      debounceMs: 0,
      maxDebounceMs: 0,
      settings: {
        ...DEFAULT_MESH_SETTINGS,
        tracing: { collector: { host: '127.0.0.1', port: 4317 }, samplingPercent: 100 },
      },
    });
    store.setTraffic(traffic());
    store.setCatalog(catalog());
    store.flush();
    const tracing = store.snapshot!.mesh.observability?.tracing;
    expect(tracing?.collector.port).toBe(4317);
    const translated = store.counters.servicesTranslated;
    const flipped = catalog();
    const svc7 = flipped.services.find((s) => s.name === 'svc-7')!;
    store.setCatalog({
      ...flipped,
      services: flipped.services.map((s) =>
        s === svc7 ? { ...s, instances: s.instances.slice(0, 1) } : s,
      ),
    });
    store.flush();
    // The mesh keeps its equal tracing object, so the translation patches the last build.
    expect(store.snapshot!.mesh.observability?.tracing).toBe(tracing);
    expect(store.counters.servicesTranslated - translated).toBe(1);
    store.close();
  });
});
