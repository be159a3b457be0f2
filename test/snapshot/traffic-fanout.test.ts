// A traffic edit of one service visits only the watchers it touches, as an endpoint change
// does (issue 16, W9 declared: a router edit visited all 10,000 watchers to hand ~100 a view):
// the service's own proxies and the holders of scopes that have it, or that it makes reach
// something new. Mesh-wide entries (proxy-defaults), a policy change and scope `all` visit
// every watcher. After each change every watcher must hold what the store would build for it
// from scratch (nothing skipped that changed), down to each resource's version.
import { describe, expect, it } from 'vitest';
import { parseCatalog } from '../../src/catalog/schema.js';
import { DEFAULT_MESH_SETTINGS, type ScopeMode } from '../../src/mesh/types.js';
import { parsePolicy } from '../../src/policy/schema.js';
import { RESOURCE_KINDS } from '../../src/protos/envoy.js';
import type { ProxyView } from '../../src/snapshot/proxy-view.js';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { parseTrafficTextByEntries } from '../../src/traffic/traffic-file.js';
import type { TrafficConfig } from '../../src/traffic/types.js';
import { twoSidecarsEachAndAStray } from '../support/sidecar-views.js';

// 8 services, three scopes: s0..s3 call {s4, s5}; s4, s5 call {s0, s1}; s6, s7 call {s2, s3}.
// s7 also binds s3 at 127.0.0.1:9393 (Consul Connect style).
// `s5Port`: s5 is tcp, with that outbound port (every sidecar listens there).
// `declared`: false leaves every upstream undeclared (scope `policy` then follows intentions).
function catalog(s0Address = '10.0.0.1', s5Port?: number, declared = true) {
  return parseCatalog({
    services: Array.from({ length: 8 }, (_, i) => ({
      name: `s${i}`,
      ...(i === 5 && s5Port !== undefined ? { protocol: 'tcp', outboundPort: s5Port } : {}),
      upstreams: !declared
        ? undefined
        : i === 7
          ? ['s2', { name: 's3', localBindPort: 9393 }]
          : i === 6
            ? ['s2', 's3']
            : i >= 4
              ? ['s0', 's1']
              : ['s4', 's5'],
      instances: [1, 2].map((k) => ({
        id: `s${i}-${k}`,
        address: i === 0 && k === 1 ? s0Address : `10.0.${i}.${k}`,
        port: 80,
        sidecarPort: 15006,
      })),
    })),
  });
}

const router = (name: string, timeout: string, to?: string) =>
  `- Kind: service-router\n  Name: ${name}\n  Routes:\n` +
  `    - Match: { HTTP: { PathPrefix: /admin } }\n` +
  `      Destination: { RequestTimeout: ${timeout}${to ? `, Service: ${to}` : ''} }\n`;

function watched(scope: ScopeMode = 'declared', first = catalog()) {
  const store = new SnapshotStore({
    logger: silentLogger,
    debounceMs: 0,
    maxDebounceMs: 0,
    settings: { ...DEFAULT_MESH_SETTINGS, scope },
  });
  let traffic: TrafficConfig | undefined;
  /** The traffic file's new text, read as the file source reads an edit. */
  const setTraffic = (text: string) => {
    traffic = parseTrafficTextByEntries(text, 'traffic.yaml', traffic);
    store.setTraffic(traffic);
  };
  setTraffic(router('s0', '1s') + router('s4', '1s'));
  store.setCatalog(first);
  store.flush();
  const proxies = twoSidecarsEachAndAStray();
  const views = new Map<string, ProxyView>();
  const handed = new Set<string>();
  for (const proxy of proxies) {
    store.watch(proxy, (view) => {
      views.set(proxy.nodeId, view);
      handed.add(proxy.nodeId);
    });
  }
  /** Every watcher holds what the store builds for it from scratch now, resource by resource. */
  const allCurrent = () => {
    for (const proxy of proxies) {
      const held = views.get(proxy.nodeId)!;
      expect(held, proxy.nodeId).toBe(store.viewFor(proxy));
      expect(contents(held), proxy.nodeId).toEqual(contents(store.previewFor(proxy)));
    }
  };
  const visits = (change: () => void): number => {
    const before = store.counters.watchersVisited;
    handed.clear();
    change();
    store.flush();
    return store.counters.watchersVisited - before;
  };
  return { store, proxies, views, handed, allCurrent, visits, setTraffic };
}

