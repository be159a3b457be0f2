// A change costs only what it touches (issue 16, W9): a scope none of whose resources changed
// keeps its scoped snapshot (the same object and version), its proxies keep their views and
// are handed nothing; only the proxies whose scope or own resources changed get new ones.
import { describe, expect, it } from 'vitest';
import { parseCatalog } from '../../src/catalog/schema.js';
import { DEFAULT_MESH_SETTINGS } from '../../src/mesh/types.js';
import type { ProxyView } from '../../src/snapshot/proxy-view.js';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { silentLogger } from '../../src/telemetry/logger.js';

// 8 services, two scopes: s4, s5 call {s0, s1}; s6, s7 call {s2, s3}. s0..s3 call s4 and s5.
function catalog(s0Address = '10.0.0.1', s7Port = 80) {
  return parseCatalog({
    services: Array.from({ length: 8 }, (_, i) => ({
      name: `s${i}`,
      upstreams: i >= 6 ? ['s2', 's3'] : i >= 4 ? ['s0', 's1'] : ['s4', 's5'],
      instances: [1, 2].map((k) => ({
        id: `s${i}-${k}`,
        address: i === 0 && k === 1 ? s0Address : `10.0.${i}.${k}`,
        port: i === 7 && k === 1 ? s7Port : 80,
        sidecarPort: 15006,
      })),
    })),
  });
}

function scopedStore(first = catalog()) {
  const store = new SnapshotStore({
    logger: silentLogger,
    debounceMs: 0,
    maxDebounceMs: 0,
    settings: { ...DEFAULT_MESH_SETTINGS, scope: 'declared' },
  });
  store.setCatalog(first);
  store.flush();
  const views = new Map<string, ProxyView>();
  const handed = new Map<string, number>();
  for (let i = 4; i < 8; i++) {
    for (const k of [1, 2]) {
      const proxy = { nodeId: `s${i}-${k}`, service: `s${i}`, outboundPort: 15001 };
      store.watch(proxy, (view) => {
        views.set(proxy.nodeId, view);
        handed.set(proxy.nodeId, (handed.get(proxy.nodeId) ?? 0) + 1);
      });
    }
  }
  return { store, views, handed };
}

const calling = (prefix: string, views: Map<string, ProxyView>) =>
  [...views].filter(([node]) => /^s[45]-/.test(node) === (prefix === 's0'));

describe('scoped snapshots and views across changes', () => {
  it('an endpoint change leaves an unrelated scope its snapshot, its views and no push', () => {
    const { store, views, handed } = scopedStore();
    const before = new Map(views);
    const scopesBuilt = store.counters.scopesBuilt;
    const version = store.snapshot!.version;
    handed.clear();

    store.setCatalog(catalog('10.0.0.99')); // s0's endpoints: only the scope {s0, s1} holds them
    store.flush();
    expect(store.snapshot!.version).not.toBe(version);

    // The scope of s6/s7 (s2, s3): same snapshot and version, same views, nothing handed.
    for (const [node, view] of calling('s2', views)) {
      expect(view, node).toBe(before.get(node));
      expect(handed.get(node) ?? 0, node).toBe(0);
    }
    const keptView = calling('s2', views)[0]![1];
    // It belongs to the new build now (what responses from it record for convergence), and
    // the snapshot itself is as it was made: which build holds it is the store's membership.
    expect(keptView.ref).toBe(store.snapshot!.ref);
    expect(keptView.build).toBe(store.snapshot);
    expect(keptView.snapshot.ref).not.toBe(store.snapshot!.ref);
    expect(keptView.snapshot.mesh).not.toBe(store.snapshot!.mesh);
    expect(keptView.snapshot.ref.version).toBe(version);

    // The scope of s4/s5: one new snapshot shared by its 4 proxies, each handed one new view.
    const changed = calling('s0', views);
    expect(new Set(changed.map(([, v]) => v.snapshot)).size).toBe(1);
    for (const [node, view] of changed) {
      expect(view, node).not.toBe(before.get(node));
      expect(handed.get(node), node).toBe(1);
      expect([...view.diffFrom(before.get(node)!, 'endpoints').changed]).toEqual(['s0']);
    }
    expect(store.counters.scopesBuilt - scopesBuilt).toBe(1);
    store.close();
  });

  it("a change to one proxy's own resources hands only that proxy a new view, on the same snapshot", () => {
    const { store, views, handed } = scopedStore();
    const before = new Map(views);
    handed.clear();

    store.setCatalog(catalog(undefined, 8080)); // s7-1's port: its inbound side; no scope holds s7
    store.flush();

    expect(handed).toEqual(new Map([['s7-1', 1]]));
    const view = views.get('s7-1')!;
    expect(view).not.toBe(before.get('s7-1'));
    expect(view.snapshot).toBe(before.get('s7-1')!.snapshot);
    for (const [node, v] of views) if (node !== 's7-1') expect(v, node).toBe(before.get(node));
    store.close();
  });

  it('a kept snapshot has the version a replica built from the same catalog computes', () => {
    const { store, views } = scopedStore();
    store.setCatalog(catalog('10.0.0.99'));
    store.flush();
    store.setCatalog(catalog('10.0.0.98'));
    store.flush();

    const replica = scopedStore(catalog('10.0.0.98')); // started on the last catalog
    for (const [node, view] of views) {
      expect(view.version, node).toBe(replica.views.get(node)!.version);
    }
    expect(new Set([...views.values()].map((v) => v.version)).size).toBe(2);
    store.close();
    replica.store.close();
  });
});
