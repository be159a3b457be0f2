// A sidecar that fails over to another replica holding the same versions costs that replica
// no protobuf encode of the sidecar's own resources (inbound listener, local app cluster):
// they are versioned from their content and encoded only when a response carries them.
import { describe, expect, it } from 'vitest';
import { decodeMessage, TYPE_URLS, type ResourceKind } from '../../src/protos/envoy.js';
import { isLazyResource, isPendingEncode } from '../../src/snapshot/lazy-resource.js';
import type { EncodedResource } from '../../src/snapshot/encoded-resource.js';
import { ack, namesOf, node, typeUrl, versionsOf } from '../support/ads-client.js';
import { protocolFixture, streamOf, type TestControlPlane } from '../support/control-plane.js';

const fx = protocolFixture();

/** The proxy's own resources of `kind` in the view the replica serves it from. */
function ownResources(cp: TestControlPlane, nodeId: string, kind: ResourceKind): EncodedResource[] {
  const stream = streamOf(cp, nodeId);
  expect(stream?.proxy, `${nodeId} connected`).toBeDefined();
  return [...cp.store.viewFor(stream!.proxy!).all(kind)].filter(isLazyResource);
}

const WILDCARD: ResourceKind[] = ['clusters', 'listeners'];

describe('failover: own resources are encoded only when sent', () => {
  it('SotW: the new replica sends nothing, encodes nothing, and encodes them when asked again', async () => {
    const [a, b] = await fx.replicas();
    const c1 = fx.sotw(a.port);
    c1.send({ node: node('hello-1', 'hello'), typeUrl: typeUrl('clusters') });
    const cds = await c1.next();
    c1.send(ack(cds));
    c1.send({ typeUrl: typeUrl('listeners') });
    const lds = await c1.next();
    c1.send(ack(lds));
    // Replica a sent them: encoded there, and they are the proxy's own (inbound listener,
    // outbound listener, local app cluster).
    for (const kind of WILDCARD) {
      const own = ownResources(a, 'hello-1', kind);
      expect(own.length, kind).toBeGreaterThan(0);
      expect(own.filter(isPendingEncode), kind).toEqual([]);
    }
    const ldsNames = namesOf(lds);
    c1.close();

    const c2 = fx.sotw(b.port);
    const bytesBefore = b.counters.responseBytes;
    c2.send({
      node: node('hello-1', 'hello'),
      typeUrl: typeUrl('clusters'),
      versionInfo: cds.versionInfo,
    });
    c2.send({ typeUrl: typeUrl('listeners'), versionInfo: lds.versionInfo });
    await c2.expectSilence(400);
    expect(b.counters.responseBytes).toBe(bytesBefore);
    for (const kind of WILDCARD) {
      const own = ownResources(b, 'hello-1', kind);
      expect(own.length, kind).toBeGreaterThan(0);
      expect(own.every(isPendingEncode), kind).toBe(true);
    }
    c2.close();

    // A proxy that holds nothing (a fresh Envoy) is sent them: same version and bytes as the
    // first replica's.
    const c3 = fx.sotw(b.port);
    c3.send({ node: node('hello-1', 'hello'), typeUrl: typeUrl('listeners') });
    const again = await c3.next();
    expect(again.versionInfo).toBe(lds.versionInfo);
    expect(namesOf(again)).toEqual(ldsNames);
    expect(again.resources).toEqual(lds.resources);
    const inbound = ownResources(b, 'hello-1', 'listeners').find((r) => /hello-1/.test(r.name))!;
    expect(isPendingEncode(inbound)).toBe(false);
    expect(decodeMessage(TYPE_URLS.listeners, inbound.value)).toMatchObject({
      name: inbound.name,
    });
  });

  it('delta: initial_resource_versions that match cost no encode; a dropped one is sent', async () => {
    const [a, b] = await fx.replicas();
    const lds = { node: node('hello-1', 'hello'), typeUrl: typeUrl('listeners') };
    const first = await fx.deltaOnce(a.port, lds);
    const had = versionsOf(first);

    const c2 = fx.delta(b.port);
    c2.send({ ...lds, initialResourceVersions: had });
    const res = await c2.next();
    expect(res.resources ?? []).toEqual([]);
    const own = ownResources(b, 'hello-1', 'listeners');
    expect(own.length).toBeGreaterThan(0);
    expect(own.every(isPendingEncode)).toBe(true);
    c2.close();

    // Holding all but one own listener: exactly that one is sent, with a's version and bytes.
    const dropped = own[0]!.name;
    const c3 = fx.delta(b.port);
    c3.send({
      ...lds,
      initialResourceVersions: Object.fromEntries(
        Object.entries(had).filter(([name]) => name !== dropped),
      ),
    });
    const resent = await c3.next();
    expect((resent.resources ?? []).map((r) => r.name)).toEqual([dropped]);
    expect(resent.resources![0]!.version).toBe(had[dropped]);
    const fromA = first.resources!.find((r) => r.name === dropped)!;
    expect(resent.resources![0]!.resource).toEqual(fromA.resource);
    expect(ownResources(b, 'hello-1', 'listeners').filter(isPendingEncode).length).toBe(
      own.length - 1,
    );
  });
});
