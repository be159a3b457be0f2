// Convergence under churn: changes that come faster than the proxies ACK. Each snapshot is
// superseded before every proxy has ACKed it, so when only a snapshot's own ACKs counted,
// nothing was ever measured: lucid_mesh_convergence_seconds (SlowConfigConvergence) and the
// console's chart stayed empty exactly while convergence was slow (a large mesh under a steady
// trickle of changes). A superseded change is counted once the proxies have a newer snapshot,
// which holds it, from its own source change.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/app.js';
import { parseCatalog } from '../../src/catalog/schema.js';
import type { DiscoveryResponse } from '../../src/xds/messages.js';
import { ack, node, sotwClient, typeUrl, type SotwStreamClient } from '../support/ads-client.js';
import {
  SettableSource,
  convergenceOf,
  startLoopbackControlPlane,
} from '../support/settable-source.js';
import { waitFor } from '../support/wait.js';

const catalogOf = (n: number) =>
  parseCatalog({
    services: Array.from({ length: n }, (_, i) => ({
      name: `svc-${i}`,
      instances: [{ id: `svc-${i}-1`, address: '127.0.0.1', port: 9000 + i }],
    })),
  });

const source = new SettableSource(catalogOf(1));
let cp: RunningControlPlane;
let client: SotwStreamClient | undefined;
/** The proxy ACKs what it was sent last, this long after it came (a slow proxy, a big mesh). */
const ACK_DELAY_MS = 250;

beforeAll(async () => {
  cp = await startLoopbackControlPlane(source);
});
afterAll(async () => {
  client?.close();
  await cp?.stop();
});

const changes = async () => (await convergenceOf(cp)).changes;
const observations = async () => (await convergenceOf(cp)).observations;

/** A SotW proxy for clusters that ACKs its latest response ACK_DELAY_MS after it arrived. */
function slowProxy(c: SotwStreamClient): { received: () => number } {
  let latest: DiscoveryResponse | undefined;
  let timer: NodeJS.Timeout | undefined;
  let received = 0;
  const loop = async () => {
    for (;;) {
      const res = await c.next().catch(() => undefined);
      if (!res) return;
      received++;
      latest = res;
      timer ??= setTimeout(() => {
        timer = undefined;
        c.send({ ...ack(latest!), node: node('web-1', 'web') });
      }, ACK_DELAY_MS);
    }
  };
  void loop();
  return { received: () => received };
}

describe('convergence under churn', () => {
  it('counts every change once the proxy has it, also those superseded before it ACKed', async () => {
    client = sotwClient(cp.xdsPort);
    client.send({ node: node('web-1', 'web'), typeUrl: typeUrl('clusters') });
    const proxy = slowProxy(client);
    await waitFor(() => proxy.received() >= 1, { what: 'the first response' });
    await new Promise((r) => setTimeout(r, ACK_DELAY_MS + 100));
    const before = (await changes()).length;

    // Eight changes, 80 ms apart: each is sent before the proxy ACKed the one before.
    for (let n = 2; n <= 9; n++) {
      source.set(catalogOf(n));
      await new Promise((r) => setTimeout(r, 80));
    }
    const after = await waitFor(
      async () => {
        const c = await changes();
        return c.length - before >= 8 ? c : undefined;
      },
      { what: 'all eight changes in /v1/convergence', timeoutMs: 5000 },
    );
    const churn = after.slice(before);
    expect(churn).toHaveLength(8);
    // Each counted from its own change: the first waited for the proxy's delayed ACK.
    expect(churn[0]!.seconds).toBeGreaterThanOrEqual((ACK_DELAY_MS - 20) / 1000);
    expect(Math.max(...churn.map((c) => c.seconds))).toBeLessThan(3);
    expect(await observations()).toBe(after.length);
  });
});
