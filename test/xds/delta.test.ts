// Delta (incremental) ADS protocol behaviour, against the real gRPC server in-process.
import { describe, expect, it } from 'vitest';
import { syncState } from '../../src/xds/type-status.js';
import { deltaAck, kindOf, node, typeUrl, versionsOf } from '../support/ads-client.js';
import { protocolFixture, twoServices, twoServicesWithWorld2 } from '../support/control-plane.js';

const fx = protocolFixture();

describe('delta ADS', () => {
  it('sends every cluster on a wildcard subscription, then only what changed', async () => {
    const cp = await fx.start({ catalog: twoServices() });
    const c = fx.delta(cp.port);
    c.send({ node: node('hello-1', 'hello'), typeUrl: typeUrl('clusters') });
    const first = await c.next();
    expect(Object.keys(versionsOf(first)).sort()).toEqual(['hello', 'local_app|hello-1', 'world']);
    c.send(deltaAck(first));
    await c.expectSilence(200);
    const stream = [...cp.server.connected.values()][0]!;
    expect(syncState(stream.types.get('clusters'))).toBe('SYNCED');

    cp.apply(twoServices({ more: [{ name: 'extra' }] }));
    const added = await c.next();
    expect(Object.keys(versionsOf(added))).toEqual(['extra']);
    expect(added.removedResources ?? []).toEqual([]);
    c.send(deltaAck(added));

    cp.apply(twoServices());
    const removed = await c.next();
    expect(removed.resources ?? []).toEqual([]);
    expect(removed.removedResources).toEqual(['extra']);
  });

  it('sends streams a change owes the same resources as one shared response, ACKed per stream', async () => {
    const cp = await fx.start({ catalog: twoServices() });
    const a = fx.delta(cp.port);
    const b = fx.delta(cp.port);
    // a has had another response first, so nonces counted per stream would differ.
    a.send({ node: node('hello-1', 'hello'), typeUrl: typeUrl('listeners') });
    a.send(deltaAck(await a.next()));
    for (const c of [a, b]) {
      c.send({
        node: node(c === a ? 'hello-1' : 'world-1', c === a ? 'hello' : 'world'),
        typeUrl: typeUrl('endpoints'),
        resourceNamesSubscribe: ['hello', 'world'],
      });
      c.send(deltaAck(await c.next()));
    }
    await a.expectSilence(200);
    cp.apply(twoServicesWithWorld2());
    const [fromA, fromB] = [await a.next(), await b.next()];
    expect(Object.keys(versionsOf(fromA))).toEqual(['world']);
    expect(fromA).toEqual(fromB); // same bytes, same nonce
    a.send(deltaAck(fromA));
    b.send(deltaAck(fromB));
    await a.expectSilence(200);
    for (const s of cp.server.connected.values()) {
      expect(syncState(s.types.get('endpoints'))).toBe('SYNCED');
    }
    expect(cp.counters.staleNonces).toBe(0);
  });

  it('honours initial_resource_versions on reconnect: nothing resent, deletions reported', async () => {
    const cp = await fx.start({ catalog: twoServices({ more: [{ name: 'extra' }] }) });
    const cds = { node: node('hello-1', 'hello'), typeUrl: typeUrl('clusters') };
    const had = versionsOf(await fx.deltaOnce(cp.port, cds));

    // While the proxy was away, "extra" was deleted and "world" changed.
    const doc = twoServices() as { services: Array<Record<string, unknown>> };
    doc.services[1]!.protocol = 'http2';
    cp.apply(doc);

    const res = await fx.deltaOnce(cp.port, { ...cds, initialResourceVersions: had });
    expect(Object.keys(versionsOf(res))).toEqual(['world']);
    expect(res.removedResources).toEqual(['extra']);
  });

  it('answers a reconnect with nothing to change with an empty response', async () => {
    const cp = await fx.start({ catalog: twoServices() });
    const cds = { node: node('hello-1', 'hello'), typeUrl: typeUrl('clusters') };
    const had = versionsOf(await fx.deltaOnce(cp.port, cds));
    const res = await fx.deltaOnce(cp.port, { ...cds, initialResourceVersions: had });
    expect(res.resources ?? []).toEqual([]);
    expect(res.removedResources ?? []).toEqual([]);
  });

  it('answers a reconnect made while the control plane was not ready yet, even with nothing to change', async () => {
    // A control plane restarted with an invalid traffic file: sidecars reconnect before its
    // first snapshot. Their first requests are answered once it has one, changes or not.
    const before = await fx.start({ catalog: twoServices() });
    const cds = { node: node('hello-1', 'hello'), typeUrl: typeUrl('clusters') };
    const had = versionsOf(await fx.deltaOnce(before.port, cds));
    const cp = await fx.start();
    const c = fx.delta(cp.port);
    c.send({ ...cds, initialResourceVersions: had });
    await c.expectSilence(200);
    cp.apply(twoServices());
    const res = await c.next();
    expect(res.resources ?? []).toEqual([]);
    expect(res.removedResources ?? []).toEqual([]);
    c.send(deltaAck(res));
    await c.expectSilence(200);
    const stream = [...cp.server.connected.values()][0]!;
    expect(syncState(stream.types.get('clusters'))).toBe('SYNCED');
  });

  it.each(['clusters first', 'endpoints first'])(
    'a reconnect sent changed clusters is sent their endpoints too, though it holds them (Envoy issue 13009; %s)',
    async (order) => {
      const cp = await fx.start({ catalog: twoServices() });
      const cds = { node: node('hello-1', 'hello'), typeUrl: typeUrl('clusters') };
      const eds = {
        ...cds,
        typeUrl: typeUrl('endpoints'),
        resourceNamesSubscribe: ['hello', 'world'],
      };
      const cdsHad = versionsOf(await fx.deltaOnce(cp.port, cds));
      const edsHad = versionsOf(await fx.deltaOnce(cp.port, eds));
      // While the proxy was away (a control plane restart): world's cluster changed, not its endpoints.
      const doc = twoServices() as { services: Array<Record<string, unknown>> };
      doc.services[1]!.protocol = 'http2';
      cp.apply(doc);

      const c = fx.delta(cp.port);
      const requests = [
        { ...cds, initialResourceVersions: cdsHad },
        { ...eds, initialResourceVersions: edsHad },
      ];
      for (const r of order === 'clusters first' ? requests : requests.reverse()) c.send(r);
      const got = await c.take(order === 'clusters first' ? 2 : 3);
      const clusters = got.find((r) => kindOf(r) === 'clusters')!;
      expect(Object.keys(versionsOf(clusters))).toEqual(['world']);
      const endpoints = got
        .filter((r) => kindOf(r) === 'endpoints')
        .flatMap((r) => Object.keys(versionsOf(r)));
      expect(endpoints).toEqual(['world']);
      await c.expectSilence(200);
    },
  );

  it('resends a resource on resubscribe after unsubscribe', async () => {
    const cp = await fx.start({ catalog: twoServices() });
    const c = fx.delta(cp.port);
    c.send({
      node: node('hello-1', 'hello'),
      typeUrl: typeUrl('endpoints'),
      resourceNamesSubscribe: ['world'],
    });
    const r1 = await c.next();
    expect(Object.keys(versionsOf(r1))).toEqual(['world']);
    c.send({ ...deltaAck(r1), resourceNamesUnsubscribe: ['world'] });
    await c.expectSilence(200);
    c.send({ typeUrl: typeUrl('endpoints'), resourceNamesSubscribe: ['world'] });
    const r2 = await c.next();
    expect(versionsOf(r2)).toEqual(versionsOf(r1));
  });

  it('applies subscription changes even when their nonce is stale', async () => {
    const cp = await fx.start({ catalog: twoServices() });
    const c = fx.delta(cp.port);
    c.send({
      node: node('hello-1', 'hello'),
      typeUrl: typeUrl('endpoints'),
      resourceNamesSubscribe: ['world'],
    });
    const r1 = await c.next();
    c.send({ typeUrl: typeUrl('endpoints'), resourceNamesSubscribe: ['hello'] });
    const r2 = await c.next();
    expect(Object.keys(versionsOf(r2))).toEqual(['hello']);
    c.send({ ...deltaAck(r1), resourceNamesSubscribe: ['ghost'] }); // acks r1, which is no longer the latest
    const r3 = await c.next();
    expect(Object.keys(versionsOf(r3))).toEqual(['ghost']);
    expect(cp.counters.staleNonces).toBe(1);
  });

  it('records a NACK and does not resend', async () => {
    const cp = await fx.start({ catalog: twoServices() });
    const c = fx.delta(cp.port);
    c.send({ node: node('hello-1', 'hello'), typeUrl: typeUrl('listeners') });
    const r = await c.next();
    c.send({
      ...deltaAck(r),
      errorDetail: { code: 13, message: 'listener inbound|hello-1: address in use' },
    });
    await c.expectSilence(400);
    const stream = [...cp.server.connected.values()][0]!;
    expect(syncState(stream.types.get('listeners'))).toBe('NACKED');
    expect(stream.types.get('listeners')?.nack?.message).toContain('address in use');
  });

  it('a NACK of an earlier response, answered after a newer one was sent, shows until a later response is accepted', async () => {
    // Delta responses are increments: the newer one does not carry what the rejected one did.
    const cp = await fx.start({ catalog: twoServices() });
    const c = fx.delta(cp.port);
    c.send({ node: node('hello-1', 'hello'), typeUrl: typeUrl('clusters') });
    c.send(deltaAck(await c.next()));
    await c.expectSilence(200);
    cp.apply(twoServices({ more: [{ name: 'extra' }] }));
    const rejected = await c.next();
    cp.apply(twoServices({ more: [{ name: 'extra' }, { name: 'other' }] }));
    const newer = await c.next();
    const stream = [...cp.server.connected.values()][0]!;
    const clusters = () => stream.types.get('clusters');
    c.send({ ...deltaAck(rejected), errorDetail: { code: 13, message: 'cluster extra: bad' } });
    c.send(deltaAck(newer));
    await c.expectSilence(300);
    expect(syncState(clusters())).toBe('NACKED');
    expect(clusters()?.nack?.message).toBe('cluster extra: bad');
    expect(cp.counters.nacks).toBe(1);
    expect(cp.counters.staleNonces).toBe(0);

    cp.apply(twoServices({ more: [{ name: 'other' }] }));
    const fixed = await c.next();
    c.send(deltaAck(fixed));
    await c.expectSilence(200);
    expect(syncState(clusters())).toBe('SYNCED');
    expect(clusters()?.nack).toBeUndefined();
  });

  it("resends a changed cluster's unchanged endpoints (Envoy issue 13009)", async () => {
    const cp = await fx.start({ catalog: twoServices() });
    const c = fx.delta(cp.port);
    c.send({ node: node('hello-1', 'hello'), typeUrl: typeUrl('clusters') });
    c.send({
      node: node('hello-1', 'hello'),
      typeUrl: typeUrl('endpoints'),
      resourceNamesSubscribe: ['hello', 'world'],
    });
    for (const r of await c.take(2)) c.send(deltaAck(r));
    await c.expectSilence(200);
    const doc = twoServices() as { services: Array<Record<string, unknown>> };
    doc.services[1]!.protocol = 'grpc';
    cp.apply(doc);
    const [cds, eds] = await c.take(2);
    expect(cds!.typeUrl).toBe(typeUrl('clusters'));
    expect(Object.keys(versionsOf(cds!))).toEqual(['world']);
    expect(eds!.typeUrl).toBe(typeUrl('endpoints'));
    expect(Object.keys(versionsOf(eds!))).toEqual(['world']);
  });
});
