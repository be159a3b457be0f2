// The mesh event stream on a real RabbitMQ (one broker for the file): what a consumer bound to
// the exchange receives from a running control plane, through a 20 s broker outage, with a
// full outbox, with a bad broker URL; and `lucid-mesh events` printing them.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import amqp from 'amqplib';
import { pino, type Logger } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startControlPlane, type RunningControlPlane } from '../../src/app.js';
import { openCa, type OpenedCa } from '../../src/ca/open.js';
import { parseBrokerUrl } from '../../src/events/amqp-url.js';
import type { AnyEventEnvelope, EventEnvelope } from '../../src/events/envelope.js';
import { FileSource } from '../../src/sources/file-source.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { makeAdminTls, type AdminTlsFiles } from '../support/admin-tls.js';
import { node, sotwClient, typeUrl } from '../support/ads-client.js';
import { plainServeArgs, spawnCli } from '../support/cli-process.js';
import { startTcpProxy } from '../support/etcd.js';
import { httpGet } from '../support/http-app.js';
import { CatalogFile } from '../support/mesh.js';
import { freePorts } from '../support/ports.js';
import {
  RABBITMQ_START_TIMEOUT_MS,
  startRabbitMq,
  type RabbitMqHandle,
} from '../support/rabbitmq.js';
import { waitFor } from '../support/wait.js';

let broker: RabbitMqHandle;
// A self-signed certificate for the broker's AMQPS listener (its own CA).
let tls: AdminTlsFiles;
const cleanups: Array<() => Promise<void> | void> = [];

