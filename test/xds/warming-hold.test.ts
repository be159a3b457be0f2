// Make-before-break for new clusters (src/xds/warming-hold.ts): a route to a new cluster goes
// out only once the proxy has that cluster's endpoints (Envoy keeps the cluster warming, and
// a request routed to it fails with 503 NC, until then); a cluster it replaces stays until
// the route has moved. SotW and delta, against the real server in-process.
import { describe, expect, it } from 'vitest';
import {
  ack,
  deltaAck,
  kindOf,
  namesOf,
  node,
  typeUrl,
  versionsOf,
  type DeltaStreamClient,
  type SotwStreamClient,
} from '../support/ads-client.js';
import { protocolFixture, twoServices } from '../support/control-plane.js';
import { MAX_WARMING_HOLD_MS } from '../../src/xds/warming-hold.js';
import type { DiscoveryRequest } from '../../src/xds/messages.js';

const fx = protocolFixture();

const withService = (name: string) =>
  twoServices({
    more: [{ name, instances: [{ id: `${name}-1`, address: '127.0.0.2', port: 80 }] }],
  });

// Without a DNS listener (its names are every service's: it would add an LDS push).
const base = node('hello-1', 'hello');
const hello = { ...base, metadata: { ...base.metadata, dns_port: 0 } };
const routeText = (res: unknown) => JSON.stringify(res);

/** A SotW client holding clusters, listeners, the route and `eds` endpoints, all ACKed. */
async function sotwSynced(
  port: number,
  eds: string[],
): Promise<SotwStreamClient & { eds: DiscoveryRequest }> {
  const c = fx.sotw(port);
  c.send({ node: hello, typeUrl: typeUrl('clusters') });
  c.send({ node: hello, typeUrl: typeUrl('listeners') });
  for (const r of await c.take(2)) c.send(ack(r));
  c.send({ typeUrl: typeUrl('endpoints'), resourceNames: eds });
  c.send({ typeUrl: typeUrl('routes'), resourceNames: ['outbound'] });
  let lastEds: DiscoveryRequest | undefined;
  for (const r of await c.take(2)) {
    const isRoute = kindOf(r) === 'routes';
    c.send(ack(r, isRoute ? ['outbound'] : eds));
    if (!isRoute) lastEds = ack(r, eds);
  }
  await c.expectSilence(200);
  return Object.assign(c, { eds: lastEds! });
}

describe('SotW: updates that may refer to a new cluster wait for its endpoints', () => {
  it('a new service: cluster, then (once subscribed) endpoints and route; a replaced one goes last', async () => {
    const cp = await fx.start({ catalog: withService('extra') });
    const c = await sotwSynced(cp.port, ['extra', 'hello', 'world']);

    // extra2 replaces extra: the route moves from one cluster to the other.
    cp.apply(withService('extra2'));
    const clusters = await c.next();
    expect(kindOf(clusters)).toBe('clusters');
    // The old cluster is kept while the route may still send requests to it.
    expect(namesOf(clusters)).toEqual(expect.arrayContaining(['extra', 'extra2']));
    c.send(ack(clusters));
    await c.expectSilence(300); // no route to a cluster that is still warming

    c.send({ ...c.eds, resourceNames: ['extra', 'extra2', 'hello', 'world'] });
    const [endpoints, route, emptied, removal] = await c.take(4);
    expect([endpoints, route, emptied, removal].map((r) => kindOf(r!))).toEqual([
      'endpoints',
      'routes',
      'endpoints',
      'clusters',
    ]);
    expect(namesOf(endpoints!)).toEqual(['extra2']);
    expect(routeText(route)).toContain('"extra2"');
    expect(routeText(route)).not.toContain('"extra"');
    // The old cluster's assignment is emptied only once no route sends requests to it.
    expect(emptied!.resources).toEqual([{ '@type': typeUrl('endpoints'), clusterName: 'extra' }]);
    expect(namesOf(removal!)).toContain('extra2');
    expect(namesOf(removal!)).not.toContain('extra');
  });

  it('rejected clusters (NACK) release what was held at once', async () => {
    const cp = await fx.start({ catalog: twoServices() });
    const c = await sotwSynced(cp.port, ['hello', 'world']);
    cp.apply(withService('extra'));
    const clusters = await c.next();
    expect(kindOf(clusters)).toBe('clusters');
    c.send({ ...ack(clusters), versionInfo: '', errorDetail: { code: 3, message: 'bad cluster' } });
    const route = await c.next(500);
    expect(kindOf(route)).toBe('routes');
    expect(routeText(route)).toContain('"extra"');
  });

  it(`a proxy that never asks for the endpoints gets the held updates after ${MAX_WARMING_HOLD_MS} ms`, async () => {
    const cp = await fx.start({ catalog: twoServices() });
    const c = await sotwSynced(cp.port, ['hello', 'world']);
    cp.apply(withService('extra'));
    const clusters = await c.next();
    const sentAt = performance.now();
    c.send(ack(clusters));
    const route = await c.next(MAX_WARMING_HOLD_MS + 2000);
    expect(kindOf(route)).toBe('routes');
    expect(performance.now() - sentAt).toBeGreaterThan(MAX_WARMING_HOLD_MS - 200);
  });
});

/** A delta client holding every cluster, the route and `eds` endpoints, all ACKed. */
async function deltaSynced(port: number, eds: string[]): Promise<DeltaStreamClient> {
  const c = fx.delta(port);
  c.send({ node: hello, typeUrl: typeUrl('clusters') });
  c.send(deltaAck(await c.next()));
  c.send({ typeUrl: typeUrl('endpoints'), resourceNamesSubscribe: eds });
  c.send({ typeUrl: typeUrl('routes'), resourceNamesSubscribe: ['outbound'] });
  for (const r of await c.take(2)) c.send(deltaAck(r));
  await c.expectSilence(200);
  return c;
}

describe('delta: updates that may refer to a new cluster wait for its endpoints', () => {
  it('a new service: cluster, then (once subscribed) endpoints and route; a replaced one goes last', async () => {
    const cp = await fx.start({ catalog: withService('extra') });
    const c = await deltaSynced(cp.port, ['extra', 'hello', 'world']);

    cp.apply(withService('extra2'));
    const clusters = await c.next();
    expect(kindOf(clusters)).toBe('clusters');
    expect(Object.keys(versionsOf(clusters))).toEqual(['extra2']);
    expect(clusters.removedResources ?? []).toEqual([]);
    c.send(deltaAck(clusters));
    await c.expectSilence(300);

    c.send({ typeUrl: typeUrl('endpoints'), resourceNamesSubscribe: ['extra2'] });
    const [endpoints, route, emptied, removal] = await c.take(4);
    expect([endpoints, route, emptied, removal].map((r) => kindOf(r!))).toEqual([
      'endpoints',
      'routes',
      'endpoints',
      'clusters',
    ]);
    expect(Object.keys(versionsOf(endpoints!))).toEqual(['extra2']);
    expect(routeText(route)).toContain('"extra2"');
    expect(routeText(route)).not.toContain('"extra"');
    expect(Object.keys(versionsOf(emptied!))).toEqual(['extra']);
    expect(removal!.removedResources).toEqual(['extra']);
  });
});
