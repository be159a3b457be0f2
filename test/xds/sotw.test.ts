// SotW ADS protocol behaviour, against the real gRPC server in-process.
import { describe, expect, it } from 'vitest';
import { syncState } from '../../src/xds/type-status.js';
import { ack, kindOf, namesOf, node, typeUrl } from '../support/ads-client.js';
import {
  protocolFixture,
  statusOf,
  twoServices,
  twoServicesWithWorld2,
} from '../support/control-plane.js';

const fx = protocolFixture();

describe('SotW ADS', () => {
  it('answers wildcard CDS with every cluster and records the ACK', async () => {
    const cp = await fx.start({ catalog: twoServices() });
    const c = fx.sotw(cp.port);
    c.send({ node: node('hello-1', 'hello'), typeUrl: typeUrl('clusters') });
    const res = await c.next();
    expect(namesOf(res).sort()).toEqual(['hello', 'local_app|hello-1', 'world']);
    expect(res.versionInfo).toMatch(/\S+/);
    expect(syncState(statusOf(cp, 'hello-1', 'clusters'))).toBe('STALE');
    c.send(ack(res));
    await c.expectSilence();
    expect(syncState(statusOf(cp, 'hello-1', 'clusters'))).toBe('SYNCED');
    expect(statusOf(cp, 'hello-1', 'clusters')?.ackedVersion).toBe(res.versionInfo);
  });

  it('gives a node that is not in the catalog outbound config only', async () => {
    const cp = await fx.start({ catalog: twoServices() });
    const c = fx.sotw(cp.port);
    c.send({ node: node('stranger', 'none', 16001), typeUrl: typeUrl('listeners') });
    expect(namesOf(await c.next()).sort()).toEqual(['dns|15053', 'outbound|http|16001']);
    c.send({ node: node('stranger'), typeUrl: typeUrl('clusters') });
    expect(namesOf(await c.next()).sort()).toEqual(['hello', 'world']);
  });

  it('records a NACK with its error, does not resend, and recovers on the next change', async () => {
    const cp = await fx.start({ catalog: twoServices() });
    const c = fx.sotw(cp.port);
    c.send({ node: node('hello-1', 'hello'), typeUrl: typeUrl('clusters') });
    const res = await c.next();
    c.send({
      ...ack(res),
      versionInfo: '',
      errorDetail: { code: 3, message: 'cluster hello: bad thing' },
    });
    await c.expectSilence(400);
    const status = statusOf(cp, 'hello-1', 'clusters');
    expect(syncState(status)).toBe('NACKED');
    expect(status?.nack?.message).toBe('cluster hello: bad thing');
    expect(cp.counters.nacks).toBe(1);

    cp.apply(twoServices({ more: [{ name: 'extra' }] }));
    const fixed = await c.next();
    expect(namesOf(fixed)).toContain('extra');
    c.send(ack(fixed));
    await c.expectSilence(200);
    expect(syncState(statusOf(cp, 'hello-1', 'clusters'))).toBe('SYNCED');
  });

  it('ignores requests carrying a stale nonce', async () => {
    const cp = await fx.start({ catalog: twoServices() });
    const c = fx.sotw(cp.port);
    c.send({ node: node('hello-1', 'hello'), typeUrl: typeUrl('clusters') });
    const first = await c.next();
    cp.apply(twoServices({ more: [{ name: 'extra' }] }));
    const second = await c.next();
    expect(second.nonce).not.toBe(first.nonce);
    // Envoy answering the first response after the second was sent: neither ACK nor NACK.
    c.send({ ...ack(first), errorDetail: { code: 3, message: 'late complaint' } });
    await c.expectSilence();
    expect(cp.counters.staleNonces).toBe(1);
    expect(statusOf(cp, 'hello-1', 'clusters')?.nack).toBeUndefined();
  });

  it('serves named EDS subscriptions, with an empty assignment for an unknown name', async () => {
    const cp = await fx.start({ catalog: twoServices() });
    const c = fx.sotw(cp.port);
    c.send({
      node: node('hello-1', 'hello'),
      typeUrl: typeUrl('endpoints'),
      resourceNames: ['world', 'ghost'],
    });
    const res = await c.next();
    const byName = Object.fromEntries((res.resources ?? []).map((r) => [r.clusterName, r]));
    expect(Object.keys(byName).sort()).toEqual(['ghost', 'world']);
    expect(byName.ghost).toEqual({
      '@type': typeUrl('endpoints'),
      clusterName: 'ghost',
    });
    expect(JSON.stringify(byName.world)).toContain('"portValue":19102');
  });

  it('answers a new subscription, stays quiet on unsubscribe, and resends on resubscribe', async () => {
    const cp = await fx.start({ catalog: twoServices() });
    const c = fx.sotw(cp.port);
    c.send({
      node: node('hello-1', 'hello'),
      typeUrl: typeUrl('endpoints'),
      resourceNames: ['world'],
    });
    const r1 = await c.next();
    expect(namesOf(r1)).toEqual(['world']);
    c.send(ack(r1, []));
    await c.expectSilence(200); // nothing to send for an unsubscription
    c.send(ack(r1, ['world', 'hello']));
    // Only what the proxy does not have (both, since it dropped world), versioned as the set.
    const r2 = await c.next();
    expect(namesOf(r2).sort()).toEqual(['hello', 'world']);
    c.send(ack(r2, ['world', 'hello', 'ghost']));
    expect(namesOf(await c.next())).toEqual(['ghost']);
  });

  it('waits for the first catalog before sending anything', async () => {
    const cp = await fx.start();
    const c = fx.sotw(cp.port);
    c.send({ node: node('hello-1', 'hello'), typeUrl: typeUrl('clusters') });
    await c.expectSilence(300);
    cp.apply(twoServices());
    expect(namesOf(await c.next())).toContain('world');
  });

  it('pushes additions clusters → endpoints → routes, and removes routes before clusters', async () => {
    const cp = await fx.start({ catalog: twoServices() });
    const c = fx.sotw(cp.port);
    // Without a DNS listener, whose names (every service's) would add an LDS push here.
    const base = node('hello-1', 'hello');
    const hello = { ...base, metadata: { ...base.metadata, dns_port: 0 } };
    c.send({ node: hello, typeUrl: typeUrl('clusters') });
    c.send({ node: hello, typeUrl: typeUrl('listeners') });
    const initial = await c.take(2);
    for (const r of initial) c.send(ack(r));
    c.send({ typeUrl: typeUrl('endpoints'), resourceNames: ['hello', 'world'] });
    c.send({ typeUrl: typeUrl('routes'), resourceNames: ['outbound'] });
    const subscribed = await c.take(2);
    for (const r of subscribed) {
      c.send(ack(r, r.typeUrl === typeUrl('routes') ? ['outbound'] : ['hello', 'world']));
    }
    const lastEds = subscribed.find((r) => r.typeUrl === typeUrl('endpoints'))!;
    await c.expectSilence(200);

    cp.apply(
      twoServices({
        more: [{ name: 'extra', instances: [{ id: 'e-1', address: '127.0.0.2', port: 80 }] }],
      }),
    );
    // A new cluster (not a changed one) needs no endpoint resend: the proxy subscribes to it.
    // The route to it waits until then (test/xds/warming-hold.test.ts).
    const added = await c.next();
    expect(kindOf(added)).toBe('clusters');
    expect(namesOf(added)).toContain('extra');
    // Like Envoy: subscribe to the new cluster's endpoints, and ACK.
    c.send(ack(lastEds, ['extra', 'hello', 'world']));
    c.send(ack(added));
    const [extraEndpoints, route] = await c.take(2);
    expect([kindOf(extraEndpoints!), kindOf(route!)]).toEqual(['endpoints', 'routes']);
    expect(namesOf(extraEndpoints!)).toEqual(['extra']);
    c.send(ack(extraEndpoints!, ['extra', 'hello', 'world']));
    c.send(ack(route!, ['outbound']));
    await c.expectSilence(200);

    cp.apply(twoServices());
    const removed = await c.take(3);
    // RDS drops its references first; then EDS (an empty assignment: not before the routes
    // have left the cluster, whose requests it would fail); the cluster goes last.
    expect(removed.map(kindOf)).toEqual(['routes', 'endpoints', 'clusters']);
    expect(removed[1]!.resources).toEqual([
      { '@type': typeUrl('endpoints'), clusterName: 'extra' },
    ]);
    expect(namesOf(removed[2]!)).not.toContain('extra');
    expect(JSON.stringify(removed[0])).not.toContain('"extra"');
  });

  it('resends unchanged endpoints after a cluster changes (Envoy issue 13009)', async () => {
    const cp = await fx.start({ catalog: twoServices() });
    const c = fx.sotw(cp.port);
    c.send({ node: node('hello-1', 'hello'), typeUrl: typeUrl('clusters') });
    c.send({
      node: node('hello-1', 'hello'),
      typeUrl: typeUrl('endpoints'),
      resourceNames: ['world'],
    });
    const first = await c.take(2);
    for (const r of first) c.send(ack(r, r.typeUrl === typeUrl('endpoints') ? ['world'] : []));
    await c.expectSilence(200);
    const doc = twoServices() as { services: Array<Record<string, unknown>> };
    doc.services[1]!.protocol = 'http2'; // changes the world cluster, not its endpoints
    cp.apply(doc);
    const after = await c.take(2);
    expect(after.map(kindOf)).toEqual(['clusters', 'endpoints']);
    const eds = after[1]!;
    const edsBefore = first.find((r) => r.typeUrl === typeUrl('endpoints'))!;
    expect(eds.resources).toEqual(edsBefore.resources);
  });

  it('sends streams with the same subscription one shared response, and still tells current ACKs from stale ones', async () => {
    const cp = await fx.start({ catalog: twoServices() });
    const a = fx.sotw(cp.port);
    const b = fx.sotw(cp.port);
    const names = ['hello', 'world'];
    // a has had another response first, so nonces counted per stream would differ.
    a.send({ node: node('hello-1', 'hello'), typeUrl: typeUrl('clusters') });
    a.send(ack(await a.next()));
    a.send({ typeUrl: typeUrl('endpoints'), resourceNames: names });
    b.send({ node: node('world-1', 'world'), typeUrl: typeUrl('endpoints'), resourceNames: names });
    const [a1, b1] = [await a.next(), await b.next()];
    // One response made for both: same nonce, same bytes.
    expect(a1.nonce).toBe(b1.nonce);
    expect(a1).toEqual(b1);
    a.send(ack(a1, names));
    b.send(ack(b1, names));
    await a.expectSilence(200);
    expect(syncState(statusOf(cp, 'hello-1', 'endpoints'))).toBe('SYNCED');

    cp.apply(twoServicesWithWorld2());
    const [a2, b2] = [await a.next(), await b.next()];
    expect(namesOf(a2)).toEqual(['world']); // only what changed
    expect(a2.nonce).toBe(b2.nonce);
    expect(a2.nonce).not.toBe(a1.nonce);
    expect(a2.versionInfo).not.toBe(a1.versionInfo);
    // A late ACK of the first response is stale on a; b's ACK of the current one counts.
    a.send(ack(a1, names));
    b.send(ack(b2, names));
    await a.expectSilence(200);
    expect(cp.counters.staleNonces).toBe(1);
    expect(syncState(statusOf(cp, 'hello-1', 'endpoints'))).toBe('STALE');
    expect(syncState(statusOf(cp, 'world-1', 'endpoints'))).toBe('SYNCED');
    a.send(ack(a2, names));
    await a.expectSilence(200);
    expect(syncState(statusOf(cp, 'hello-1', 'endpoints'))).toBe('SYNCED');
    expect(statusOf(cp, 'hello-1', 'endpoints')?.ackedVersion).toBe(a2.versionInfo);
  });

  it('derives versions from content: a restarted control plane sends the same versions', async () => {
    let cp = await fx.start({ catalog: twoServices() });
    const c1 = fx.sotw(cp.port);
    c1.send({ node: node('hello-1', 'hello'), typeUrl: typeUrl('clusters') });
    const before = await c1.next();
    cp = await fx.start({ catalog: twoServices() });
    const c2 = fx.sotw(cp.port);
    c2.send({ node: node('hello-1', 'hello'), typeUrl: typeUrl('clusters') });
    const after = await c2.next();
    expect(after.versionInfo).toBe(before.versionInfo);
  });
});
