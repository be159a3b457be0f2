// A delta response the proxy refuses (NACK): Envoy keeps nothing of it (VHDS drops the whole
// update, the good hosts with the bad one). Here the refusal arrives after a newer response
// already went out, as Envoy answers each response in order: what that newer one carried is
// held, the rest of the refused one is owed at once (test/e2e/vhds-nack-envoy covers the
// refusal of the last response, against real Envoy).
import { afterEach, describe, expect, it } from 'vitest';
import { deltaClient, node, typeUrl, type DeltaStreamClient } from '../support/ads-client.js';
import { startControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { TYPE_URLS } from '../../src/protos/envoy.js';
import { parseTrafficTextByEntries } from '../../src/traffic/traffic-file.js';
import type { NodeMessage } from '../../src/xds/messages.js';

let cp: TestControlPlane | undefined;
const open: DeltaStreamClient[] = [];
afterEach(async () => {
  open.splice(0).forEach((c) => c.close());
  await cp?.close();
  cp = undefined;
});

const catalog = {
  services: ['s1', 's2', 's3'].map((name, i) => ({
    name,
    instances: [{ id: `${name}-1`, address: `10.0.0.${i + 1}`, port: 80 }],
  })),
};

/** service-routers giving each of `timeouts`' services an /admin route with that timeout. */
const routers = (timeouts: Record<string, string>) =>
  Object.entries(timeouts)
    .map(
      ([service, timeout]) =>
        `- Kind: service-router\n  Name: ${service}\n  Routes:\n` +
        `    - Match: { HTTP: { PathPrefix: /admin } }\n` +
        `      Destination: { RequestTimeout: ${timeout} }\n`,
    )
    .join('');

function vhdsNode(id: string): NodeMessage {
  const n = node(id, 's1');
  return { ...n, metadata: { ...n.metadata, vhds: true } };
}

describe('delta: a refused response answered after a newer one', () => {
  it('sends at once what the refused response carried and the newer one did not', async () => {
    cp = await startControlPlane({ catalog });
    const c = deltaClient(cp.port);
    open.push(c);
    c.send({
      node: vhdsNode('s1-1'),
      typeUrl: typeUrl('routes'),
      resourceNamesSubscribe: ['outbound'],
    });
    c.send({ typeUrl: TYPE_URLS.virtualHosts });
    for (const r of await c.take(2)) c.send({ typeUrl: r.typeUrl, responseNonce: r.nonce });
    await c.expectSilence(100);

    // Edit 1 changes s2 and s3: the proxy will refuse it (say s3's host is bad).
    let traffic = parseTrafficTextByEntries(routers({ s2: '1s', s3: '1s' }), 'traffic.yaml');
    cp.store.setTraffic(traffic);
    cp.store.flush();
    const refused = await c.next();
    expect(refused.resources!.map((r) => r.name)).toEqual(['outbound/s2', 'outbound/s3']);
    // Edit 2 (s3 fixed) goes out before the proxy has answered edit 1.
    traffic = parseTrafficTextByEntries(routers({ s2: '1s', s3: '2s' }), 'traffic.yaml', traffic);
    cp.store.setTraffic(traffic);
    cp.store.flush();
    const fix = await c.next();
    expect(fix.resources!.map((r) => r.name)).toEqual(['outbound/s3']);

    // Envoy answers in order: edit 1 refused, edit 2 accepted. s2's new host never arrived.
    c.send({
      typeUrl: refused.typeUrl,
      responseNonce: refused.nonce,
      errorDetail: { code: 13, message: 'bad host outbound/s3' },
    });
    c.send({ typeUrl: fix.typeUrl, responseNonce: fix.nonce });
    const owed = await c.next();
    expect(owed.typeUrl).toBe(TYPE_URLS.virtualHosts);
    expect(owed.resources!.map((r) => r.name)).toEqual(['outbound/s2']);
    expect(JSON.stringify(owed.resources![0]!.resource)).toContain('"timeout":"1s"');
    c.send({ typeUrl: owed.typeUrl, responseNonce: owed.nonce });
    await c.expectSilence(150);
  });
});
