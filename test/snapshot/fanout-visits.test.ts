// A change visits only the watchers it touches (issue 16, W9: every endpoint change visited all
// 10,000 watchers to hand 100 a view): the proxies of the changed service and those holding a
// scope that has it. Counted as an operator sees it (lucid_mesh_fanout_watchers_visited_total,
// the store's watchersVisited); what every watcher holds
// afterwards must be what the store would hand it now (nothing skipped that changed).
import { describe, expect, it } from 'vitest';
import { MemoryCaStore, openCa } from '../../src/ca/index.js';
import { parseCatalog } from '../../src/catalog/schema.js';
import { DEFAULT_MESH_SETTINGS } from '../../src/mesh/types.js';
import type { ProxyView } from '../../src/snapshot/proxy-view.js';
import type { SecretProvider } from '../../src/snapshot/secrets.js';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { CaSecretProvider } from '../../src/security/ca-secrets.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { Metrics } from '../../src/telemetry/metrics.js';
import { twoSidecarsEachAndAStray } from '../support/sidecar-views.js';
import { waitFor } from '../support/wait.js';

interface Shape {
  /** s0's first instance's address (an endpoint change of s0). */
  s0Address?: string;
  /** s7's first instance's port (s7-1's own inbound side). */
  s7Port?: number;
  /** s6's and s7's declared upstreams. */
  s6Upstreams?: string[];
  /** s3 has a third instance. */
  s3Third?: boolean;
}

// 8 services, three scopes: s0..s3 call {s4, s5}; s4, s5 call {s0, s1}; s6, s7 call {s2, s3}.
function catalog(shape: Shape = {}) {
  return parseCatalog({
    services: Array.from({ length: 8 }, (_, i) => ({
      name: `s${i}`,
      upstreams:
        i >= 6 ? (shape.s6Upstreams ?? ['s2', 's3']) : i >= 4 ? ['s0', 's1'] : ['s4', 's5'],
      instances: (i === 3 && shape.s3Third ? [1, 2, 3] : [1, 2]).map((k) => ({
        id: `s${i}-${k}`,
        address: i === 0 && k === 1 ? (shape.s0Address ?? '10.0.0.1') : `10.0.${i}.${k}`,
        port: i === 7 && k === 1 ? (shape.s7Port ?? 80) : 80,
        sidecarPort: 15006,
      })),
    })),
  });
}

function watched(first = catalog(), secrets?: SecretProvider) {
  const store = new SnapshotStore({
    logger: silentLogger,
    debounceMs: 0,
    maxDebounceMs: 0,
    settings: {
      ...DEFAULT_MESH_SETTINGS,
      scope: 'declared',
      ...(secrets ? { mtls: { trustDomain: 'lucid.internal', namespace: 'default' } } : {}),
    },
    ...(secrets ? { secrets } : {}),
  });
  store.setCatalog(first);
  store.flush();
  const proxies = twoSidecarsEachAndAStray();
  const views = new Map<string, ProxyView>();
  const handed = new Map<string, number>();
  let onTake: ((node: string) => void) | undefined;
  for (const proxy of proxies) {
    store.watch(proxy, (view) => {
      views.set(proxy.nodeId, view);
      handed.set(proxy.nodeId, (handed.get(proxy.nodeId) ?? 0) + 1);
      onTake?.(proxy.nodeId);
    });
  }
  /** Every watcher holds the view the store would hand it now. */
  const allCurrent = () => {
    for (const proxy of proxies) {
      expect(views.get(proxy.nodeId), proxy.nodeId).toBe(store.viewFor(proxy));
    }
  };
  const setOnTake = (f: typeof onTake) => (onTake = f);
  return { store, proxies, views, handed, allCurrent, setOnTake };
}

const visitsOf = (store: SnapshotStore, change: () => void): number => {
  const before = store.counters.watchersVisited;
  change();
  return store.counters.watchersVisited - before;
};

