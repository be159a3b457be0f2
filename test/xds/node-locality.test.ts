// A proxy's locality: Envoy's node.locality (region, zone) and node.metadata.datacenter, as
// `lucid-mesh bootstrap --datacenter/--region/--zone` writes them, read into
// ProxyIdentity.locality; and over a real ADS stream, into the connected stream's identity.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import type { ProxyIdentity } from '../../src/catalog/model.js';
import type { NodeMessage } from '../../src/xds/messages.js';
import { InvalidNodeError, proxyIdentityOf } from '../../src/xds/node.js';
import { deltaClient, namesOf, node, sotwClient, typeUrl } from '../support/ads-client.js';
import { startControlPlane, twoServices, type TestControlPlane } from '../support/control-plane.js';
import { waitFor } from '../support/wait.js';

/** The ads-client's node with a locality, as Envoy sends it from a generated bootstrap. */
function located(
  id: string,
  service: string,
  locality: { datacenter?: unknown; region?: unknown; zone?: unknown; subZone?: unknown },
): NodeMessage {
  const base = node(id, service);
  const { datacenter, ...rest } = locality;
  return {
    ...base,
    metadata: { ...base.metadata, ...(datacenter !== undefined ? { datacenter } : {}) },
    ...(Object.keys(rest).length > 0 ? { locality: rest as NodeMessage['locality'] } : {}),
  };
}

describe('proxyIdentityOf: locality', () => {
  it('reads region, zone and metadata.datacenter', () => {
    expect(
      proxyIdentityOf(located('web-1', 'web', { datacenter: 'dc1', region: 'eu', zone: 'eu-1a' })),
    ).toEqual({
      nodeId: 'web-1',
      service: 'web',
      outboundPort: 15001,
      locality: { datacenter: 'dc1', region: 'eu', zone: 'eu-1a' },
      dnsPort: 15053,
    });
  });

  it.each([
    [{ datacenter: 'dc2' }, { datacenter: 'dc2' }],
    [{ zone: 'z.1_b-2' }, { zone: 'z.1_b-2' }],
    [{ region: 'R1', subZone: 'rack-7' }, { region: 'R1' }], // sub_zone is not used
    [{ region: 'r', zone: '' }, { region: 'r' }], // protobuf's unset string
  ])('only the parts that are set: %j -> %j', (given, locality) => {
    expect(proxyIdentityOf(located('n', 's', given)).locality).toEqual(locality);
  });

  it('no locality: the identity is exactly as before (no locality key at all)', () => {
    const before: ProxyIdentity = {
      nodeId: 'web-1',
      service: 'web',
      outboundPort: 15001,
      dnsPort: 15053,
    };
    for (const n of [
      node('web-1', 'web'),
      located('web-1', 'web', { region: '', zone: '', subZone: 'x' }),
      { ...node('web-1', 'web'), locality: {} },
    ]) {
      const identity = proxyIdentityOf(n);
      expect(identity).toStrictEqual(before);
      expect(Object.keys(identity)).not.toContain('locality');
      expect(JSON.stringify(identity)).toBe(JSON.stringify(before));
    }
  });

  it.each([
    [{ datacenter: 7 }, 'node.metadata.datacenter', '7'],
    [{ datacenter: { name: 'dc1' } }, 'node.metadata.datacenter', '{"name":"dc1"}'],
    [{ datacenter: 'dc 1' }, 'node.metadata.datacenter', '"dc 1"'],
    [{ region: '-eu' }, 'node.locality.region', '"-eu"'],
    [{ zone: 'a/b' }, 'node.locality.zone', '"a/b"'],
    [{ zone: 'z'.repeat(64) }, 'node.locality.zone', `"${'z'.repeat(64)}"`],
    [{ zone: true }, 'node.locality.zone', 'true'],
  ])('%j -> InvalidNodeError naming %s and the value', (given, field, shown) => {
    expect(() => proxyIdentityOf(located('n', 's', given))).toThrow(InvalidNodeError);
    expect(() => proxyIdentityOf(located('n', 's', given))).toThrow(
      `${field}: expected a name (letters, digits, . _ -; up to 63, a letter or digit first), got ${shown}`,
    );
  });
});

describe('a node locality over ADS', () => {
  let cp: TestControlPlane | undefined;
  afterEach(async () => {
    await cp?.close();
    cp = undefined;
  });

  const connectedProxy = (id: string) =>
    waitFor(
      () => [...(cp?.server.connected.values() ?? [])].find((s) => s.proxy?.nodeId === id)?.proxy,
      { what: `${id} identified` },
    );

  it.each(['sotw', 'delta'] as const)(
    '%s: the connected stream carries proxy.locality; a node without one has none',
    async (mode) => {
      cp = await startControlPlane({ catalog: twoServices() });
      const client = mode === 'sotw' ? sotwClient(cp.port) : deltaClient(cp.port);
      const plain = mode === 'sotw' ? sotwClient(cp.port) : deltaClient(cp.port);
      try {
        client.send({
          node: located('hello-1', 'hello', { datacenter: 'dc2', region: 'eu', zone: 'eu-1b' }),
          typeUrl: typeUrl('clusters'),
        });
        plain.send({ node: node('world-1', 'world'), typeUrl: typeUrl('clusters') });
        // Served as any other proxy.
        expect(namesOf(await client.next())).toContain('world');
        expect(namesOf(await plain.next())).toContain('hello');
        expect(await connectedProxy('hello-1')).toEqual({
          nodeId: 'hello-1',
          service: 'hello',
          outboundPort: 15001,
          locality: { datacenter: 'dc2', region: 'eu', zone: 'eu-1b' },
          dnsPort: 15053,
        });
        expect(await connectedProxy('world-1')).toStrictEqual({
          nodeId: 'world-1',
          service: 'world',
          outboundPort: 15001,
          dnsPort: 15053,
        });
      } finally {
        client.close();
        plain.close();
      }
    },
  );

  it('an invalid locality ends the stream with INVALID_ARGUMENT naming the field', async () => {
    cp = await startControlPlane({ catalog: twoServices() });
    const c = deltaClient(cp.port);
    c.send({
      node: located('hello-1', 'hello', { zone: 'eu west' }),
      typeUrl: typeUrl('clusters'),
    });
    const err = await c.ended;
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err?.details).toBe(
      'node.locality.zone: expected a name (letters, digits, . _ -; up to 63, a letter or digit first), got "eu west"',
    );
    c.close();
  });
});
