// Keeps the bench's go-control-plane peer honest: built by its tools recipe and started on a
// small catalog the bench's generator writes, it must send a sidecar the same resources as
// lucid-mesh (started as the bench starts it: startControlPlane on the file source) for the
// same catalog: the same kinds and names over SotW and delta, and the same content for every
// shared resource, so the bench compares the same work.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GeneratedCatalog } from '../../bench/catalog.js';
import type { BenchControlPlane } from '../../bench/control-plane.js';
import { peerBinary, startPeerControlPlane } from '../../bench/peer-control-plane.js';
import { startControlPlane, type RunningControlPlane } from '../../src/app.js';
import type { ResourceKind } from '../../src/protos/envoy.js';
import { FileSource } from '../../src/sources/file-source.js';
import { createLogger } from '../../src/telemetry/logger.js';
import type { DiscoveryResponse } from '../../src/xds/messages.js';
import { deltaClient, node, sotwClient, typeUrl } from '../support/ads-client.js';

const NODE = 'svc-0001-0';
const SERVICE = 'svc-0001';
/** The kinds a sidecar without mTLS receives (no SDS secrets with `--mtls off`). */
type Kind = Exclude<ResourceKind, 'secrets' | 'virtualHosts'>;
const KINDS: readonly Kind[] = ['clusters', 'endpoints', 'listeners', 'routes'];

/** What one sidecar holds: per kind, resource name → decoded resource. */
type Held = Record<Kind, Map<string, unknown>>;

const nameOf = (r: Record<string, unknown>): string => String(r.name ?? r.clusterName ?? '');

/** A sidecar's SotW session as Envoy runs it: CDS and LDS wildcard, then EDS and RDS by name. */
async function sotwFetch(port: number): Promise<Held> {
  const s = sotwClient(port);
  try {
    const held: Held = {
      clusters: new Map(),
      endpoints: new Map(),
      listeners: new Map(),
      routes: new Map(),
    };
    const take = async (kind: Kind, names: string[], first = false): Promise<void> => {
      s.send({
        ...(first ? { node: node(NODE, SERVICE) } : {}),
        typeUrl: typeUrl(kind),
        resourceNames: names,
      });
      let res: DiscoveryResponse;
      do res = await s.next(10_000);
      while (res.typeUrl !== typeUrl(kind));
      for (const r of res.resources ?? []) held[kind].set(nameOf(r), r);
      s.send({
        typeUrl: res.typeUrl,
        versionInfo: res.versionInfo,
        responseNonce: res.nonce,
        resourceNames: names,
      });
    };
    await take('clusters', [], true);
    await take('listeners', []);
    const eds = [...held.clusters.values()]
      .filter((c) => (c as { type?: string }).type === 'EDS')
      .map((c) =>
        String(
          (c as { edsClusterConfig?: { serviceName?: string } }).edsClusterConfig?.serviceName,
        ),
      );
    await take('endpoints', eds.sort());
    await take('routes', ['outbound']);
    return held;
  } finally {
    s.close();
  }
}

/** The same over delta: names only (the content was compared over SotW). */
async function deltaNames(port: number): Promise<Record<Kind, string[]>> {
  const s = deltaClient(port);
  try {
    const out: Record<Kind, string[]> = { clusters: [], endpoints: [], listeners: [], routes: [] };
    const take = async (kind: Kind, names: string[], first = false): Promise<void> => {
      s.send({
        ...(first ? { node: node(NODE, SERVICE) } : {}),
        typeUrl: typeUrl(kind),
        resourceNamesSubscribe: names,
      });
      let res;
      do res = await s.next(10_000);
      while (res.typeUrl !== typeUrl(kind));
      out[kind] = (res.resources ?? []).map((r) => String(r.name)).sort();
      s.send({ typeUrl: res.typeUrl, responseNonce: res.nonce });
    };
    await take('clusters', [], true);
    await take('listeners', []);
    await take(
      'endpoints',
      out.clusters.filter((n) => !n.startsWith('local_app|')),
    );
    await take('routes', ['outbound']);
    return out;
  } finally {
    s.close();
  }
}

