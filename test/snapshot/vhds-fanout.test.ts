// VHDS (translate/vhds.ts): a delta sidecar whose bootstrap says node.metadata.vhds gets the
// outbound route configuration as a stub and each service's virtual host as a resource of its
// own. A router edit then makes one host resource, shared by every such sidecar, and sends
// each of them that host only: the route configuration is neither joined nor resent.
import { afterEach, describe, expect, it } from 'vitest';
import {
  deltaClient,
  node,
  sotwClient,
  typeUrl,
  type DeltaStreamClient,
  type SotwStreamClient,
} from '../support/ads-client.js';
import { startControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { TYPE_URLS } from '../../src/protos/envoy.js';
import { routeAssemblyCounters, routeJoinCounters } from '../../src/snapshot/route-assembly.js';
import { vhdsCounters } from '../../src/snapshot/vhds.js';
import { proxyRows } from '../../src/admin/proxies.js';
import { renderStatus } from '../../src/cli/status-command.js';
import { parseTrafficTextByEntries } from '../../src/traffic/traffic-file.js';
import { waitFor } from '../support/wait.js';
import type { NodeMessage } from '../../src/xds/messages.js';

let cp: TestControlPlane | undefined;
const open: Array<DeltaStreamClient | SotwStreamClient> = [];
afterEach(async () => {
  open.splice(0).forEach((c) => c.close());
  await cp?.close();
  cp = undefined;
});

const PROXIES = 100;
const SERVICES = 20;

const catalog = {
  services: Array.from({ length: SERVICES }, (_, i) => ({
    name: `s${i}`,
    instances: [{ id: `s${i}-1`, address: `10.0.0.${i + 1}`, port: 80, sidecarPort: 15006 }],
  })),
};

const router = (timeout: string) =>
  `- Kind: service-router\n  Name: s3\n  Routes:\n` +
  `    - Match: { HTTP: { PathPrefix: /admin } }\n` +
  `      Destination: { RequestTimeout: ${timeout} }\n`;

function withoutType(resource: Record<string, unknown> | undefined): Record<string, unknown> {
  const { '@type': _type, ...rest } = resource ?? {};
  return rest;
}

function vhdsNode(id: string): NodeMessage {
  const n = node(id, 's0');
  return { ...n, metadata: { ...n.metadata, vhds: true } };
}

describe('VHDS for delta sidecars', () => {
  it(`a router edit at ${PROXIES} delta sidecars makes one host resource, sends it alone, joins no route configuration`, async () => {
    cp = await startControlPlane({ catalog });
    let traffic = parseTrafficTextByEntries(router('1s'), 'traffic.yaml');
    cp.store.setTraffic(traffic);
    cp.store.flush();
    const clients: DeltaStreamClient[] = [];
    for (let i = 0; i < PROXIES; i++) {
      const c = deltaClient(cp.port);
      open.push(c);
      clients.push(c);
      c.send({
        node: vhdsNode(`s0-${i}`),
        typeUrl: typeUrl('routes'),
        resourceNamesSubscribe: ['outbound'],
      });
      c.send({ typeUrl: TYPE_URLS.virtualHosts });
    }
    for (const c of clients) {
      const [a, b] = await c.take(2);
      const byType = new Map([a!, b!].map((r) => [r.typeUrl, r]));
      const routes = byType.get(TYPE_URLS.routes)!;
      expect(routes.resources!.map((r) => r.name)).toEqual(['outbound']);
      const stub = withoutType(routes.resources![0]!.resource);
      expect(stub).toEqual({
        name: 'outbound',
        vhds: { configSource: { ads: {}, resourceApiVersion: 'V3' } },
      });
      const hosts = byType.get(TYPE_URLS.virtualHosts)!;
      expect(hosts.resources).toHaveLength(SERVICES);
      const s3 = hosts.resources!.find((r) => r.name === 'outbound/s3')!;
      // Envoy removes a VHDS host by the host's own name: it is the resource's.
      expect(s3.resource).toMatchObject({
        name: 'outbound/s3',
        domains: ['s3', 's3:*', 's3.lucid.internal', 's3.lucid.internal:*'],
      });
      for (const r of [a!, b!]) c.send({ typeUrl: r.typeUrl, responseNonce: r.nonce });
    }
    const hostsEncoded = routeAssemblyCounters.hostsEncoded;
    const joined = routeJoinCounters.joined;
    const made = vhdsCounters.hostsMade;

    traffic = parseTrafficTextByEntries(router('2500ms'), 'traffic.yaml', traffic);
    cp.store.setTraffic(traffic);
    cp.store.flush();
    for (const c of clients) {
      const update = await c.next();
      expect(update.typeUrl).toBe(TYPE_URLS.virtualHosts);
      expect((update.resources ?? []).map((r) => r.name)).toEqual(['outbound/s3']);
      const host = update.resources![0]!.resource;
      expect(JSON.stringify(host)).toContain('"timeout":"2.5s"');
      c.send({ typeUrl: update.typeUrl, responseNonce: update.nonce });
    }
    await Promise.all(clients.map((c) => c.expectSilence(150)));
    expect(routeAssemblyCounters.hostsEncoded - hostsEncoded).toBe(1);
    expect(vhdsCounters.hostsMade - made).toBe(1);
    expect(routeJoinCounters.joined - joined).toBe(0);
  });

  it('a NACKed virtual host shows in lucid-mesh status with Envoy’s error text', async () => {
    cp = await startControlPlane({ catalog });
    const c = deltaClient(cp.port);
    open.push(c);
    c.send({ node: vhdsNode('s0-nack'), typeUrl: TYPE_URLS.virtualHosts });
    const res = await c.next();
    const error = 'Only unique values for domains are permitted. Duplicate entry of domain s3';
    c.send({
      typeUrl: res.typeUrl,
      responseNonce: res.nonce,
      errorDetail: { code: 13, message: error },
    });
    await waitFor(
      () => proxyRows(cp!.server.connected.values())[0]?.types.virtualHosts?.status === 'NACKED',
      { what: 'the NACK recorded' },
    );
    const out = renderStatus(proxyRows(cp.server.connected.values()));
    expect(out.split('\n')[0]).toMatch(/LDS\s+RDS\s+VHDS\s+SDS/);
    expect(out).toContain(`s0-nack virtualHosts NACKED version ${res.systemVersionInfo}: ${error}`);
    expect(cp.counters.nacks).toBe(1);
  });

  it('a SotW sidecar that says vhds keeps its virtual hosts inline', async () => {
    cp = await startControlPlane({ catalog });
    const c = sotwClient(cp.port);
    open.push(c);
    c.send({ node: vhdsNode('s0-sotw'), typeUrl: typeUrl('routes'), resourceNames: ['outbound'] });
    const res = await c.next();
    const config = res.resources![0] as Record<string, unknown>;
    expect(config.vhds).toBeUndefined();
    expect(config.virtualHosts).toHaveLength(SERVICES);
  });

  it('a sidecar in a scope without services gets a stand-in host (an empty VHDS update leaves Envoy waiting)', async () => {
    cp = await startControlPlane({ catalog: { services: [] } });
    const c = deltaClient(cp.port);
    open.push(c);
    c.send({ node: vhdsNode('lonely-1'), typeUrl: TYPE_URLS.virtualHosts });
    const res = await c.next();
    expect(res.resources!.map((r) => r.name)).toEqual(['outbound/_none']);
  });
});
