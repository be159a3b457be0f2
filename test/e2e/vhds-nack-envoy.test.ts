// A VHDS update Envoy refuses (real Envoy, delta): Envoy drops the whole update, the hosts that
// were fine in it too, and records none of their versions. Once the bad host is fixed, every
// host of the refused update must reach Envoy, not only the fixed one; meanwhile other hosts'
// changes are not refused with it (delta-stream.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/app.js';
import { proxyRows } from '../../src/admin/proxies.js';
import {
  CatalogFile,
  clusterHosts,
  startSidecar,
  startTestControlPlane,
  type Sidecar,
} from '../support/mesh.js';
import { freePort } from '../support/ports.js';
import { callThrough, startTrafficApp, type TrafficApp } from '../support/traffic-app.js';

const VHDS_REJECTED = 'http.outbound_http.rds.vhds.outbound.update_rejected';

const resolver = {
  Kind: 'service-resolver',
  Name: 'api',
  DefaultSubset: 'v1',
  Subsets: { v1: { Filter: '"v1" in Service.Tags' }, v2: { Filter: '"v2" in Service.Tags' } },
};
const apiRouter = {
  Kind: 'service-router',
  Name: 'api',
  Routes: [{ Match: { HTTP: { PathPrefix: '/beta' } }, Destination: { ServiceSubset: 'v2' } }],
};
// Valid RE2, but its program (~33,000 instructions) is over the max program size a sidecar's
// bootstrap allows (32768, sidecar-bootstrap/bootstrap.template.yaml): refused.
const refusedRouter = {
  Kind: 'service-router',
  Name: 'other',
  Routes: [{ Match: { HTTP: { PathRegex: `/x/${'[a-z0-9]{1,1000}'.repeat(11)}/y` } } }],
};

describe('VHDS with real Envoy (delta): a refused update', () => {
  const catalog = new CatalogFile();
  const traffic = new CatalogFile('traffic.yaml');
  let cp: RunningControlPlane | undefined;
  let v1: TrafficApp, v2: TrafficApp, other: TrafficApp, other2: TrafficApp, extra: TrafficApp;
  let web: Sidecar | undefined;

  /** `more`: ports of more instances of other (an endpoints-only change); `withExtra`: a new service. */
  const catalogDoc = (more: number[], withExtra = false) => ({
    services: [
      {
        name: 'api',
        instances: [
          { id: 'api-v1', address: '127.0.0.1', port: v1.port, tags: ['v1'] },
          { id: 'api-v2', address: '127.0.0.1', port: v2.port, tags: ['v2'] },
        ],
      },
      {
        name: 'other',
        instances: [other.port, ...more].map((port, i) => ({
          id: `other-${i + 1}`,
          address: '127.0.0.1',
          port,
        })),
      },
      ...(withExtra
        ? [
            {
              name: 'extra',
              instances: [{ id: 'extra-1', address: '127.0.0.1', port: extra.port }],
            },
          ]
        : []),
      { name: 'web', instances: [] },
    ],
  });
  const appOf = async (host: string, path = '/') =>
    (await callThrough(web!, host, { path }).catch(() => undefined))?.app;
  const vhdsStatus = () =>
    proxyRows(cp!.xds.connected.values()).find((r) => r.nodeId === 'web-1')?.types.virtualHosts;

  beforeAll(async () => {
    [v1, v2, other, other2, extra] = await Promise.all([
      startTrafficApp('api-v1'),
      startTrafficApp('api-v2'),
      startTrafficApp('other-1'),
      startTrafficApp('other-2'),
      startTrafficApp('extra-1'),
    ]);
    catalog.write(catalogDoc([]));
    traffic.write([resolver]);
    const xdsPort = await freePort();
    cp = await startTestControlPlane(catalog, { xds: xdsPort }, { traffic });
    web = await startSidecar({ nodeId: 'web-1', service: 'web', xdsPort, mode: 'delta' });
    await web.envoy.waitFor(
      async () => (await appOf('other')) === 'other-1' && (await appOf('api')) === 'api-v1',
      'web → api and other',
      30_000,
    );
  });

  afterAll(async () => {
    await web?.envoy.stop();
    await cp?.stop();
    await Promise.all([v1, v2, other, other2, extra].map((a) => a?.close()));
    catalog.remove();
    traffic.remove();
  });

  it('sends every host of the refused update once the bad one is fixed', async () => {
    expect(await appOf('api', '/beta')).toBe('api-v1');
    // One edit: api's host gains a route (fine), other's host a regex Envoy refuses.
    traffic.write([resolver, apiRouter, refusedRouter]);
    await web!.envoy.waitFor(
      async () => ((await web!.envoy.stat(VHDS_REJECTED)) ?? 0) > 0,
      'Envoy refuses the VHDS update',
      15_000,
    );
    await web!.envoy.waitFor(
      async () => vhdsStatus()?.status === 'NACKED',
      'the NACK shown for web-1',
      5_000,
    );
    expect(vhdsStatus()?.nackError).toContain('max program size');
    // The whole update was dropped: api's new route too.
    expect(await appOf('api', '/beta')).toBe('api-v1');

    // An endpoints-only change does not send the refused hosts again (refused again).
    const rejected = await web!.envoy.stat(VHDS_REJECTED);
    catalog.write(catalogDoc([other2.port]));
    await web!.envoy.waitFor(
      async () => (await clusterHosts(web!.envoy, 'other')).includes(`127.0.0.1:${other2.port}`),
      'other-2 in web-1',
      10_000,
    );
    expect(await web!.envoy.stat(VHDS_REJECTED)).toBe(rejected);

    // A new service meanwhile is routed: its host goes apart from the refused ones (which go
    // again after it, and are refused again).
    catalog.write(catalogDoc([other2.port], true));
    await web!.envoy.waitFor(
      async () => (await appOf('extra')) === 'extra-1',
      'web → extra while the bad host is still there',
      10_000,
    );
    expect(await appOf('api', '/beta')).toBe('api-v1');

    // The fix touches other's host only; api's route, refused with it, is still owed.
    traffic.write([resolver, apiRouter]);
    await web!.envoy.waitFor(
      async () => (await appOf('api', '/beta')) === 'api-v2',
      'web → api /beta answered by api-v2 after the fix',
      10_000,
    );
    expect(await appOf('other')).toMatch(/^other-[12]$/);
    expect(vhdsStatus()?.status).toBe('SYNCED');
  });
});