const names = (h: Held) =>
  Object.fromEntries(KINDS.map((k) => [k, [...h[k].keys()].sort()])) as Record<
    ResourceKind,
    string[]
  >;
const own = (name: string) => name.includes(NODE);
const sharedOnly = (n: Record<Kind, string[]>) =>
  Object.fromEntries(KINDS.map((k) => [k, n[k].filter((x) => !own(x))]));

describe('the go-control-plane peer sends what lucid-mesh sends', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lucid-peer-test-'));
  // 5 services × 3 instances; one instance critical (left out) and one warning (kept).
  const catalog = new GeneratedCatalog(
    { services: 5, instances: 3 },
    join(dir, 'catalog.json'),
    (s, i, doc) =>
      s === 2 && i === 1
        ? { ...doc, health: 'critical' }
        : s === 3 && i === 2
          ? { ...doc, health: 'warning' }
          : doc,
  );
  catalog.write();
  let lucid: RunningControlPlane | undefined;
  const peers: Partial<Record<'per-node' | 'shared', BenchControlPlane>> = {};
  let lucidHeld: Held;

  beforeAll(async () => {
    // Fails (not skips) when the peer cannot be built: Go and the module proxy are needed.
    const binary = peerBinary();
    const logger = createLogger('silent');
    lucid = await startControlPlane({
      source: new FileSource(catalog.path, logger),
      logger,
      host: '127.0.0.1',
      xdsPort: 0,
      adminPort: 0,
    });
    peers['per-node'] = await startPeerControlPlane(
      { catalogPath: catalog.path, peerMode: 'per-node', binary },
      join(dir, 'per-node.log'),
    );
    peers.shared = await startPeerControlPlane(
      { catalogPath: catalog.path, peerMode: 'shared', binary },
      join(dir, 'shared.log'),
    );
    lucidHeld = await sotwFetch(lucid.xdsPort);
  }, 300_000);

  afterAll(async () => {
    await Promise.all(Object.values(peers).map((p) => p.stop()));
    await lucid?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lucid-mesh sends what the bench expects of it (the reference the peer is held to)', () => {
    const n = names(lucidHeld);
    expect(n.clusters).toContain(`local_app|${NODE}`);
    expect(n.listeners).toEqual(expect.arrayContaining([`inbound|${NODE}`, 'outbound|http|15001']));
    expect(n.routes).toEqual(['outbound']);
    expect(sharedOnly(n).clusters).toHaveLength(5);
  });

  it('per node: the same kinds, names and content over SotW', async () => {
    const held = await sotwFetch(peers['per-node']!.xdsPort);
    expect(names(held)).toEqual(names(lucidHeld));
    for (const kind of KINDS) {
      for (const [name, value] of lucidHeld[kind])
        expect({ kind, name, value: held[kind].get(name) }).toEqual({ kind, name, value });
    }
  });

  it('shared: the same shared resources, no per-proxy ones (one snapshot cannot carry them)', async () => {
    const held = await sotwFetch(peers.shared!.xdsPort);
    expect(names(held)).toEqual(sharedOnly(names(lucidHeld)));
    for (const kind of KINDS) {
      for (const [name, value] of held[kind])
        expect({ kind, name, value }).toEqual({ kind, name, value: lucidHeld[kind].get(name) });
    }
  });

  it('the same names over delta, in both peer modes', async () => {
    const reference = await deltaNames(lucid!.xdsPort);
    expect(reference).toEqual(names(lucidHeld));
    expect(await deltaNames(peers['per-node']!.xdsPort)).toEqual(reference);
    expect(await deltaNames(peers.shared!.xdsPort)).toEqual(sharedOnly(reference));
  });

  it('a catalog change reaches the peer: the flipped instance leaves the assignment', async () => {
    const [flip] = catalog.planFlips(1);
    const p = peers['per-node']!;
    const before = p.snapshots.length - 1;
    catalog.apply(flip!);
    catalog.write();
    await p.nextSnapshot(before, 10_000);
    const held = await sotwFetch(p.xdsPort);
    expect(JSON.stringify(held.endpoints.get(flip!.service))).not.toContain(flip!.address);
    expect(held.endpoints.size).toBe(5);
  });
});
