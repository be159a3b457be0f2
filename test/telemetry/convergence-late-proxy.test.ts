// Convergence measures how long a change takes to reach the proxies that were connected when it
// was built. A proxy that connects later gets that snapshot as its first config, but the time it
// took to connect is not the change's convergence: before, a control plane's first snapshot was
// counted from its start until the first sidecar connected (6.8 s after a `serve` in front of
// two Envoys), in lucid_mesh_convergence_seconds (SlowConfigConvergence's p99) and in the
// console's convergence chart (/v1/convergence).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/app.js';
import { parseCatalog } from '../../src/catalog/schema.js';
import { ack, node, sotwClient, typeUrl, type SotwStreamClient } from '../support/ads-client.js';
import {
  SettableSource,
  convergenceOf,
  startLoopbackControlPlane,
} from '../support/settable-source.js';
import { waitFor } from '../support/wait.js';

const instance = (id: string, port: number) => ({ id, address: '127.0.0.1', port });
const catalogOf = (...services: string[]) =>
  parseCatalog({
    services: services.map((name, i) => ({ name, instances: [instance(`${name}-1`, 9100 + i)] })),
  });

const source = new SettableSource(catalogOf('hello'));
let cp: RunningControlPlane;
let client: SotwStreamClient | undefined;

beforeAll(async () => {
  cp = await startLoopbackControlPlane(source);
});
afterAll(async () => {
  client?.close();
  await cp?.stop();
});

const changes = async () => (await convergenceOf(cp)).changes;
const observations = async () => (await convergenceOf(cp)).observations;

/** Receives the next clusters response and ACKs it. */
async function receiveAndAck(c: SotwStreamClient): Promise<void> {
  const res = await c.next();
  c.send({ ...ack(res), node: node('web-1', 'web') });
}

describe('convergence of a change', () => {
  it('does not count the wait for a proxy that connected after the change was built', async () => {
    await new Promise((r) => setTimeout(r, 1500));
    client = sotwClient(cp.xdsPort);
    client.send({ node: node('web-1', 'web'), typeUrl: typeUrl('clusters') });
    await receiveAndAck(client);
    await waitFor(() => cp.counters.acks >= 1, { what: 'the ACK received' });
    await new Promise((r) => setTimeout(r, 100));
    expect(await changes()).toEqual([]);
    expect(await observations()).toBe(0);
  });

  it('counts a change from the source to the ACK of every proxy connected then', async () => {
    source.set(catalogOf('hello', 'world'));
    await receiveAndAck(client!);
    const seen = await waitFor(
      async () => {
        const c = await changes();
        return c.length > 0 ? c : undefined;
      },
      { what: 'the change in /v1/convergence' },
    );
    expect(seen).toHaveLength(1);
    expect(seen[0]!.seconds).toBeLessThan(1);
    expect(await observations()).toBe(1);
  });
});