beforeAll(async () => {
  tls = makeAdminTls();
  broker = await startRabbitMq('events', { tls: { certFile: tls.certFile, keyFile: tls.keyFile } });
}, RABBITMQ_START_TIMEOUT_MS + 30_000);
afterAll(async () => {
  await broker?.remove();
  if (tls) rmSync(tls.dir, { recursive: true, force: true });
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Received {
  readonly key: string;
  readonly envelope: AnyEventEnvelope;
  readonly props: amqp.MessageProperties;
}

/** A consumer on a queue bound to `exchange`; durable queues outlive a broker restart. */
async function consume(
  url: string,
  exchange: string,
  opts: { queue?: string; bindings?: string[] } = {},
): Promise<{ received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  let conn: amqp.ChannelModel | undefined;
  let closed = false;
  const attach = async (): Promise<void> => {
    const c = await amqp.connect(url, { timeout: 2_000 });
    c.on('error', () => undefined);
    const ch = await c.createChannel();
    await ch.assertExchange(exchange, 'topic', { durable: true });
    const { queue } = opts.queue
      ? await ch.assertQueue(opts.queue, { durable: true })
      : await ch.assertQueue('', { exclusive: true });
    for (const b of opts.bindings ?? ['#']) await ch.bindQueue(queue, exchange, b);
    await ch.consume(queue, (msg) => {
      if (!msg) return;
      received.push({
        key: msg.fields.routingKey,
        envelope: JSON.parse(msg.content.toString()) as AnyEventEnvelope,
        props: msg.properties,
      });
      ch.ack(msg);
    });
    conn = c;
    // A durable queue's consumer comes back after a broker restart.
    c.on('close', () => {
      conn = undefined;
      if (!closed && opts.queue) void reattach();
    });
  };
  const reattach = async (): Promise<void> => {
    while (!closed) {
      try {
        await attach();
        return;
      } catch {
        await sleep(250);
      }
    }
  };
  await attach();
  return {
    received,
    async close() {
      closed = true;
      await conn?.close().catch(() => undefined);
    },
  };
}

const catalogWith = (worldPort: number): unknown => ({
  services: [
    { name: 'hello', instances: [{ id: 'hello-1', address: '127.0.0.1', port: 9101 }] },
    { name: 'world', instances: [{ id: 'world-1', address: '127.0.0.1', port: worldPort }] },
  ],
});

async function controlPlane(opts: {
  url: string;
  exchange: string;
  catalog: CatalogFile;
  ca?: OpenedCa;
  outboxMaxBytes?: number;
  outboxDir?: string;
  /** PEM CA for an amqps:// URL. */
  amqpCa?: string;
  logger?: Logger;
}): Promise<RunningControlPlane> {
  const outboxDir = opts.outboxDir ?? mkdtempSync(join(tmpdir(), 'lucid-outbox-'));
  const cp = await startControlPlane({
    source: new FileSource(opts.catalog.path, silentLogger),
    logger: opts.logger ?? silentLogger,
    host: '127.0.0.1',
    xdsPort: 0,
    adminPort: 0,
    debounceMs: 20,
    maxDebounceMs: 200,
    security: opts.ca ? { ca: opts.ca, mtls: true, auth: 'none', adminAuth: 'none' } : undefined,
    eventStream: {
      url: parseBrokerUrl(opts.url, '--events-amqp'),
      flag: '--events-amqp',
      exchange: opts.exchange,
      ...(opts.amqpCa !== undefined ? { ca: opts.amqpCa } : {}),
      outboxDir,
      outboxMaxBytes: opts.outboxMaxBytes ?? 64 * 1024 * 1024,
      replica: 'replica-a',
      maxRetryMs: 1_000,
    },
  });
  cleanups.push(async () => {
    await cp.stop();
    rmSync(outboxDir, { recursive: true, force: true });
  });
  return cp;
}

function newCatalog(doc: unknown): CatalogFile {
  const catalog = new CatalogFile();
  catalog.write(doc);
  cleanups.push(() => catalog.remove());
  return catalog;
}

const ofKey = <K extends AnyEventEnvelope['key']>(received: Received[], key: K) =>
  received.filter((r) => r.key === key).map((r) => r.envelope as EventEnvelope<K>);

/** A mesh.changed whose field diff shows world's endpoint port becoming `port`. */
function showsWorldPort(e: EventEnvelope<'mesh.changed'>, port: number): boolean {
  return e.data.resources.some(
    (r) =>
      r.type === 'endpoints' &&
      r.name === 'world' &&
      r.fields.some((f) => f.path.endsWith('portValue') && f.to === port),
  );
}

async function metric(cp: RunningControlPlane, name: string): Promise<number> {
  const text = await cp.metrics.registry.getSingleMetricAsString(name);
  const line = text.split('\n').find((l) => l.startsWith(name));
  return Number(line?.split(' ').at(-1));
}

describe('mesh event stream on RabbitMQ', () => {
  it('publishes each kind of event with its routing key, envelope and AMQP properties', async () => {
    const exchange = 'kinds.events';
    const consumer = await consume(broker.url, exchange);
    cleanups.push(() => consumer.close());
    const catalog = newCatalog(catalogWith(9102));
    const caDir = mkdtempSync(join(tmpdir(), 'lucid-events-ca-'));
    // Short-lived leaves, so one is renewed (cert.rotated) during the test.
    const ca = await openCa({ dataDir: caDir, leafTtlMs: 8_000 });
    cleanups.push(() => rmSync(caDir, { recursive: true, force: true }));
    const cp = await controlPlane({ url: broker.url, exchange, catalog, ca });
    const got = (what: string, check: () => boolean) =>
      waitFor(check, {
        what,
        timeoutMs: 15_000,
        details: () =>
          consumer.received
            .map((r) => `${r.key} ${JSON.stringify(r.envelope.data).slice(0, 200)}`)
            .join('\n'),
      });

    await got('the first mesh.changed', () => ofKey(consumer.received, 'mesh.changed').length > 0);
    const first = ofKey(consumer.received, 'mesh.changed')[0]!;
    expect(first.data.resources.map((r) => `${r.type}/${r.name} ${r.change}`)).toContain(
      'clusters/world added',
    );

    // A proxy connects, is issued its certificate, rejects a response, leaves.
    const ads = sotwClient(cp.xdsPort);
    ads.send({ node: node('hello-1', 'hello'), typeUrl: typeUrl('clusters') });
    const res = await ads.next(10_000);
    await got('proxy.connected', () => ofKey(consumer.received, 'proxy.connected').length > 0);
    expect(ofKey(consumer.received, 'proxy.connected')[0]!.data).toEqual({
      node: 'hello-1',
      mode: 'sotw',
    });
    await got('cert.issued for hello', () =>
      ofKey(consumer.received, 'cert.issued').some((e) => e.data.service === 'hello'),
    );
    const cert = ofKey(consumer.received, 'cert.issued').find((e) => e.data.service === 'hello')!;
    expect(cert.data.serial).toMatch(/^[0-9a-f]+$/);
    expect(Date.parse(cert.data.notAfter)).toBeGreaterThan(Date.now());
    await got('cert.rotated for hello', () =>
      ofKey(consumer.received, 'cert.rotated').some((e) => e.data.service === 'hello'),
    );
    const rotated = ofKey(consumer.received, 'cert.rotated').find(
      (e) => e.data.service === 'hello',
    )!;
    expect(rotated.data.serial).not.toBe(cert.data.serial);
    expect(Date.parse(rotated.data.notAfter)).toBeGreaterThan(Date.parse(cert.data.notAfter));
    ads.send({
      typeUrl: res.typeUrl,
      versionInfo: '',
      responseNonce: res.nonce,
      errorDetail: { code: 13, message: 'cluster world: invalid thing (test)' },
    });
    await got('proxy.nacked', () => ofKey(consumer.received, 'proxy.nacked').length > 0);
    expect(ofKey(consumer.received, 'proxy.nacked')[0]!.data).toMatchObject({
      node: 'hello-1',
      type: 'clusters',
      error: 'cluster world: invalid thing (test)',
    });
    ads.close();
    await got(
      'proxy.disconnected',
      () => ofKey(consumer.received, 'proxy.disconnected').length > 0,
    );
    expect(ofKey(consumer.received, 'proxy.disconnected')[0]!.data.node).toBe('hello-1');

    // A change: the same field-level diff `tail` shows.
    catalog.write(catalogWith(9333));
    await got('mesh.changed with the new port', () =>
      ofKey(consumer.received, 'mesh.changed').some((e) => showsWorldPort(e, 9333)),
    );
    const change = ofKey(consumer.received, 'mesh.changed').find((e) => showsWorldPort(e, 9333))!;
    const endpoints = change.data.resources.find((r) => r.type === 'endpoints')!;
    expect(endpoints.fields).toContainEqual(expect.objectContaining({ from: 9102, to: 9333 }));

    // A catalog the source rejects.
    catalog.write(
      'services:\n  - name: web\n    instances: [{ id: w1, address: 127.0.0.1, port: "80a" }]\n',
    );
    await got('config.rejected', () => ofKey(consumer.received, 'config.rejected').length > 0);
    expect(ofKey(consumer.received, 'config.rejected')[0]!.data).toMatchObject({
      kind: 'source',
      name: 'file',
    });
    expect(ofKey(consumer.received, 'config.rejected')[0]!.data.message).toMatch(/port/);

    // Every message: key = envelope key, unique ids, one replica, consecutive seqs, persistent.
    const all = consumer.received;
    for (const r of all) {
      expect(r.envelope.key).toBe(r.key);
      expect(r.envelope.replica).toBe('replica-a');
      expect(r.props.messageId).toBe(r.envelope.id);
      expect(r.props.contentType).toBe('application/json');
      expect(r.props.deliveryMode).toBe(2);
      expect(Number.isNaN(Date.parse(r.envelope.at))).toBe(false);
    }
    expect(new Set(all.map((r) => r.envelope.id)).size).toBe(all.length);
    const seqs = all.map((r) => r.envelope.seq);
    expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i));
    expect(await metric(cp, 'lucid_mesh_events_broker_connected')).toBe(1);
  }, 60_000);

  it('loses nothing while the broker is stopped for 20 s: 50 changes arrive in order, no gap', async () => {
    const exchange = 'outage.events';
    const consumer = await consume(broker.url, exchange, { queue: 'outage-test' });
    cleanups.push(() => consumer.close());
    const catalog = newCatalog(catalogWith(30000));
    const cp = await controlPlane({ url: broker.url, exchange, catalog });
    await waitFor(() => ofKey(consumer.received, 'mesh.changed').length > 0, {
      what: 'the first mesh.changed',
      timeoutMs: 15_000,
    });

    await broker.stop();
    const stoppedAt = Date.now();
    for (let i = 1; i <= 50; i++) {
      const before = cp.store.snapshot?.version;
      catalog.write(catalogWith(30000 + i));
      await waitFor(() => cp.store.snapshot?.version !== before, {
        what: `the snapshot of change ${i}`,
        timeoutMs: 5_000,
      });
      // Spread over the outage, as changes would be.
      await sleep(Math.max(0, stoppedAt + (i * 19_000) / 50 - Date.now()));
    }
    expect(await metric(cp, 'lucid_mesh_events_broker_connected')).toBe(0);
    expect(cp.eventStream!.outbox.size).toBeGreaterThanOrEqual(50);
    await sleep(Math.max(0, stoppedAt + 20_000 - Date.now()));
    await broker.start();

    await waitFor(
      () => ofKey(consumer.received, 'mesh.changed').some((e) => showsWorldPort(e, 30050)),
      { what: 'the 50th change after the broker came back', timeoutMs: 60_000 },
    );
    // First arrivals (a redelivered event keeps its id, and its content).
    const byId = new Map<string, AnyEventEnvelope>();
    const firsts: AnyEventEnvelope[] = [];
    for (const r of consumer.received) {
      const seen = byId.get(r.envelope.id);
      if (seen) {
        expect(r.envelope).toEqual(seen);
        continue;
      }
      byId.set(r.envelope.id, r.envelope);
      firsts.push(r.envelope);
    }
    const seqs = firsts.map((e) => e.seq);
    expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i));
    const changes = firsts.filter(
      (e) => e.key === 'mesh.changed',
    ) as EventEnvelope<'mesh.changed'>[];
    const order = Array.from({ length: 50 }, (_, i) =>
      changes.findIndex((e) => showsWorldPort(e, 30001 + i)),
    );
    expect(order.every((at) => at >= 0)).toBe(true);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    await waitFor(() => cp.eventStream!.outbox.size === 0, { what: 'an empty outbox' });
    expect(await metric(cp, 'lucid_mesh_events_dropped_total')).toBe(0);
  }, 120_000);

  it('drops the oldest events when the outbox is full, counts them, delivers the newest', async () => {
    const exchange = 'full.events';
    const consumer = await consume(broker.url, exchange, { queue: 'full-test' });
    cleanups.push(() => consumer.close());
    // The broker is behind a proxy the test cuts: unreachable until restored.
    const proxy = await startTcpProxy(broker.port);
    cleanups.push(() => proxy.close());
    await proxy.cut();
    const catalog = newCatalog(catalogWith(40000));
    const maxBytes = 8 * 1024;
    const cp = await controlPlane({
      url: `amqp://guest:guest@127.0.0.1:${proxy.port}/`,
      exchange,
      catalog,
      outboxMaxBytes: maxBytes,
    });
    await waitFor(() => cp.store.snapshot !== undefined, { what: 'the first snapshot' });
    for (let i = 1; i <= 50; i++) {
      const before = cp.store.snapshot?.version;
      catalog.write(catalogWith(40000 + i));
      await waitFor(() => cp.store.snapshot?.version !== before, { what: `change ${i}` });
    }
    const dropped = await metric(cp, 'lucid_mesh_events_dropped_total');
    expect(dropped).toBeGreaterThan(0);
    expect(cp.eventStream!.outbox.bytes).toBeLessThanOrEqual(maxBytes);
    const scrape = await httpGet(`http://127.0.0.1:${cp.adminPort}/metrics`);
    expect(scrape.body).toContain(`lucid_mesh_events_dropped_total ${dropped}`);

    await proxy.restore();
    await waitFor(
      () => ofKey(consumer.received, 'mesh.changed').some((e) => showsWorldPort(e, 40050)),
      { what: 'the newest change once the broker is reachable', timeoutMs: 30_000 },
    );
    await waitFor(() => cp.eventStream!.outbox.size === 0, { what: 'an empty outbox' });
    const seqs = [...new Set(consumer.received.map((r) => r.envelope.seq))];
    // The oldest went: what arrived is one run from just after the dropped ones to the newest.
    expect(seqs[0]).toBe(dropped + 1);
    expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i));
    expect(ofKey(consumer.received, 'mesh.changed').some((e) => showsWorldPort(e, 40001))).toBe(
      false,
    );
  }, 60_000);
});