/** Each resource's name and content version, by kind. */
function contents(view: ProxyView): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const kind of RESOURCE_KINDS) {
    out[kind] = view.allSorted(kind).map((r) => `${r.name} ${r.version}`);
  }
  return out;
}

describe('a traffic edit visits only the watchers it touches', () => {
  it("a router edit of one service visits its proxies and its scope's holders only", () => {
    const { store, handed, allCurrent, visits, setTraffic } = watched();
    const visited = visits(() => setTraffic(router('s0', '2500ms') + router('s4', '1s')));
    // s0-1, s0-2 (their own service), s4-*, s5-* (their scope holds s0), and the stray.
    expect(visited).toBe(2 + 4 + 1);
    // Handed a view: the holders of {s0, s1}, whose outbound routes carry the new timeout.
    expect([...handed].sort()).toEqual(['s4-1', 's4-2', 's5-1', 's5-2']);
    allCurrent();
    store.close();
  });

  it('an edit that makes a service reachable visits the scopes that now reach it', () => {
    const { store, views, handed, allCurrent, visits, setTraffic } = watched();
    expect(views.get('s0-1')!.get('clusters', 's2')).toBeUndefined();
    // s4's /admin goes to s2: the scope of s0..s3 ({s4, s5}) now holds s2 too.
    const visited = visits(() => setTraffic(router('s0', '1s') + router('s4', '1s', 's2')));
    // s4-* (own), s0..s3 (their scope reaches s4), the stray; s5, s6, s7 are not visited.
    expect(visited).toBe(2 + 8 + 1);
    expect([...handed].sort()).toEqual([
      's0-1',
      's0-2',
      's1-1',
      's1-2',
      's2-1',
      's2-2',
      's3-1',
      's3-2',
    ]);
    for (const node of ['s0-1', 's1-2', 's3-1']) {
      expect(views.get(node)!.get('clusters', 's2'), node).toBeDefined();
      expect(views.get(node)!.get('endpoints', 's2'), node).toBeDefined();
    }
    allCurrent();
    // And back: s2 leaves their scope again.
    visits(() => setTraffic(router('s0', '1s') + router('s4', '1s')));
    expect(views.get('s0-1')!.get('clusters', 's2')).toBeUndefined();
    allCurrent();
    store.close();
  });

  it('a mesh-wide entry (proxy-defaults) visits every watcher', () => {
    const { store, proxies, allCurrent, visits, setTraffic } = watched();
    const base = router('s0', '1s') + router('s4', '1s');
    const visited = visits(() =>
      setTraffic(
        base + '- Kind: proxy-defaults\n  Name: global\n  Config: { connect_timeout_ms: 3000 }\n',
      ),
    );
    expect(visited).toBe(proxies.length);
    allCurrent();
    store.close();
  });

  it('a policy change visits every watcher (RBAC is in every inbound listener)', () => {
    const { store, proxies, allCurrent, visits } = watched();
    const policy = parsePolicy({
      trustDomain: 'lucid.internal',
      namespace: 'default',
      defaults: { action: 'allow' },
      rules: [{ from: ['s6'], to: ['s2'], action: 'deny' }],
    });
    expect(visits(() => store.setPolicy(policy))).toBe(proxies.length);
    allCurrent();
    store.close();
  });

  it('with scope all every proxy holds every route: a router edit visits them all', () => {
    const { store, proxies, handed, allCurrent, visits, setTraffic } = watched('all');
    const visited = visits(() => setTraffic(router('s0', '2500ms') + router('s4', '1s')));
    expect(visited).toBe(proxies.length);
    // Every sidecar holds every service's routes: each is handed the new ones.
    expect(handed.size).toBe(proxies.length);
    allCurrent();
    store.close();
  });

  it("a bound upstream's protocol change reaches the binding sidecar's local listener", () => {
    const { store, views, allCurrent, visits, setTraffic } = watched();
    const bind = () => views.get('s7-1')!.get('listeners', 'bind|127.0.0.1:9393');
    const http = bind()!.version;
    const base = router('s0', '1s') + router('s4', '1s');
    visits(() => setTraffic(base + '- Kind: service-defaults\n  Name: s3\n  Protocol: tcp\n'));
    // tcp_proxy to s3 now, no longer an HTTP connection manager with s3's routes.
    expect(bind()!.version).not.toBe(http);
    allCurrent();
    store.close();
  });

  it("a tcp service's new outbound port reaches sidecars binding that port, outside its scope", () => {
    const { store, views, allCurrent, visits } = watched();
    const bind = () => views.get('s7-1')!.get('listeners', 'bind|127.0.0.1:9393');
    visits(() => store.setCatalog(catalog(undefined, 9400)));
    expect(bind()).toBeDefined();
    allCurrent();
    // s5 now listens on 9393 in every sidecar: s7's bind listener for s3 there would clash.
    visits(() => store.setCatalog(catalog(undefined, 9393)));
    expect(bind()).toBeUndefined();
    allCurrent();
    store.close();
  });

  it('with scope policy an intentions edit takes the callers it denies off the scope', () => {
    const { store, views, allCurrent, visits, setTraffic } = watched(
      'policy',
      catalog(undefined, undefined, false),
    );
    const intentions = (sources: string) =>
      router('s0', '1s') +
      `- Kind: service-intentions\n  Name: s1\n  Sources:\n${sources}` +
      `    - { Name: '*', Action: allow }\n`;
    visits(() => setTraffic(intentions('')));
    expect(views.get('s0-1')!.get('clusters', 's1')).toBeDefined();
    visits(() => setTraffic(intentions('    - { Name: s0, Action: deny }\n')));
    expect(views.get('s0-1')!.get('clusters', 's1')).toBeUndefined();
    expect(views.get('s2-1')!.get('clusters', 's1')).toBeDefined();
    allCurrent();
    store.close();
  });

  it('over a sequence of edits and endpoint changes every watcher holds a fresh build', () => {
    const { store, views, allCurrent, visits, setTraffic } = watched();
    const steps: Array<() => void> = [
      () => setTraffic(router('s0', '2s') + router('s4', '1s')),
      () => setTraffic(router('s0', '2s') + router('s4', '1s', 's6')),
      () => store.setCatalog(catalog('10.0.0.50')),
      () =>
        setTraffic(
          router('s0', '2s') +
            router('s4', '1s', 's6') +
            '- Kind: service-splitter\n  Name: s2\n  Splits:\n' +
            '    - { Weight: 50, Service: s2 }\n    - { Weight: 50, Service: s1 }\n',
        ),
      () =>
        setTraffic(
          router('s0', '3s') +
            '- Kind: service-defaults\n  Name: s5\n  Protocol: http2\n' +
            '- Kind: service-resolver\n  Name: s1\n  ConnectTimeout: 7s\n',
        ),
      () =>
        setTraffic(
          router('s0', '3s') +
            '- Kind: service-intentions\n  Name: s0\n  Sources:\n    - { Name: s4, Action: deny }\n',
        ),
      () => store.setCatalog(catalog()),
      () => setTraffic(router('s0', '1s') + router('s4', '1s')),
    ];
    let visited = 0;
    for (const step of steps) {
      visited += visits(step);
      allCurrent();
    }
    expect(visited).toBeLessThan(steps.length * 17);
    // And what they hold is what a replica started on the same inputs serves.
    const replica = watched();
    for (const [node, view] of views) {
      expect(contents(view), node).toEqual(contents(replica.views.get(node)!));
    }
    store.close();
    replica.store.close();
  });
});
