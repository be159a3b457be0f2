// Endpoints of a service that spans datacenters depend on where the caller is; the store
// still encodes them once per caller locality, not once per proxy.
import { describe, expect, it } from 'vitest';
import { parseCatalog } from '../../src/catalog/schema.js';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import type { ProxyView } from '../../src/snapshot/proxy-view.js';
import { decodeMessage, TYPE_URLS } from '../../src/protos/envoy.js';

function catalog(apiAddress: string) {
  return parseCatalog({
    services: [
      {
        name: 'api',
        instances: [
          { id: 'api-1', address: apiAddress, port: 80, sidecarPort: 15006 },
          { id: 'api-2', address: '10.0.1.1', port: 80, sidecarPort: 15006, datacenter: 'dc2' },
        ],
      },
    ],
  });
}

/** The hostnames of an assignment by priority, as the proxy receives it. */
function priorities(view: ProxyView): string[][] {
  const r = view.get('endpoints', 'api')!;
  const cla = decodeMessage(TYPE_URLS.endpoints, r.value) as {
    endpoints: { priority?: number; lbEndpoints: { endpoint: { hostname: string } }[] }[];
  };
  const out: string[][] = [];
  for (const e of cla.endpoints) {
    (out[e.priority ?? 0] ??= []).push(...e.lbEndpoints.map((l) => l.endpoint.hostname));
  }
  return out;
}

describe('locality groups', () => {
  it('100 proxies in 2 datacenters: each sees its own datacenter first; one change costs 2 encodes', () => {
    const store = new SnapshotStore({ logger: silentLogger, debounceMs: 0, maxDebounceMs: 0 });
    store.setCatalog(catalog('10.0.0.1'));
    store.flush();
    const views = new Map<string, ProxyView>();
    for (let i = 0; i < 100; i++) {
      const datacenter = i % 2 === 0 ? 'dc1' : 'dc2';
      const proxy = {
        nodeId: `web-${i}`,
        service: 'web',
        outboundPort: 15001,
        locality: { datacenter },
      };
      store.watch(proxy, (view) => views.set(proxy.nodeId, view));
    }
    expect(priorities(views.get('web-0')!)).toEqual([['api-1'], ['api-2']]);
    expect(priorities(views.get('web-1')!)).toEqual([['api-2'], ['api-1']]);

    const before = store.encoder.counters.encoded;
    store.setCatalog(catalog('10.0.0.9'));
    store.flush();
    expect(store.encoder.counters.encoded - before).toBe(2);
    // Every proxy of a datacenter holds the very same encoded resource.
    const dc1 = new Set(
      [...views]
        .filter(([n]) => Number(n.slice(4)) % 2 === 0)
        .map(([, v]) => v.get('endpoints', 'api')),
    );
    const dc2 = new Set(
      [...views]
        .filter(([n]) => Number(n.slice(4)) % 2 === 1)
        .map(([, v]) => v.get('endpoints', 'api')),
    );
    expect([dc1.size, dc2.size]).toEqual([1, 1]);
    expect([...dc1][0]).not.toBe([...dc2][0]);
    store.close();
  });

  it('a mesh in one locality keeps one snapshot for everyone', () => {
    const store = new SnapshotStore({ logger: silentLogger, debounceMs: 0, maxDebounceMs: 0 });
    store.setCatalog(
      parseCatalog({
        services: [{ name: 'api', instances: [{ id: 'api-1', address: '10.0.0.1', port: 80 }] }],
      }),
    );
    store.flush();
    const a = store.viewFor({
      nodeId: 'a',
      service: 'web',
      outboundPort: 15001,
      locality: { datacenter: 'dc9', zone: 'z' },
    });
    expect(a.snapshot).toBe(store.snapshot);
    store.close();
  });
});