describe('the outbox across a restart of the control plane', () => {
  it('publishes what the previous process left unconfirmed, and numbering goes on', async () => {
    const exchange = 'restart.events';
    const consumer = await consume(broker.url, exchange, { queue: 'restart-test' });
    cleanups.push(() => consumer.close());
    const proxy = await startTcpProxy(broker.port);
    cleanups.push(() => proxy.close());
    await proxy.cut();
    const outboxDir = mkdtempSync(join(tmpdir(), 'lucid-outbox-restart-'));
    cleanups.push(() => rmSync(outboxDir, { recursive: true, force: true }));
    const url = `amqp://guest:guest@127.0.0.1:${proxy.port}/`;
    const catalog = newCatalog(catalogWith(41000));
    const first = await controlPlane({ url, exchange, catalog, outboxDir });
    for (let i = 1; i <= 5; i++) {
      const before = first.store.snapshot?.version;
      catalog.write(catalogWith(41000 + i));
      await waitFor(() => first.store.snapshot?.version !== before, { what: `change ${i}` });
    }
    const held = first.eventStream!.outbox.size;
    expect(held).toBeGreaterThanOrEqual(6);
    await first.stop();

    await proxy.restore();
    const second = await controlPlane({ url, exchange, catalog, outboxDir });
    await waitFor(() => second.store.snapshot !== undefined, { what: 'the first snapshot' });
    catalog.write(catalogWith(41100));
    await waitFor(
      () => ofKey(consumer.received, 'mesh.changed').some((e) => showsWorldPort(e, 41100)),
      { what: "the new process's change", timeoutMs: 30_000 },
    );
    await waitFor(() => second.eventStream!.outbox.size === 0, { what: 'an empty outbox' });
    const seqs = [...new Set(consumer.received.map((r) => r.envelope.seq))];
    // Everything from seq 1, the old process's events first, then the new one's.
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    expect(seqs.length).toBeGreaterThan(held);
    for (let i = 1; i <= 5; i++) {
      expect(
        ofKey(consumer.received, 'mesh.changed').some((e) => showsWorldPort(e, 41000 + i)),
      ).toBe(true);
    }
  }, 60_000);
});

