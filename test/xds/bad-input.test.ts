// Malformed requests get a clear gRPC error or are ignored; the server keeps serving others.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { namesOf, node, sotwClient, deltaClient, typeUrl } from '../support/ads-client.js';
import { startControlPlane, twoServices, type TestControlPlane } from '../support/control-plane.js';

let cp: TestControlPlane | undefined;
afterEach(async () => {
  await cp?.close();
  cp = undefined;
});

describe('bad input', () => {
  it('rejects a first request without node with INVALID_ARGUMENT', async () => {
    cp = await startControlPlane({ catalog: twoServices() });
    const c = sotwClient(cp.port);
    c.send({ typeUrl: typeUrl('clusters') });
    const err = await c.ended;
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err?.details).toBe('the first request on a stream must carry node');
    c.close();
  });

  it('rejects garbage node metadata naming the field', async () => {
    cp = await startControlPlane({ catalog: twoServices() });
    const c = deltaClient(cp.port);
    c.send({
      node: { id: 'x', metadata: { outbound_port: 'eighty' } },
      typeUrl: typeUrl('clusters'),
    });
    const err = await c.ended;
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err?.details).toBe(
      'node.metadata.outbound_port: expected integer 1-65535, got "eighty"',
    );
    c.close();
  });

  it('ignores an unknown type_url and keeps the stream working', async () => {
    cp = await startControlPlane({ catalog: twoServices() });
    const c = sotwClient(cp.port);
    c.send({
      node: node('hello-1', 'hello'),
      typeUrl: 'type.googleapis.com/envoy.config.nothing.v3.Nothing',
    });
    await c.expectSilence(200);
    c.send({ typeUrl: typeUrl('clusters') });
    expect(namesOf(await c.next())).toContain('world');
    expect(cp.counters.badRequests).toBe(1);
    c.close();
  });

  it('survives bytes that are not a DiscoveryRequest', async () => {
    cp = await startControlPlane({ catalog: twoServices() });
    const raw = new grpc.Client(`127.0.0.1:${cp.port}`, grpc.credentials.createInsecure());
    const call = raw.makeBidiStreamRequest(
      '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources',
      (b: Buffer) => b,
      (b: Buffer) => b,
    );
    const ended = new Promise<grpc.ServiceError | undefined>((resolve) => {
      call.on('error', resolve);
      call.on('end', () => resolve(undefined));
    });
    call.on('data', () => undefined);
    call.write(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01])); // length far beyond the message
    const err = await ended;
    expect(err?.code).not.toBe(grpc.status.OK);
    raw.close();

    const c = sotwClient(cp.port);
    c.send({ node: node('hello-1', 'hello'), typeUrl: typeUrl('clusters') });
    expect(namesOf(await c.next())).toContain('hello');
    c.close();
  });
});
