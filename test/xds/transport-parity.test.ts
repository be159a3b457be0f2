// The two ADS transports (serve --xds-transport) side by side: the same scenarios against
// grpc-js and against lucid-mesh's own node:http2 server, with a grpc-js client, a raw HTTP/2
// client (frames a gRPC library will not send) and real Envoys, asserting what a client sees:
// responses, status codes and messages, backpressure, drain and reconnect, TLS.
import { gzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { CertificateAuthority, MemoryCaStore } from '../../src/ca/index.js';
import { parseCatalog } from '../../src/catalog/schema.js';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import type { CallMetadata } from '../../src/xds/ads-call.js';
import {
  ADS_SERVICE,
  DELTA_PATH,
  SOTW_PATH,
  XDS_TRANSPORTS,
  type XdsTls,
  type XdsTransportName,
} from '../../src/xds/ads-transport.js';
import { AuthError, type ProxyAuthenticator } from '../../src/xds/auth.js';
import type { XdsLimits } from '../../src/xds/limits.js';
import {
  adsServiceDefinition,
  decodeDiscoveryResponse,
  type DiscoveryRequest,
} from '../../src/xds/messages.js';
import { XdsCounters } from '../../src/xds/observer.js';
import { XdsServer } from '../../src/xds/server.js';
import {
  ack,
  deltaAck,
  deltaClient,
  namesOf,
  node,
  sotwClient,
  typeUrl,
} from '../support/ads-client.js';
import { bigAssignmentCatalog } from '../support/big-assignment.js';
import { twoServices } from '../support/control-plane.js';
import { startHttpApp } from '../support/http-app.js';
import {
  CatalogFile,
  hasCluster,
  rejectedUpdates,
  startSidecar,
  startTestControlPlane,
  waitReaches,
  type Sidecar,
} from '../support/mesh.js';
import { freePort } from '../support/ports.js';
import { grpcFrame, rawCall } from '../support/raw-grpc.js';
import { waitFor } from '../support/wait.js';

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const encodeSotw = adsServiceDefinition.StreamAggregatedResources!.requestSerialize as (
  r: DiscoveryRequest,
) => Buffer;

/** Accepts `authorization: Bearer good` only, as the token authenticator words its refusal. */
const bearerGood: ProxyAuthenticator = {
  authenticate(metadata: CallMetadata) {
    const header = metadata.get('authorization')[0];
    if (header === 'Bearer good') return Promise.resolve('hello');
    return Promise.reject(
      new AuthError(
        grpc.status.UNAUTHENTICATED,
        'missing-token',
        'no proxy token: expected `authorization: Bearer <token>` metadata',
      ),
    );
  },
};

interface Served {
  readonly server: XdsServer;
  readonly counters: XdsCounters;
  readonly store: SnapshotStore;
  readonly port: number;
  apply(doc: unknown): void;
}

async function serve(
  transport: XdsTransportName,
  opts: {
    limits?: Partial<XdsLimits>;
    authenticator?: ProxyAuthenticator;
    tls?: XdsTls;
    catalog?: unknown;
  } = {},
): Promise<Served> {
  const store = new SnapshotStore({ logger: silentLogger, debounceMs: 10, maxDebounceMs: 50 });
  const counters = new XdsCounters();
  const server = new XdsServer({
    watcher: store,
    observer: counters,
    logger: silentLogger,
    transport,
    ...(opts.limits ? { limits: opts.limits } : {}),
    ...(opts.authenticator ? { authenticator: opts.authenticator } : {}),
  });
  const port = await server.listen('127.0.0.1', 0, opts.tls);
  cleanup.push(() => {
    server.forceClose();
    store.close();
  });
  const apply = (doc: unknown) => {
    store.setCatalog(parseCatalog(doc));
    store.flush();
  };
  apply(opts.catalog ?? twoServices());
  return { server, counters, store, port, apply };
}

function tracked<C extends { close(): void }>(c: C): C {
  cleanup.push(() => c.close());
  return c;
}

describe.each(XDS_TRANSPORTS)('ADS over %s', (transport) => {
  it('SotW: responds, records the ACK and the NACK', async () => {
    const cp = await serve(transport);
    const c = tracked(sotwClient(cp.port));
    c.send({ node: node('hello-1', 'hello'), typeUrl: typeUrl('clusters') });
    const cds = await c.next();
    expect(namesOf(cds).sort()).toEqual(expect.arrayContaining(['world']));
    c.send(ack(cds));
    await waitFor(() => cp.counters.acks === 1, { what: 'the ACK recorded' });
    cp.apply(twoServices({ more: [{ name: 'extra', instances: [] }] }));
    const next = await c.next();
    expect(namesOf(next)).toContain('extra');
    c.send({
      ...ack(next),
      versionInfo: cds.versionInfo,
      errorDetail: { code: 3, message: 'bad cluster ünïcode' },
    });
    await waitFor(() => cp.counters.nacks === 1, { what: 'the NACK recorded' });
    const info = [...cp.server.connected.values()][0];
    expect(info?.types.get('clusters')?.nack?.message).toBe('bad cluster ünïcode');
  });

  it('delta: a wildcard subscription, then only what changed', async () => {
    const cp = await serve(transport);
    const c = tracked(deltaClient(cp.port));
    c.send({ node: node('hello-1', 'hello'), typeUrl: typeUrl('clusters') });
    const first = await c.next();
    expect((first.resources ?? []).map((r) => r.name)).toContain('world');
    c.send(deltaAck(first));
    await waitFor(() => cp.counters.acks === 1, { what: 'the ACK recorded' });
    cp.apply(twoServices({ more: [{ name: 'extra', instances: [] }] }));
    const next = await c.next();
    expect((next.resources ?? []).map((r) => r.name)).toEqual(['extra']);
    c.send(deltaAck(next));
    await waitFor(() => cp.counters.acks === 2, { what: 'the second ACK recorded' });
  });

  it('refuses a stream without the token with UNAUTHENTICATED and its message; serves one with it', async () => {
    const cp = await serve(transport, { authenticator: bearerGood });
    const refused = tracked(sotwClient(cp.port));
    refused.send({ node: node('hello-1', 'hello'), typeUrl: typeUrl('clusters') });
    const err = await refused.ended;
    expect(err?.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(err?.details).toBe('no proxy token: expected `authorization: Bearer <token>` metadata');
    const served = tracked(sotwClient(cp.port, 'good'));
    served.send({ node: node('hello-1', 'hello'), typeUrl: typeUrl('clusters') });
    expect(namesOf(await served.next())).toContain('world');
  });

  it('answers an unknown method with UNIMPLEMENTED (trailers only)', async () => {
    const cp = await serve(transport);
    const client = tracked(
      new grpc.Client(`127.0.0.1:${cp.port}`, grpc.credentials.createInsecure()),
    );
    const path = `/${ADS_SERVICE}/Nonexistent`;
    const call = client.makeBidiStreamRequest(
      path,
      (b: Buffer) => b,
      (b: Buffer) => b,
    );
    const ended = new Promise<grpc.ServiceError>((resolve) => call.on('error', resolve));
    call.write(Buffer.from('x'));
    const err = await ended;
    expect(err.code).toBe(grpc.status.UNIMPLEMENTED);
    expect(err.details).toBe(`The server does not implement the method ${path}`);
    // Raw: a GET is not a gRPC method either; the status comes in the response headers.
    const raw = rawCall(cp.port, '/other.Service/Method');
    raw.write(grpcFrame(Buffer.alloc(0)));
    const res = await raw.done;
    raw.close();
    expect([res.httpStatus, res.status, res.messages.length]).toEqual([200, 12, 0]);
  });

  it('ends a request over --max-request-bytes with RESOURCE_EXHAUSTED', async () => {
    const cp = await serve(transport, { limits: { maxRequestBytes: 4096 } });
    const c = tracked(sotwClient(cp.port));
    c.send({
      node: { ...node('hello-1', 'hello'), userAgentName: 'x'.repeat(5000) },
      typeUrl: typeUrl('clusters'),
    });
    const err = await c.ended;
    expect(err?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(err?.details).toMatch(/^Received message larger than max \(\d+ vs 4096\)$/);
    // Raw: refused from the length prefix alone, before the message is sent.
    const raw = rawCall(cp.port, SOTW_PATH);
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(1 << 30, 1);
    raw.write(prefix);
    const res = await raw.done;
    raw.close();
    expect(res.status).toBe(grpc.status.RESOURCE_EXHAUSTED);
  });

  it('reads gzip-compressed requests; an unknown encoding ends the call with UNIMPLEMENTED', async () => {
    const cp = await serve(transport);
    const request = encodeSotw({ node: node('hello-1', 'hello'), typeUrl: typeUrl('clusters') });
    const gz = tracked(rawCall(cp.port, SOTW_PATH, { 'grpc-encoding': 'gzip' }));
    gz.write(grpcFrame(gzipSync(request), true));
    const [bytes] = await gz.messages(1);
    expect(namesOf(decodeDiscoveryResponse(bytes!))).toContain('world');

    const odd = tracked(rawCall(cp.port, SOTW_PATH, { 'grpc-encoding': 'snappy' }));
    odd.write(grpcFrame(request, true));
    const res = await odd.done;
    expect([res.status, res.message]).toEqual([
      grpc.status.UNIMPLEMENTED,
      'Received message compressed with unsupported encoding "snappy"',
    ]);
  });

  it('reads a message split over many DATA frames, and many messages in one', async () => {
    const cp = await serve(transport);
    const split = tracked(rawCall(cp.port, SOTW_PATH));
    const frame = grpcFrame(
      encodeSotw({ node: node('hello-1', 'hello'), typeUrl: typeUrl('clusters') }),
    );
    for (let i = 0; i < frame.length; i += 3) {
      split.write(frame.subarray(i, i + 3));
      if (i % 30 === 0) await new Promise((r) => setImmediate(r));
    }
    const [cds] = await split.messages(1);
    expect(namesOf(decodeDiscoveryResponse(cds!))).toContain('world');

    const many = tracked(rawCall(cp.port, SOTW_PATH));
    many.write(
      Buffer.concat([
        grpcFrame(encodeSotw({ node: node('hello-2', 'hello'), typeUrl: typeUrl('clusters') })),
        grpcFrame(encodeSotw({ typeUrl: typeUrl('listeners') })),
        grpcFrame(encodeSotw({ typeUrl: typeUrl('endpoints'), resourceNames: ['world'] })),
      ]),
    );
    const kinds = (await many.messages(3)).map((m) => decodeDiscoveryResponse(m).typeUrl).sort();
    expect(kinds).toEqual([typeUrl('clusters'), typeUrl('endpoints'), typeUrl('listeners')].sort());
  });

  it('a reader that stops gets changes coalesced, then the latest state', async () => {
    const cp = await serve(transport, { catalog: bigAssignmentCatalog(-1) });
    const c = tracked(sotwClient(cp.port));
    c.send({ node: node('slow-1', 'slow'), typeUrl: typeUrl('endpoints'), resourceNames: ['big'] });
    c.send(ack(await c.next(), ['big']));
    await c.expectSilence(100);
    c.pause();
    const CHANGES = 150;
    const before = cp.counters.responses;
    for (let i = 0; i < CHANGES; i++) cp.apply(bigAssignmentCatalog(i));
    expect(cp.counters.responses - before).toBeLessThan(CHANGES / 2);
    c.resume();
    let last;
    for (;;) {
      last = await c.next(5000);
      const text = JSON.stringify(last.resources);
      if (!text.includes('"big-149"') && text.includes('"big-148"')) break;
    }
    await c.expectSilence(300);
  });

  it('drain: ends streams with UNAVAILABLE and stops listening', async () => {
    const cp = await serve(transport);
    const c = tracked(sotwClient(cp.port));
    c.send({ node: node('hello-1', 'hello'), typeUrl: typeUrl('clusters') });
    await c.next();
    const drained = cp.server.drain(5000);
    const err = await c.ended;
    expect(err?.code).toBe(grpc.status.UNAVAILABLE);
    expect(err?.details).toContain('drain');
    await drained;
    const late = tracked(sotwClient(cp.port));
    late.send({ node: node('hello-2', 'hello'), typeUrl: typeUrl('clusters') });
    expect((await late.ended)?.code).toBe(grpc.status.UNAVAILABLE);
  });

  it('refuses streams past --max-streams with RESOURCE_EXHAUSTED; a cancelled one frees its place', async () => {
    const cp = await serve(transport, { limits: { maxStreams: 1 } });
    const first = sotwClient(cp.port);
    first.send({ node: node('hello-1', 'hello'), typeUrl: typeUrl('clusters') });
    await first.next();
    const second = tracked(sotwClient(cp.port));
    second.send({ node: node('hello-2', 'hello'), typeUrl: typeUrl('clusters') });
    const err = await second.ended;
    expect(err?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(err?.details).toContain('--max-streams');
    first.close(); // the client goes away: RST_STREAM, seen as cancelled
    await waitFor(() => cp.server.connected.size === 0, { what: 'the cancelled stream closed' });
    const third = tracked(sotwClient(cp.port));
    third.send({ node: node('hello-3', 'hello'), typeUrl: typeUrl('clusters') });
    expect(namesOf(await third.next())).toContain('world');
  });

  it('serves over TLS (h2), closes a stream the client cancels, refuses plaintext', async () => {
    const ca = await CertificateAuthority.open({ store: new MemoryCaStore() });
    const leaf = await ca.issueLeaf('lucid-mesh');
    const cp = await serve(transport, {
      tls: { cert: leaf.certChainPem, key: leaf.privateKeyPem },
    });
    const creds = grpc.credentials.createSsl(Buffer.from(ca.trustBundlePem()), null, null, {
      checkServerIdentity: () => undefined,
    });
    const AdsClient = grpc.makeGenericClientConstructor(adsServiceDefinition, 'ADS');
    const client = tracked(new AdsClient(`127.0.0.1:${cp.port}`, creds));
    const call = (
      client as unknown as {
        StreamAggregatedResources(): grpc.ClientDuplexStream<DiscoveryRequest, Buffer>;
      }
    ).StreamAggregatedResources();
    const first = new Promise<Buffer>((resolve, reject) => {
      call.once('data', resolve);
      call.once('error', reject);
    });
    call.write({ node: node('hello-1', 'hello'), typeUrl: typeUrl('clusters') });
    expect(namesOf(decodeDiscoveryResponse(await first))).toContain('world');
    expect(cp.server.connected.size).toBe(1);
    // The client cancels (RST_STREAM): the server closes the stream.
    call.on('error', () => undefined);
    call.cancel();
    await waitFor(() => cp.server.connected.size === 0, { what: 'the cancelled stream closed' });
    const plain = tracked(sotwClient(cp.port));
    plain.send({ node: node('x', 'hello'), typeUrl: typeUrl('clusters') });
    expect((await plain.ended)?.code).toBe(grpc.status.UNAVAILABLE);
  });

  it('real Envoys over TLS (SotW and delta) are configured, then reconnect after a drain', async () => {
    const ca = await CertificateAuthority.open({ store: new MemoryCaStore() });
    const leaf = await ca.issueLeaf('lucid-mesh');
    const xdsTls = { cert: leaf.certChainPem, key: leaf.privateKeyPem };
    const app = await startHttpApp('web');
    cleanup.push(() => app.close());
    const catalog = new CatalogFile();
    cleanup.push(() => catalog.remove());
    const web = { name: 'web', instances: [{ id: 'web-1', address: '127.0.0.1', port: app.port }] };
    catalog.write({ services: [web] });
    const xdsPort = await freePort();
    const first = await startTestControlPlane(
      catalog,
      { xds: xdsPort },
      { xdsTls, xdsTransport: transport },
    );
    const running = [first];
    cleanup.push(() => Promise.all(running.splice(0).map((cp) => cp.stop())));
    const sidecars: Sidecar[] = await Promise.all(
      (['sotw', 'delta'] as const).map((mode) =>
        startSidecar({
          nodeId: `client-${mode}`,
          service: 'client',
          xdsPort,
          mode,
          xdsCaPem: ca.trustBundlePem(),
        }),
      ),
    );
    cleanup.push(() => Promise.all(sidecars.map((s) => s.envoy.stop())));
    for (const s of sidecars)
      await waitReaches(s, 'web', `${s.envoy.name} → web over ${transport}`);
    expect(first.counters.nacks).toBe(0);

    // Drain: every Envoy's stream is ended; a replica on the same address takes them over.
    await first.drain(5000);
    await running.shift()!.stop();
    catalog.write({ services: [web, { name: 'api', instances: [] }] });
    const second = await startTestControlPlane(
      catalog,
      { xds: xdsPort },
      { xdsTls, xdsTransport: transport },
    );
    running.push(second);
    for (const s of sidecars) {
      await s.envoy.waitFor(
        () => hasCluster(s.envoy, 'api'),
        `${s.envoy.name} reconnected and got api`,
        20_000,
      );
      await waitReaches(s, 'web', `${s.envoy.name} → web after the reconnect`);
      expect(await rejectedUpdates(s.envoy)).toBe(0);
    }
    expect(second.counters.nacks).toBe(0);
  });
});

describe('not gRPC at all', () => {
  it('a DATA stream on an ADS path without the gRPC content-type gets HTTP 415 from both', async () => {
    for (const transport of XDS_TRANSPORTS) {
      const cp = await serve(transport);
      const raw = rawCall(cp.port, DELTA_PATH, { 'content-type': 'application/json' });
      raw.write(Buffer.from('{}'));
      const res = await raw.done;
      raw.close();
      expect(res.httpStatus, transport).toBe(415);
    }
  });
});
