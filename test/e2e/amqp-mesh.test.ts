// AMQP through the mesh: RabbitMQ as a `tcp` service. A real AMQP client publishes and consumes
// one message through two real Envoy sidecars (the caller's outbound tcp listener, mTLS, the
// broker's sidecar inbound); with the policy turned to deny, the connection is refused.
//
// Both sidecars run on this one host, and every sidecar gets the tcp service's outbound
// listener on the same 127.0.0.1 port (Envoy binds it with SO_REUSEPORT), so the kernel may
// hand a connection to either Envoy. The test reads the Envoys' counters to know which one
// took each connection and only counts those through the caller's sidecar.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/app.js';
import { openCa, type OpenedCa } from '../../src/ca/open.js';
import type { PolicyProvider } from '../../src/policy/policy-file.js';
import { parsePolicy, type Policy } from '../../src/policy/schema.js';
import { CatalogFile, startSidecar, startTestControlPlane, type Sidecar } from '../support/mesh.js';
import { freePorts } from '../support/ports.js';
import {
  RABBITMQ_START_TIMEOUT_MS,
  startRabbitMq,
  type RabbitMqHandle,
} from '../support/rabbitmq.js';

/** A policy the test changes at will (the file-backed one is tested in test/policy). */
class SwitchablePolicy implements PolicyProvider {
  private readonly listeners = new Set<(p: Policy) => void>();
  constructor(private policy: Policy) {}
  current(): Policy {
    return this.policy;
  }
  onChange(listener: (p: Policy) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  set(policy: Policy): void {
    this.policy = policy;
    for (const l of this.listeners) l(policy);
  }
}

const allowAll = parsePolicy({ defaults: { action: 'allow' } });
const denyAll = parsePolicy({ defaults: { action: 'deny' } });

let broker: RabbitMqHandle;
let cp: RunningControlPlane;
let ca: OpenedCa;
let caDir: string;
let client: Sidecar;
let brokerSide: Sidecar;
let amqpPort: number;
const catalog = new CatalogFile();
const policy = new SwitchablePolicy(allowAll);

beforeAll(async () => {
  broker = await startRabbitMq('mesh');
  const [outbound, sidecarPort] = (await freePorts(2)) as [number, number];
  amqpPort = outbound;
  catalog.write({
    services: [
      { name: 'publisher', instances: [] },
      {
        name: 'rabbitmq',
        protocol: 'tcp',
        outboundPort: outbound,
        instances: [{ id: 'rabbitmq-1', address: '127.0.0.1', port: broker.port, sidecarPort }],
      },
    ],
  });
  caDir = mkdtempSync(join(tmpdir(), 'lucid-amqp-ca-'));
  ca = await openCa({ dataDir: caDir });
  cp = await startTestControlPlane(
    catalog,
    {},
    { security: { ca, mtls: true, auth: 'none', adminAuth: 'none', policy } },
  );
  client = await startSidecar({
    nodeId: 'publisher-1',
    service: 'publisher',
    xdsPort: cp.xdsPort,
    mode: 'delta',
  });
  brokerSide = await startSidecar({
    nodeId: 'rabbitmq-1',
    service: 'rabbitmq',
    xdsPort: cp.xdsPort,
    mode: 'delta',
  });
  for (const s of [client, brokerSide]) {
    await s.envoy.waitFor(
      async () =>
        (await s.envoy.admin('/listeners')).includes(
          `outbound|tcp|rabbitmq::127.0.0.1:${outbound}`,
        ),
      'the outbound tcp listener for rabbitmq',
      30_000,
    );
  }
  await brokerSide.envoy.waitFor(
    async () => (await brokerSide.envoy.admin('/listeners')).includes('inbound|rabbitmq-1'),
    'the inbound listener of rabbitmq-1',
    30_000,
  );
  // The secrets (certificates) arrive after the listeners: wait for both sidecars' leaf.
  for (const s of [client, brokerSide]) {
    await s.envoy.waitFor(
      async () => (await s.envoy.admin('/certs')).includes('spiffe://'),
      'a certificate from the mesh CA',
      30_000,
    );
  }
}, RABBITMQ_START_TIMEOUT_MS + 90_000);

afterAll(async () => {
  await client?.envoy.stop();
  await brokerSide?.envoy.stop();
  await cp?.stop();
  ca?.stop();
  await broker?.remove();
  catalog.remove();
  if (caDir) rmSync(caDir, { recursive: true, force: true });
});

const OUT_STAT = 'tcp.outbound_tcp_rabbitmq.downstream_cx_total';
const counter = async (s: Sidecar, name: string): Promise<number> =>
  (await s.envoy.stat(name)) ?? 0;

/** The broker sidecar's counters matching `pattern`, summed. */
async function brokerSideSum(pattern: RegExp): Promise<number> {
  let sum = 0;
  for (const [name, value] of await brokerSide.envoy.stats()) {
    if (pattern.test(name)) sum += Number(value);
  }
  return sum;
}
// Its inbound listener (0.0.0.0:<sidecarPort>): TLS handshakes; its network RBAC filter.
const HANDSHAKES = /^listener\.0\.0\.0\.0_\d+\.ssl\.handshake$/;
const ALLOWED = /rbac\.allowed$/;
const DENIED = /rbac\.denied$/;

/**
 * Opens AMQP connections to the mesh's local port until one goes through the caller's sidecar
 * (see the note at the top); returns it, or the error of such an attempt.
 */
async function connectThroughCaller(): Promise<{ conn: amqp.ChannelModel } | { error: Error }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const before = await counter(client, OUT_STAT);
    let result: { conn: amqp.ChannelModel } | { error: Error };
    try {
      result = {
        conn: await amqp.connect(`amqp://guest:guest@127.0.0.1:${amqpPort}/`, { timeout: 5_000 }),
      };
    } catch (err) {
      result = { error: err as Error };
    }
    if ((await counter(client, OUT_STAT)) > before) return result;
    if ('conn' in result) await result.conn.close();
  }
  throw new Error("20 connections in a row were taken by the broker's own sidecar");
}

