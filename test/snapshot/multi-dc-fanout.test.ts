// An endpoint change in a mesh of two datacenters with mesh gateways and failover visits only
// the watchers it touches (issue 16): the changed service's proxies, the holders of scopes that
// hold it, the strays and the gateways (their own resources follow every service). Before,
// any gateway or failover backend (every service with instances in both datacenters has one)
// visited every watcher. After each change every watcher, in either datacenter, must hold what
// the store builds for it from scratch, down to each resource's version.
import { describe, expect, it } from 'vitest';
import type { ProxyIdentity } from '../../src/catalog/model.js';
import { parseCatalog } from '../../src/catalog/schema.js';
import { DEFAULT_MESH_SETTINGS } from '../../src/mesh/types.js';
import { RESOURCE_KINDS } from '../../src/protos/envoy.js';
import type { ProxyView } from '../../src/snapshot/proxy-view.js';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { parseTrafficTextByEntries } from '../../src/traffic/traffic-file.js';
import { twoSidecarsEachAndAStray } from '../support/sidecar-views.js';

// 8 services, three scopes: s0..s3 call {s4, s5}; s4, s5 call {s0, s1}; s6, s7 call {s2, s3}.
// Instance sN-1 runs in dc1 (the control plane's), sN-2 in dc2. `changed`: instance id →
// [address, health] in place of the default; `gwDc2`: dc2's gateway's address.
function catalog(
  changed: Record<string, [string, 'passing' | 'critical']> = {},
  gwDc2 = '10.2.9.1',
) {
  return parseCatalog({
    services: Array.from({ length: 8 }, (_, i) => ({
      name: `s${i}`,
      upstreams: i >= 6 ? ['s2', 's3'] : i >= 4 ? ['s0', 's1'] : ['s4', 's5'],
      instances: [1, 2].map((k) => {
        const id = `s${i}-${k}`;
        const [address, health] = changed[id] ?? [`10.${k}.${i}.1`, 'passing'];
        return {
          id,
          address,
          port: 80,
          sidecarPort: 15006,
          health,
          ...(k === 2 ? { datacenter: 'dc2' } : {}),
        };
      }),
    })),
    gateways: [
      { id: 'gw-dc1', address: '10.1.9.1', port: 8443, wanAddress: '192.0.2.1', wanPort: 443 },
      {
        id: 'gw-dc2',
        datacenter: 'dc2',
        address: gwDc2,
        port: 8443,
        wanAddress: '192.0.2.2',
        wanPort: 443,
      },
    ],
  });
}

// Every proxy reaches dc2 through its own datacenter's gateway; s0 fails over to s1.
const TRAFFIC =
  '- Kind: proxy-defaults\n  Name: global\n  MeshGateway: { Mode: local }\n' +
  '- Kind: service-resolver\n  Name: s0\n' +
  "  Failover:\n    '*': { Targets: [{ Service: s1 }] }\n";

/** Each resource's name and content version, by kind. */
function contents(view: ProxyView): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const kind of RESOURCE_KINDS) {
    out[kind] = view.allSorted(kind).map((r) => `${r.name} ${r.version}`);
  }
  return out;
}

function watched() {
  const store = new SnapshotStore({
    logger: silentLogger,
    debounceMs: 0,
    maxDebounceMs: 0,
    settings: { ...DEFAULT_MESH_SETTINGS, scope: 'declared' },
  });
  store.setTraffic(parseTrafficTextByEntries(TRAFFIC, 'traffic.yaml', undefined));
  store.setCatalog(catalog());
  store.flush();
  const proxies: ProxyIdentity[] = [
    ...twoSidecarsEachAndAStray(),
    ...['gw-dc1', 'gw-dc2'].map((nodeId) => ({
      nodeId,
      service: 'mesh-gateway',
      outboundPort: 15001,
    })),
  ];
  const views = new Map<string, ProxyView>();
  for (const proxy of proxies) store.watch(proxy, (view) => views.set(proxy.nodeId, view));
  const allCurrent = () => {
    for (const proxy of proxies) {
      const held = views.get(proxy.nodeId)!;
      // A gateway's own resources are made anew on each ask (own-resources.ts): contents only.
      if (proxy.service !== 'mesh-gateway') expect(held, proxy.nodeId).toBe(store.viewFor(proxy));
      expect(contents(held), proxy.nodeId).toEqual(contents(store.previewFor(proxy)));
    }
  };
  const visits = (changed: Record<string, [string, 'passing' | 'critical']>, gwDc2?: string) => {
    const before = store.counters.watchersVisited;
    store.setCatalog(catalog(changed, gwDc2));
    store.flush();
    return store.counters.watchersVisited - before;
  };
  return { store, proxies, views, allCurrent, visits };
}

describe('an endpoint change with mesh gateways and failover visits what it touches', () => {
  it('a local service, a failover target, a remote instance, a remote health flip', () => {
    const { store, proxies, views, allCurrent, visits } = watched();
    expect(store.mesh!.gateways).toHaveLength(2);
    expect(views.get('s4-1')!.get('clusters', 's0|primary')).toBeDefined();
    allCurrent();
    // Always visited: the stray and both gateways.
    const always = 3;
    // s6 (no scope holds it): its two proxies.
    let changed: Record<string, [string, 'passing' | 'critical']> = {
      's6-1': ['10.1.6.9', 'passing'],
    };
    expect(visits(changed)).toBe(2 + always);
    allCurrent();
    // s1, the target s0 fails over to: its proxies and the holders of {s0, s1} (s4, s5).
    changed = { ...changed, 's1-1': ['10.1.1.9', 'passing'] };
    expect(visits(changed)).toBe(2 + 4 + always);
    allCurrent();
    // s0's instance in dc2: the same watchers for s0 (in dc1 and in dc2).
    changed = { ...changed, 's0-2': ['10.2.0.9', 'passing'] };
    expect(visits(changed)).toBe(2 + 4 + always);
    const s0In = (node: string) =>
      Buffer.from(views.get(node)!.get('endpoints', 's0')!.value).toString('latin1');
    // Each datacenter's callers see s0 from where they are: dc2's the moved instance first.
    expect(s0In('s4-2')).toContain('10.2.0.9');
    expect(s0In('s4-1')).toContain('10.1.0.1');
    expect(s0In('s4-1')).not.toContain('10.2.0.9');
    allCurrent();
    // s4's dc2 instance fails: s4's proxies and the holders of {s4, s5} (s0..s3).
    changed = { ...changed, 's4-2': ['10.2.4.1', 'critical'] };
    expect(visits(changed)).toBe(2 + 8 + always);
    allCurrent();
    // A gateway moves: every watcher (clusters and failover endpoints follow the gateways).
    expect(visits(changed, '10.2.9.9')).toBe(16 + always);
    allCurrent();
    // And an endpoint change after it takes the short way again.
    changed = { ...changed, 's6-1': ['10.1.6.1', 'passing'] };
    expect(visits(changed, '10.2.9.9')).toBe(2 + always);
    allCurrent();
    expect(proxies.length).toBe(16 + always);
    store.close();
  });
});
