// The snapshot store encodes each changed resource once, however many proxies receive it.
import { afterEach, describe, expect, it } from 'vitest';
import {
  ack,
  deltaClient,
  node,
  sotwClient,
  typeUrl,
  type DeltaStreamClient,
  type SotwStreamClient,
} from '../support/ads-client.js';
import { startControlPlane, twoServices, type TestControlPlane } from '../support/control-plane.js';
import { parseCatalog } from '../../src/catalog/schema.js';
import { DEFAULT_MESH_SETTINGS } from '../../src/mesh/types.js';
import { decodeMessage, TYPE_URLS } from '../../src/protos/envoy.js';
import type { ProxyView } from '../../src/snapshot/proxy-view.js';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { silentLogger } from '../../src/telemetry/logger.js';

let cp: TestControlPlane | undefined;
const open: Array<SotwStreamClient | DeltaStreamClient> = [];
afterEach(async () => {
  open.splice(0).forEach((c) => c.close());
  await cp?.close();
  cp = undefined;
});

const PROXIES = 50;

function worldWith(health: string, protocol = 'http') {
  const doc = twoServices({
    worldInstances: [
      { id: 'world-1', address: '127.0.0.1', port: 9102, sidecarPort: 19102 },
      { id: 'world-2', address: '127.0.0.2', port: 9102, sidecarPort: 19102, health },
    ],
  }) as { services: Array<Record<string, unknown>> };
  doc.services[1]!.protocol = protocol;
  return doc;
}

describe('fan-out cost', () => {
  it('50 SotW proxies cost one encode per changed resource, and each gets one response', async () => {
    cp = await startControlPlane({ catalog: worldWith('passing') });
    const clients: SotwStreamClient[] = [];
    for (let i = 0; i < PROXIES; i++) {
      const c = sotwClient(cp.port);
      open.push(c);
      clients.push(c);
      c.send({
        node: node(`client-${i}`, 'client'),
        typeUrl: typeUrl('endpoints'),
        resourceNames: ['hello', 'world'],
      });
    }
    const firsts = await Promise.all(clients.map((c) => c.next()));
    clients.forEach((c, i) => c.send(ack(firsts[i]!, ['hello', 'world'])));
    await Promise.all(clients.map((c) => c.expectSilence(200)));

    const encodedBefore = cp.store.encoder.counters.encoded;
    const responsesBefore = cp.counters.responses;
    cp.apply(worldWith('critical')); // changes exactly one resource: world's assignment
    const updates = await Promise.all(clients.map((c) => c.next()));
    expect(cp.store.encoder.counters.encoded - encodedBefore).toBe(1);
    expect(cp.counters.responses - responsesBefore).toBe(PROXIES);
    for (const u of updates) expect(JSON.stringify(u)).not.toContain('127.0.0.2');
    const first = JSON.stringify(updates[0]!.resources);
    for (const u of updates) expect(JSON.stringify(u.resources)).toBe(first);
  });

  it('50 delta proxies receive only the changed resource, encoded once', async () => {
    cp = await startControlPlane({ catalog: worldWith('passing') });
    const clients: DeltaStreamClient[] = [];
    for (let i = 0; i < PROXIES; i++) {
      const c = deltaClient(cp.port);
      open.push(c);
      clients.push(c);
      c.send({ node: node(`client-${i}`, 'client'), typeUrl: typeUrl('clusters') });
    }
    const firsts = await Promise.all(clients.map((c) => c.next()));
    clients.forEach((c, i) =>
      c.send({ typeUrl: firsts[i]!.typeUrl, responseNonce: firsts[i]!.nonce }),
    );
    const encodedBefore = cp.store.encoder.counters.encoded;
    cp.apply(worldWith('passing')); // identical catalog: nothing at all
    await Promise.all(clients.map((c) => c.expectSilence(150)));
    cp.apply(worldWith('passing', 'http2'));
    const updates = await Promise.all(clients.map((c) => c.next()));
    for (const u of updates) expect((u.resources ?? []).map((r) => r.name)).toEqual(['world']);
    expect(cp.store.encoder.counters.encoded - encodedBefore).toBe(1);
  });
});