describe('AMQP through the mesh (RabbitMQ as a tcp service)', () => {
  it('publishes and consumes one message through two sidecars over mTLS', async () => {
    const handshakesBefore = await brokerSideSum(HANDSHAKES);
    const got = await connectThroughCaller();
    if ('error' in got) throw got.error;
    const { conn } = got;
    try {
      const ch = await conn.createChannel();
      const { queue } = await ch.assertQueue('', { exclusive: true });
      ch.sendToQueue(queue, Buffer.from('hello through the mesh'), { persistent: false });
      const msg = await new Promise<amqp.ConsumeMessage>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no message within 10 s')), 10_000);
        void ch.consume(queue, (m) => {
          if (!m) return;
          clearTimeout(timer);
          ch.ack(m);
          resolve(m);
        });
      });
      expect(msg.content.toString()).toBe('hello through the mesh');
    } finally {
      await conn.close();
    }
    // The broker's sidecar took a TLS connection (mTLS: its inbound listener requires a client
    // certificate) and let it through.
    expect(await brokerSideSum(HANDSHAKES)).toBeGreaterThan(handshakesBefore);
    expect(await brokerSideSum(ALLOWED)).toBeGreaterThan(0);
  });

  it('with the policy denying the call, the connection is refused', async () => {
    const deniedBefore = await brokerSideSum(DENIED);
    policy.set(denyAll);
    // The broker's sidecar has the new RBAC rules once a connection is denied by them.
    let refusal: Error | undefined;
    await brokerSide.envoy.waitFor(
      async () => {
        const got = await connectThroughCaller();
        if ('conn' in got) {
          await got.conn.close();
          return false;
        }
        refusal = got.error;
        return (await brokerSideSum(DENIED)) > deniedBefore;
      },
      'an AMQP connection denied by the policy',
      30_000,
    );
    expect(refusal?.message).toMatch(/closed|ECONNRESET|socket/i);
    policy.set(allowAll);
  });
});