describe('the fan-out visits only the watchers a change touches', () => {
  it("an endpoint change visits the changed service's proxies and its scope's holders only", async () => {
    const { store, handed, allCurrent } = watched();
    const metrics = new Metrics({ store, streams: () => [] });
    const scrape = async () => {
      const text = await metrics.registry.metrics();
      return Number(/^lucid_mesh_fanout_watchers_visited_total (\d+)$/m.exec(text)?.[1]);
    };
    handed.clear();
    const before = await scrape();
    store.setCatalog(catalog({ s0Address: '10.0.0.99' }));
    store.flush();
    const visited = (await scrape()) - before;
    // s0-1, s0-2 (their own service), s4-*, s5-* (their scope holds s0), and the stray.
    expect(visited).toBe(2 + 4 + 1);
    // Handed a view: the holders of the scope {s0, s1}; s0's own resources did not change.
    expect([...handed.keys()].sort()).toEqual(['s4-1', 's4-2', 's5-1', 's5-2']);
    allCurrent();
    store.close();
  });

  it('with mTLS (identity and trust bundle secrets from the built-in CA) too', async () => {
    const ca = await openCa({ store: new MemoryCaStore(), env: {} });
    const { store, proxies, handed, allCurrent } = watched(
      catalog(),
      new CaSecretProvider(ca.leaves, silentLogger),
    );
    try {
      // Leaves are issued on first demand; each one issued rebuilds (every watcher visited).
      await waitFor(
        () => {
          store.flush();
          return proxies.every((p) => store.viewFor(p).get('secrets', 'default') !== undefined);
        },
        { what: 'every proxy with its identity' },
      );
      store.flush();
      allCurrent();
      handed.clear();
      const visited = visitsOf(store, () => {
        store.setCatalog(catalog({ s0Address: '10.0.0.99' }));
        store.flush();
      });
      // The same as without secrets: the secrets are the same objects, so the map is kept.
      expect(visited).toBe(2 + 4 + 1);
      expect([...handed.keys()].sort()).toEqual(['s4-1', 's4-2', 's5-1', 's5-2']);
      allCurrent();
    } finally {
      store.close();
      ca.stop();
    }
  });

  it('over a sequence of changes every watcher holds what the store would hand it', () => {
    const { store, views, allCurrent } = watched();
    const shapes: Shape[] = [
      { s0Address: '10.0.0.2' },
      { s0Address: '10.0.0.2', s7Port: 8080 },
      { s0Address: '10.0.0.2', s7Port: 8080, s3Third: true },
      // s6, s7 reach s1 too: their scope changes (a new key).
      { s0Address: '10.0.0.3', s7Port: 8080, s3Third: true, s6Upstreams: ['s1', 's2', 's3'] },
      { s0Address: '10.0.0.3', s6Upstreams: ['s1', 's2', 's3'] },
      {},
    ];
    let visited = 0;
    for (const shape of shapes) {
      visited += visitsOf(store, () => {
        store.setCatalog(catalog(shape));
        store.flush();
      });
      allCurrent();
    }
    expect(visited).toBeLessThan(shapes.length * 17);
    // And what they hold is what a replica started on the last catalog serves.
    const replica = watched(catalog({}));
    for (const [node, view] of views) {
      expect(view.version, node).toBe(replica.views.get(node)!.version);
    }
    store.close();
    replica.store.close();
  });

  it('a change during a pass still running also reaches what that pass had not', async () => {
    const { store, handed, setOnTake, allCurrent } = watched();
    let first = true;
    // The first view handed in the next pass takes longer than a slice (50 ms): the pass
    // lets I/O through before the next watcher, and a newer change arrives meanwhile.
    setOnTake(() => {
      if (!first) return;
      first = false;
      const until = performance.now() + 70;
      while (performance.now() < until);
    });
    handed.clear();
    store.setCatalog(catalog({ s0Address: '10.0.0.99' }));
    store.flush();
    setOnTake(undefined);
    // The pass stopped after one of the four holders of {s0, s1}.
    expect(handed.size).toBe(1);
    const notified = new Promise<void>((resolve) => {
      const off = store.onNotified(() => {
        off();
        resolve();
      });
    });
    // s3's instances: touches s3's proxies and the holders of {s2, s3} (s6, s7), not s4, s5.
    store.setCatalog(catalog({ s0Address: '10.0.0.99', s3Third: true }));
    store.flush();
    await notified;
    allCurrent();
    expect([...handed.keys()].filter((n) => /^s[45]-/.test(n))).toHaveLength(4);
    store.close();
  });
});