describe('amqps:// (TLS to the broker)', () => {
  it('publishes over TLS with the broker verified against --events-amqp-ca', async () => {
    const exchange = 'tls.events';
    const consumer = await consume(broker.url, exchange);
    cleanups.push(() => consumer.close());
    const catalog = newCatalog(catalogWith(9102));
    const cp = await controlPlane({ url: broker.tlsUrl!, exchange, catalog, amqpCa: tls.cert });
    await waitFor(() => ofKey(consumer.received, 'mesh.changed').length > 0, {
      what: 'a mesh.changed published over amqps',
      timeoutMs: 15_000,
    });
    expect(await metric(cp, 'lucid_mesh_events_broker_connected')).toBe(1);
  });

  it('refuses a broker certificate it cannot verify, saying why, and keeps the events', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    const catalog = newCatalog(catalogWith(9102));
    const cp = await controlPlane({
      url: broker.tlsUrl!,
      exchange: 'tls2.events',
      catalog,
      logger,
    });
    await waitFor(() => lines.some((l) => l.includes('cannot publish to')), {
      what: 'the TLS error in the log',
      timeoutMs: 15_000,
    });
    const line = JSON.parse(lines.find((l) => l.includes('cannot publish to'))!) as {
      msg: string;
      level: number;
    };
    expect(line.level).toBe(50);
    expect(line.msg).toContain('amqps://guest:***@localhost');
    expect(line.msg).toMatch(/self[- ]signed certificate/);
    await waitFor(() => cp.eventStream!.outbox.size > 0, { what: 'the first event kept' });
    expect(await metric(cp, 'lucid_mesh_events_broker_connected')).toBe(0);
  });
});

