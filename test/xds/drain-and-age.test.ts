// A replica leaving (drain on SIGTERM) and streams aging out (--max-stream-age), over real
// gRPC in-process: streams end with UNAVAILABLE so a sidecar reconnects elsewhere, the port
// stops accepting, /ready says 503 from the start of the drain.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { parseCatalog } from '../../src/catalog/schema.js';
import { haCliOptions } from '../../src/cli/ha-flags.js';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { XdsCounters } from '../../src/xds/observer.js';
import { XdsServer } from '../../src/xds/server.js';
import type { XdsLimits } from '../../src/xds/limits.js';
import { ack, node, sotwClient, typeUrl } from '../support/ads-client.js';
import { twoServices } from '../support/control-plane.js';
import { httpGet } from '../support/http-app.js';
import { CatalogFile, startTestControlPlane } from '../support/mesh.js';

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function server(limits: Partial<XdsLimits> = {}) {
  const store = new SnapshotStore({ logger: silentLogger, debounceMs: 10, maxDebounceMs: 50 });
  store.setCatalog(parseCatalog(twoServices()));
  store.flush();
  const xds = new XdsServer({
    watcher: store,
    observer: new XdsCounters(),
    logger: silentLogger,
    limits,
  });
  const port = await xds.listen('127.0.0.1', 0);
  cleanup.push(() => {
    xds.forceClose();
    store.close();
  });
  return { xds, port };
}

function connect(port: number, id: string) {
  const c = sotwClient(port);
  cleanup.push(() => c.close());
  c.send({ node: node(id, 'hello'), typeUrl: typeUrl('clusters') });
  return c;
}

describe('drain', () => {
  it('ends every stream with UNAVAILABLE, then refuses new ones; resolves when they are gone', async () => {
    const { xds, port } = await server();
    const a = connect(port, 'hello-1');
    const b = connect(port, 'hello-2');
    await Promise.all([a.next(), b.next()]);
    expect(xds.connected.size).toBe(2);
    const started = performance.now();
    await xds.drain(5_000);
    const tookMs = performance.now() - started;
    for (const ended of [await a.ended, await b.ended]) {
      expect(ended?.code).toBe(grpc.status.UNAVAILABLE);
      expect(ended?.details).toMatch(/reconnect to another replica/);
    }
    expect(xds.connected.size).toBe(0);
    expect(tookMs).toBeLessThan(4_000); // not the timeout: the streams went
    const late = sotwClient(port);
    cleanup.push(() => late.close());
    late.send({ node: node('hello-3', 'hello'), typeUrl: typeUrl('clusters') });
    expect((await late.ended)?.code).toBe(grpc.status.UNAVAILABLE);
  });

  it('/ready is 503 from the moment the drain starts', async () => {
    const catalog = new CatalogFile();
    cleanup.push(() => catalog.remove());
    catalog.write(twoServices());
    const cp = await startTestControlPlane(catalog);
    cleanup.push(() => cp.stop());
    const ready = () => httpGet(`http://127.0.0.1:${cp.adminPort}/ready`);
    await expect.poll(async () => (await ready()).status, { timeout: 10_000 }).toBe(200);
    const c = connect(cp.xdsPort, 'hello-1');
    await c.next();
    const drained = cp.drain(5_000);
    const during = await ready();
    expect(during.status).toBe(503);
    expect(during.body).toMatch(/draining/);
    await drained;
    expect((await c.ended)?.code).toBe(grpc.status.UNAVAILABLE);
  });
});

describe('--max-stream-age', () => {
  it('closes a stream after the age ±10 %, not before', async () => {
    const { port } = await server({ maxStreamAgeMs: 1_000 });
    const c = connect(port, 'hello-1');
    c.send(ack(await c.next()));
    const opened = performance.now();
    const ended = await c.ended;
    const ageMs = performance.now() - opened;
    expect(ended?.code).toBe(grpc.status.UNAVAILABLE);
    expect(ended?.details).toMatch(/--max-stream-age/);
    expect(ageMs).toBeGreaterThanOrEqual(850);
    expect(ageMs).toBeLessThan(2_000);
  });

  it('waits for the ACK of a response in flight', async () => {
    const { port } = await server({ maxStreamAgeMs: 500 });
    const c = connect(port, 'hello-1');
    const res = await c.next(); // not ACKed yet
    let endedAt: number | undefined;
    void c.ended.then(() => (endedAt = performance.now()));
    await new Promise((r) => setTimeout(r, 1_200));
    expect(endedAt).toBeUndefined();
    const ackedAt = performance.now();
    c.send(ack(res));
    expect((await c.ended)?.code).toBe(grpc.status.UNAVAILABLE);
    expect(endedAt! - ackedAt).toBeLessThan(1_500);
  });

  it('0 never closes a stream', async () => {
    const { xds, port } = await server({ maxStreamAgeMs: 0 });
    const c = connect(port, 'hello-1');
    c.send(ack(await c.next()));
    await c.expectSilence(800);
    expect(xds.connected.size).toBe(1);
  });
});

describe('serve flags --drain-seconds and --max-stream-age', () => {
  const option = (long: string) => haCliOptions().find((o) => o.long === long)!;
  const parse = (long: string, value: string): unknown => option(long).parseArg!(value, undefined);

  it('parse durations and seconds, with env vars and documented defaults', () => {
    expect(parse('--max-stream-age', '30m')).toBe(1_800_000);
    expect(parse('--max-stream-age', '90s')).toBe(90_000);
    expect(parse('--max-stream-age', '0')).toBe(0);
    expect(parse('--drain-seconds', '5')).toBe(5);
    expect(option('--drain-seconds').envVar).toBe('LUCID_DRAIN_SECONDS');
    expect(option('--max-stream-age').envVar).toBe('LUCID_MAX_STREAM_AGE');
    expect(option('--drain-seconds').defaultValue).toBe(10);
    expect(option('--max-stream-age').defaultValue).toBe(30 * 60_000);
    expect(option('--max-stream-age').defaultValueDescription).toBe('30m');
  });

  it.each([
    ['--drain-seconds', '0', '--drain-seconds: expected whole seconds 1-3600, got "0"'],
    ['--drain-seconds', '1.5', '--drain-seconds: expected whole seconds 1-3600, got "1.5"'],
    ['--max-stream-age', '5s', '--max-stream-age: expected 0 (never) or a duration from 10s to 7d'],
    ['--max-stream-age', '30', '--max-stream-age: expected 0 (never) or a duration'],
    ['--max-stream-age', '8d', 'got "8d"'],
  ])('%s %s is refused, naming the flag and the value', (long, value, message) => {
    expect(() => parse(long, value)).toThrow(message);
  });
});
