// A sidecar that moves to another control plane replica gets nothing it already holds: two
// replicas serving the same catalog, a client that was served by one reconnects to the other.
import { describe, expect, it } from 'vitest';
import { syncState } from '../../src/xds/type-status.js';
import { ack, namesOf, node, typeUrl, versionsOf } from '../support/ads-client.js';
import {
  protocolFixture,
  statusOf,
  twoServices,
  twoServicesWithWorld2,
} from '../support/control-plane.js';

const fx = protocolFixture();

describe('SotW: reconnecting to another replica', () => {
  it('sends nothing the proxy holds, counts it SYNCED, and pushes the next change', async () => {
    const [a, b] = await fx.replicas();
    const c1 = fx.sotw(a.port);
    c1.send({ node: node('hello-1', 'hello'), typeUrl: typeUrl('clusters') });
    const cds = await c1.next();
    c1.send(ack(cds));
    c1.send({ typeUrl: typeUrl('endpoints'), resourceNames: ['world'] });
    const eds = await c1.next();
    c1.send(ack(eds, ['world']));
    c1.close();

    // Envoy's first requests on a new stream: no nonce, the versions it holds.
    const c2 = fx.sotw(b.port);
    const bytesBefore = b.counters.responseBytes;
    c2.send({
      node: node('hello-1', 'hello'),
      typeUrl: typeUrl('clusters'),
      versionInfo: cds.versionInfo,
    });
    c2.send({
      typeUrl: typeUrl('endpoints'),
      resourceNames: ['world'],
      versionInfo: eds.versionInfo,
    });
    await c2.expectSilence(400);
    expect(b.counters.responseBytes).toBe(bytesBefore);
    expect(syncState(statusOf(b, 'hello-1', 'clusters'))).toBe('SYNCED');
    expect(syncState(statusOf(b, 'hello-1', 'endpoints'))).toBe('SYNCED');
    expect(statusOf(b, 'hello-1', 'endpoints')?.ackedVersion).toBe(eds.versionInfo);

    // A change after the move reaches it: only the endpoints changed, so only EDS is sent.
    b.apply(twoServicesWithWorld2());
    const update = await c2.next();
    expect(update.typeUrl).toBe(typeUrl('endpoints'));
    expect(update.versionInfo).not.toBe(eds.versionInfo);
    c2.send(ack(update, ['world']));
    await c2.expectSilence(300);
  });

  it('a version the replica does not have (the proxy is behind) is answered in full', async () => {
    const [a, b] = await fx.replicas();
    const c1 = fx.sotw(a.port);
    c1.send({ node: node('hello-1', 'hello'), typeUrl: typeUrl('clusters') });
    const cds = await c1.next();
    c1.close();
    b.apply(twoServices({ more: [{ name: 'extra', instances: [] }] }));
    const c2 = fx.sotw(b.port);
    c2.send({
      node: node('hello-1', 'hello'),
      typeUrl: typeUrl('clusters'),
      versionInfo: cds.versionInfo,
    });
    const res = await c2.next();
    expect(res.versionInfo).not.toBe(cds.versionInfo);
    expect(namesOf(res)).toContain('extra');
  });

  it('a new subscription name on reconnect gets the whole subscribed set', async () => {
    const [a, b] = await fx.replicas();
    const c1 = fx.sotw(a.port);
    c1.send({
      node: node('hello-1', 'hello'),
      typeUrl: typeUrl('endpoints'),
      resourceNames: ['world'],
    });
    const eds = await c1.next();
    c1.close();
    const c2 = fx.sotw(b.port);
    c2.send({
      node: node('hello-1', 'hello'),
      typeUrl: typeUrl('endpoints'),
      resourceNames: ['hello', 'world'],
      versionInfo: eds.versionInfo,
    });
    const res = await c2.next();
    expect(namesOf(res).sort()).toEqual(['hello', 'world']);
  });
});

describe('delta: reconnecting to another replica', () => {
  it('initial_resource_versions from one replica are honoured by the other', async () => {
    const [a, b] = await fx.replicas();
    const cds = { node: node('hello-1', 'hello'), typeUrl: typeUrl('clusters') };
    const had = versionsOf(await fx.deltaOnce(a.port, cds));
    expect(Object.keys(had).length).toBeGreaterThan(0);
    const res = await fx.deltaOnce(b.port, { ...cds, initialResourceVersions: had });
    expect(res.resources ?? []).toEqual([]);
    expect(res.removedResources ?? []).toEqual([]);
  });

  it('a named subscription (EDS) held as sent gets nothing; a stale version or a name it no longer wants is answered', async () => {
    const [a, b] = await fx.replicas();
    const names = ['hello', 'nowhere', 'world']; // nowhere: no such service, an empty assignment
    const eds = {
      node: node('hello-1', 'hello'),
      typeUrl: typeUrl('endpoints'),
      resourceNamesSubscribe: names,
    };
    const had = versionsOf(await fx.deltaOnce(a.port, eds));
    expect(Object.keys(had).sort()).toEqual(names);

    const same = await fx.deltaOnce(b.port, { ...eds, initialResourceVersions: had });
    expect(same.resources ?? []).toEqual([]);
    expect(same.removedResources ?? []).toEqual([]);

    const res = await fx.deltaOnce(b.port, {
      ...eds,
      initialResourceVersions: { ...had, world: 'an-older-version', gone: 'v1' },
    });
    expect(Object.entries(versionsOf(res))).toEqual([['world', had.world]]);
    expect(res.removedResources).toEqual(['gone']);
  });
});