describe('lucid-mesh serve --events-amqp, lucid-mesh events', () => {
  const running: ChildProcess[] = [];
  afterEach(() => {
    for (const p of running.splice(0)) p.kill('SIGKILL');
  });
  function cli(args: string[], env: Record<string, string> = {}) {
    const p = spawnCli(args, {
      LUCID_DATA_DIR: mkdtempSync(join(tmpdir(), 'lucid-events-cli-')),
      ...env,
    });
    running.push(p.child);
    return p;
  }

  it('refuses a URL that is not amqp(s):// at start, naming the flag, hiding the password', async () => {
    const p = cli([
      'serve',
      '--catalog',
      'examples/catalog.yaml',
      '--mtls',
      'off',
      '--auth',
      'none',
      '--events-amqp',
      'http://ops:hunter2@broker:5672/',
    ]);
    expect(await p.exited).toBe(2);
    expect(p.stderr()).toContain('--events-amqp: expected an amqp:// or amqps:// URL');
    expect(p.stderr()).toContain('ops:***@broker');
    expect(p.stderr() + p.stdout()).not.toContain('hunter2');
    // Nothing was opened for it: the usage error comes before the CA.
    expect(p.stderr()).not.toContain('certificate authority ready');
    const help = cli(['serve', '--help']);
    expect(await help.exited).toBe(0);
    for (const [flag, env] of [
      ['--events-amqp <url>', 'LUCID_EVENTS_AMQP'],
      ['--events-amqp-file <path>', 'LUCID_EVENTS_AMQP_FILE'],
      ['--events-amqp-ca <file>', 'LUCID_EVENTS_AMQP_CA'],
      ['--events-exchange <name>', 'LUCID_EVENTS_EXCHANGE'],
      ['--events-outbox-dir <dir>', 'LUCID_EVENTS_OUTBOX_DIR'],
      ['--events-outbox-max-mb <mb>', 'LUCID_EVENTS_OUTBOX_MAX_MB'],
    ]) {
      expect(help.stdout()).toContain(flag);
      expect(help.stdout()).toContain(`env: ${env}`);
    }
  }, 30_000);

  it('with an unreachable broker: a clear error at start, and xDS serves as usual', async () => {
    const [admin, xds, nowhere] = (await freePorts(3)) as [number, number, number];
    const p = cli(plainServeArgs('examples/catalog.yaml', { admin, xds }), {
      LUCID_EVENTS_AMQP: `amqp://ops:hunter2@127.0.0.1:${nowhere}/`,
    });
    // The log (pino JSON lines) goes to stderr.
    await waitFor(() => /cannot publish to/.test(p.stderr()), {
      what: 'the broker error in the log',
      timeoutMs: 30_000,
      details: () => p.stdout() + p.stderr(),
    });
    const line = p
      .stderr()
      .split('\n')
      .find((l) => l.includes('cannot publish to'))!;
    expect(line).toContain(`amqp://ops:***@127.0.0.1:${nowhere}/ (--events-amqp)`);
    expect(line).toContain('ECONNREFUSED');
    expect(JSON.parse(line).level).toBe(50); // error
    const ads = sotwClient(xds!);
    ads.send({ node: node('web-1', 'web'), typeUrl: typeUrl('clusters') });
    const res = await ads.next(10_000);
    expect(res.resources?.length).toBeGreaterThan(0);
    ads.close();
    expect((await httpGet(`http://127.0.0.1:${admin}/ready`)).status).toBe(200);
    expect(p.stdout() + p.stderr()).not.toContain('hunter2');
  }, 60_000);

  it('`lucid-mesh events` prints the events of its bindings, like tail', async () => {
    const exchange = 'cli.events';
    // The follower reaches the broker through a proxy the test cuts later.
    const proxy = await startTcpProxy(broker.port);
    cleanups.push(() => proxy.close());
    const follower = cli([
      'events',
      '--amqp',
      `amqp://guest:guest@127.0.0.1:${proxy.port}/`,
      '--exchange',
      exchange,
      '--binding',
      'proxy.*',
    ]);
    await waitFor(() => follower.stderr().includes('following cli.events (proxy.*)'), {
      what: 'lucid-mesh events bound',
      timeoutMs: 30_000,
      details: () => follower.stderr(),
    });
    const catalog = newCatalog(catalogWith(9102));
    const cp = await controlPlane({ url: broker.url, exchange, catalog });
    const ads = sotwClient(cp.xdsPort);
    ads.send({ node: node('hello-1', 'hello'), typeUrl: typeUrl('clusters') });
    await ads.next(10_000);
    ads.close();
    await waitFor(() => /disconnect hello-1/.test(follower.stdout()), {
      what: 'the disconnect printed',
      timeoutMs: 15_000,
      details: () => follower.stdout() + follower.stderr(),
    });
    const lines = follower.stdout().trim().split('\n');
    expect(lines[0]).toMatch(/^#\d+ \d\d:\d\d:\d\d\.\d{3} connect hello-1 \(sotw\)$/);
    expect(lines[1]).toMatch(/^#\d+ \d\d:\d\d:\d\d\.\d{3} disconnect hello-1 \(sotw\): /);
    // mesh.changed is not bound.
    expect(follower.stdout()).not.toContain('snapshot');

    // The broker goes away and comes back: like tail, it reconnects and prints on.
    await proxy.cut();
    await waitFor(() => follower.stderr().includes('reconnecting'), {
      what: 'the follower noticing the lost broker',
      timeoutMs: 15_000,
      details: () => follower.stderr(),
    });
    await proxy.restore();
    await waitFor(() => follower.stderr().split('following cli.events').length === 3, {
      what: 'the follower bound again',
      timeoutMs: 15_000,
      details: () => follower.stderr(),
    });
    const again = sotwClient(cp.xdsPort);
    again.send({ node: node('world-1', 'world'), typeUrl: typeUrl('clusters') });
    await again.next(10_000);
    await waitFor(() => /connect world-1 \(sotw\)/.test(follower.stdout()), {
      what: 'an event after the reconnect printed',
      timeoutMs: 15_000,
      details: () => follower.stdout() + follower.stderr(),
    });
    again.close();
    expect(follower.stderr()).not.toContain('guest:guest');

    const bad = cli(['events', '--amqp', 'amqp://u:pw@127.0.0.1:1/', '--binding', 'proxy..x']);
    expect(await bad.exited).toBe(2);
    expect(bad.stderr()).toContain('--binding: expected dot-separated words');
    const help = cli(['events', '--help']);
    expect(await help.exited).toBe(0);
    for (const flag of ['--amqp', '--amqp-file', '--exchange', '--binding', '--count', '--json'])
      expect(help.stdout()).toContain(flag);
  }, 60_000);

  it('`lucid-mesh events | head -1`: ends with 0 at its next event, no stack trace', async () => {
    const exchange = 'head.events';
    const follower = cli(['events', '--amqp', broker.url, '--exchange', exchange]);
    follower.child.stdout!.once('data', () => follower.child.stdout!.destroy()); // head has its line
    await waitFor(() => follower.stderr().includes(`following ${exchange}`), {
      what: 'lucid-mesh events bound',
      timeoutMs: 30_000,
      details: () => follower.stderr(),
    });
    const cp = await controlPlane({
      url: broker.url,
      exchange,
      catalog: newCatalog(catalogWith(9102)),
    });
    // A sidecar connects and goes (two events) until the follower has printed one and, at a
    // later one, noticed that its reader went.
    const code = await waitFor(
      async () => {
        if (follower.child.exitCode !== null || follower.child.signalCode !== null)
          return follower.exited;
        const ads = sotwClient(cp.xdsPort);
        ads.send({ node: node('hello-1', 'hello'), typeUrl: typeUrl('clusters') });
        await ads.next(10_000);
        ads.close();
        await sleep(500);
        return false;
      },
      { what: 'the follower to end', timeoutMs: 20_000, details: () => follower.stderr() },
    );
    expect({ code: await code, stackTrace: /\n\s+at |EPIPE/.test(follower.stderr()) }).toEqual({
      code: 0,
      stackTrace: false,
    });
  }, 60_000);
});