describe('fan-out cost with scopes (docs/scoping.md)', () => {
  // 12 services; 3 scope groups: {a0,a1}, {a2..a5} and everything (no upstreams declared).
  function scopedCatalog(a0Address: string) {
    return parseCatalog({
      services: Array.from({ length: 12 }, (_, i) => ({
        name: `a${i}`,
        instances: [
          {
            id: `a${i}-1`,
            address: i === 0 ? a0Address : `10.0.0.${i + 1}`,
            port: 80,
            sidecarPort: 15006,
          },
        ],
        ...(i >= 6 && i < 9 ? { upstreams: ['a0', 'a1'] } : {}),
        ...(i >= 9 ? { upstreams: ['a2', 'a3', 'a4', { name: 'a5', localBindPort: 9100 }] } : {}),
      })),
    });
  }

  it('100 proxies in 3 scope groups: each group shares one encoded CDS/RDS; one change costs one encode', () => {
    const store = new SnapshotStore({
      logger: silentLogger,
      debounceMs: 0,
      maxDebounceMs: 0,
      settings: { ...DEFAULT_MESH_SETTINGS, scope: 'declared' },
    });
    store.setCatalog(scopedCatalog('10.0.0.1'));
    store.flush();
    const views = new Map<string, ProxyView>();
    const serviceOf = (i: number) => `a${[6, 9, 0][i % 3]! + (i % 2)}`;
    for (let i = 0; i < 100; i++) {
      const proxy = { nodeId: `p-${i}`, service: serviceOf(i), outboundPort: 15001 };
      store.watch(proxy, (view) => views.set(proxy.nodeId, view));
    }
    const names = (v: ProxyView, kind: 'clusters' | 'endpoints') =>
      [...v.all(kind)].map((r) => r.name).filter((n) => /^a\d+$/.test(n));
    const group = (g: number) => [...views].filter(([n]) => Number(n.slice(2)) % 3 === g);
    expect(names(group(0)[0]![1], 'clusters')).toEqual(['a0', 'a1']);
    expect(names(group(1)[0]![1], 'clusters')).toEqual(['a2', 'a3', 'a4', 'a5']);
    expect(names(group(2)[0]![1], 'clusters')).toHaveLength(12);
    for (const g of [0, 1, 2]) {
      // One encoded route configuration and one CDS block per group, however many proxies.
      const routes = new Set(group(g).map(([, v]) => v.get('routes', 'outbound')));
      const cds = new Set(group(g).map(([, v]) => v.snapshot.sharedBlock('clusters')));
      expect([routes.size, cds.size]).toEqual([1, 1]);
    }
    const vhosts = (v: ProxyView) =>
      (
        decodeMessage(TYPE_URLS.routes, v.get('routes', 'outbound')!.value) as {
          virtualHosts: { name: string }[];
        }
      ).virtualHosts.map((h) => h.name);
    expect(vhosts(group(0)[0]![1])).toEqual(['a0', 'a1']);
    expect(store.counters.scopesBuilt).toBe(2);

    // An endpoint of a0 (in two groups' scopes) changes: one encode, not one per group.
    const previous = new Map(views);
    const before = store.encoder.counters.encoded;
    store.setCatalog(scopedCatalog('10.0.0.99'));
    store.flush();
    expect(store.encoder.counters.encoded - before).toBe(1);
    const a0 = new Set(
      [...views].map(([, v]) => v.get('endpoints', 'a0')).filter((r) => r !== undefined),
    );
    expect(a0.size).toBe(1);
    expect(group(1).every(([, v]) => v.get('endpoints', 'a0') === undefined)).toBe(true);
    // The change reaches only the scopes holding a0: the others' content is unchanged (same
    // digest, so a SotW stream says nothing, and an empty delta diff).
    const changed = (g: number) => {
      const [node, view] = group(g)[0]!;
      const prev = previous.get(node)!;
      return {
        diff: [...view.diffFrom(prev, 'endpoints').changed],
        sameDigest:
          view.wildcardBlock('endpoints').digest === prev.wildcardBlock('endpoints').digest,
      };
    };
    expect(changed(0)).toEqual({ diff: ['a0'], sameDigest: false });
    expect(changed(1)).toEqual({ diff: [], sameDigest: true });
    expect(changed(2)).toEqual({ diff: ['a0'], sameDigest: false });
    store.close();
  });
});
