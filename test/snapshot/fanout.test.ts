// The snapshot store encodes each changed resource once, however many proxies receive it.
import { afterEach, describe, expect, it } from 'vitest';
import {
  ack,
  deltaClient,
  node,
  sotwClient,
  typeUrl,
  type DeltaStreamClient,
  type SotwStreamClient,
} from '../support/ads-client.js';
import { startControlPlane, twoServices, type TestControlPlane } from '../support/control-plane.js';

let cp: TestControlPlane | undefined;
const open: Array<SotwStreamClient | DeltaStreamClient> = [];
afterEach(async () => {
  open.splice(0).forEach((c) => c.close());
  await cp?.close();
  cp = undefined;
});

const PROXIES = 50;

function worldWith(health: string, protocol = 'http') {
  const doc = twoServices({
    worldInstances: [
      { id: 'world-1', address: '127.0.0.1', port: 9102, sidecarPort: 19102 },
      { id: 'world-2', address: '127.0.0.2', port: 9102, sidecarPort: 19102, health },
    ],
  }) as { services: Array<Record<string, unknown>> };
  doc.services[1]!.protocol = protocol;
  return doc;
}

describe('fan-out cost', () => {
  it('50 SotW proxies cost one encode per changed resource, and each gets one response', async () => {
    cp = await startControlPlane({ catalog: worldWith('passing') });
    const clients: SotwStreamClient[] = [];
    for (let i = 0; i < PROXIES; i++) {
      const c = sotwClient(cp.port);
      open.push(c);
      clients.push(c);
      c.send({
        node: node(`client-${i}`, 'client'),
        typeUrl: typeUrl('endpoints'),
        resourceNames: ['hello', 'world'],
      });
    }
    const firsts = await Promise.all(clients.map((c) => c.next()));
    clients.forEach((c, i) => c.send(ack(firsts[i]!, ['hello', 'world'])));
    await Promise.all(clients.map((c) => c.expectSilence(200)));

    const encodedBefore = cp.store.encoder.counters.encoded;
    const responsesBefore = cp.counters.responses;
    cp.apply(worldWith('critical')); // changes exactly one resource: world's assignment
    const updates = await Promise.all(clients.map((c) => c.next()));
    expect(cp.store.encoder.counters.encoded - encodedBefore).toBe(1);
    expect(cp.counters.responses - responsesBefore).toBe(PROXIES);
    for (const u of updates) expect(JSON.stringify(u)).not.toContain('127.0.0.2');
    const first = JSON.stringify(updates[0]!.resources);
    for (const u of updates) expect(JSON.stringify(u.resources)).toBe(first);
  });

  it('50 delta proxies receive only the changed resource, encoded once', async () => {
    cp = await startControlPlane({ catalog: worldWith('passing') });
    const clients: DeltaStreamClient[] = [];
    for (let i = 0; i < PROXIES; i++) {
      const c = deltaClient(cp.port);
      open.push(c);
      clients.push(c);
      c.send({ node: node(`client-${i}`, 'client'), typeUrl: typeUrl('clusters') });
    }
    const firsts = await Promise.all(clients.map((c) => c.next()));
    clients.forEach((c, i) =>
      c.send({ typeUrl: firsts[i]!.typeUrl, responseNonce: firsts[i]!.nonce }),
    );
    const encodedBefore = cp.store.encoder.counters.encoded;
    cp.apply(worldWith('passing')); // identical catalog: nothing at all
    await Promise.all(clients.map((c) => c.expectSilence(150)));
    cp.apply(worldWith('passing', 'http2'));
    const updates = await Promise.all(clients.map((c) => c.next()));
    for (const u of updates) expect((u.resources ?? []).map((r) => r.name)).toEqual(['world']);
    expect(cp.store.encoder.counters.encoded - encodedBefore).toBe(1);
  });
});
