// `serve --events-amqp` stopped with SIGTERM, on a real RabbitMQ: the events of its last
// moments (the drain's proxy.disconnected) reach the broker before it exits. They used to be
// written to the outbox only, published when (if ever) that replica started again: a replica
// scaled away, or one whose outbox was not kept, left its sidecars "connected" for consumers.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControlPlane } from '../../src/app.js';
import { parseBrokerUrl } from '../../src/events/amqp-url.js';
import type { AnyEventEnvelope } from '../../src/events/envelope.js';
import { FileSource } from '../../src/sources/file-source.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { node, sotwClient, typeUrl } from '../support/ads-client.js';
import { plainServeArgs, spawnCli } from '../support/cli-process.js';
import { freePorts } from '../support/ports.js';
import {
  RABBITMQ_START_TIMEOUT_MS,
  startRabbitMq,
  type RabbitMqHandle,
} from '../support/rabbitmq.js';
import { waitFor } from '../support/wait.js';

let broker: RabbitMqHandle;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lucid-events-shutdown-'));
  broker = await startRabbitMq('events-shutdown');
}, RABBITMQ_START_TIMEOUT_MS + 30_000);
afterAll(async () => {
  await broker?.remove();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('serve --events-amqp stopped with SIGTERM', () => {
  it("publishes the drain's proxy.disconnected before it exits", async () => {
    const exchange = 'shutdown.events';
    const conn = await amqp.connect(broker.url);
    const received: AnyEventEnvelope[] = [];
    try {
      const ch = await conn.createChannel();
      await ch.assertExchange(exchange, 'topic', { durable: true });
      const { queue } = await ch.assertQueue('', { exclusive: true });
      await ch.bindQueue(queue, exchange, 'proxy.*');
      await ch.consume(queue, (msg) => {
        if (msg) received.push(JSON.parse(msg.content.toString()) as AnyEventEnvelope);
      });

      const [admin, xds] = (await freePorts(2)) as [number, number];
      const outbox = join(dir, 'outbox');
      const serve = spawnCli(
        [
          ...plainServeArgs('examples/catalog.yaml', { admin, xds }),
          ...['--events-amqp', broker.url, '--events-exchange', exchange],
          ...['--events-outbox-dir', outbox, '--drain-seconds', '5'],
        ],
        { LUCID_DATA_DIR: dir },
      );
      try {
        await waitFor(() => serve.output().includes('control plane started'), {
          what: 'serve started',
          timeoutMs: 30_000,
          details: () => serve.output().slice(-5000),
        });
        const ads = sotwClient(xds);
        ads.send({ node: node('hello-1', 'hello'), typeUrl: typeUrl('clusters') });
        await ads.next(10_000);
        await waitFor(() => received.some((e) => e.key === 'proxy.connected'), {
          what: 'proxy.connected at the broker',
          timeoutMs: 10_000,
          details: () => serve.output().slice(-5000),
        });
        serve.child.kill('SIGTERM');
        expect(await serve.exited, serve.output().slice(-5000)).toBe(0);
        ads.close();
      } finally {
        await serve.stop();
      }
      // The control plane is gone: what the broker has now is all it will get from it.
      await waitFor(() => received.some((e) => e.key === 'proxy.disconnected'), {
        what: 'proxy.disconnected at the broker after serve exited',
        timeoutMs: 3_000,
        details: () => JSON.stringify(received.map((e) => [e.seq, e.key])),
      });
      const disconnected = received.find((e) => e.key === 'proxy.disconnected')!;
      expect(disconnected.data).toMatchObject({ node: 'hello-1', mode: 'sotw' });
      // And the outbox knows it was confirmed: a restart would not publish it again.
      expect(Number(readFileSync(join(outbox, 'confirmed'), 'utf8'))).toBe(disconnected.seq);
    } finally {
      await conn.close();
    }
  }, 90_000);

  // The same at the moment it matters, without a process's timing: the stream the stop closes
  // records its proxy.disconnected an instant before the event stream stops.
  it('stop(): the events recorded while stopping are published, then the connection closes', async () => {
    const exchange = 'stop.events';
    const conn = await amqp.connect(broker.url);
    const received: AnyEventEnvelope[] = [];
    const outbox = join(dir, 'outbox-stop');
    try {
      const ch = await conn.createChannel();
      await ch.assertExchange(exchange, 'topic', { durable: true });
      const { queue } = await ch.assertQueue('', { exclusive: true });
      await ch.bindQueue(queue, exchange, '#');
      await ch.consume(queue, (msg) => {
        if (msg) received.push(JSON.parse(msg.content.toString()) as AnyEventEnvelope);
      });
      const cp = await startControlPlane({
        source: new FileSource('examples/catalog.yaml', silentLogger),
        logger: silentLogger,
        host: '127.0.0.1',
        xdsPort: 0,
        adminPort: 0,
        eventStream: {
          url: parseBrokerUrl(broker.url, '--events-amqp'),
          flag: '--events-amqp',
          exchange,
          outboxDir: outbox,
          outboxMaxBytes: 1024 * 1024,
          replica: 'replica-a',
        },
      });
      const ads = sotwClient(cp.xdsPort);
      try {
        ads.send({ node: node('hello-1', 'hello'), typeUrl: typeUrl('clusters') });
        await ads.next(10_000);
        await waitFor(() => received.some((e) => e.key === 'proxy.connected'), {
          what: 'proxy.connected at the broker',
          timeoutMs: 10_000,
        });
        await cp.stop();
      } finally {
        ads.close();
      }
      await waitFor(() => received.some((e) => e.key === 'proxy.disconnected'), {
        what: 'proxy.disconnected at the broker after stop()',
        timeoutMs: 3_000,
        details: () => JSON.stringify(received.map((e) => [e.seq, e.key])),
      });
      const last = received.at(-1)!;
      expect(Number(readFileSync(join(outbox, 'confirmed'), 'utf8'))).toBe(last.seq);
    } finally {
      await conn.close();
    }
  }, 60_000);
});
