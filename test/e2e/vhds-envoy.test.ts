// VHDS against real Envoy (delta ADS; translate/vhds.ts): a sidecar bootstrapped with
// `--mode delta` (node.metadata.vhds) gets the outbound route configuration as a stub and each
// service's virtual host over VHDS. Requests route through those hosts, a router edit takes
// effect, a service that leaves the catalog loses its host (404), and neither change resends
// the route configuration itself: Envoy's RDS counter stays put while its VHDS one moves.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/app.js';
import {
  CatalogFile,
  rejectedUpdates,
  startSidecar,
  startTestControlPlane,
  type Sidecar,
} from '../support/mesh.js';
import { freePort } from '../support/ports.js';
import { callThrough, startTrafficApp, type TrafficApp } from '../support/traffic-app.js';

const RDS_UPDATES = 'http.outbound_http.rds.outbound.update_success';
const VHDS_UPDATES = 'http.outbound_http.rds.vhds.outbound.update_success';

const resolver = {
  Kind: 'service-resolver',
  Name: 'api',
  DefaultSubset: 'v1',
  Subsets: { v1: { Filter: '"v1" in Service.Tags' }, v2: { Filter: '"v2" in Service.Tags' } },
};
const router = (prefixes: string[]) => ({
  Kind: 'service-router',
  Name: 'api',
  Routes: prefixes.map((p) => ({
    Match: { HTTP: { PathPrefix: p } },
    Destination: { ServiceSubset: 'v2' },
  })),
});

describe('VHDS with real Envoy (delta)', () => {
  const catalog = new CatalogFile();
  const traffic = new CatalogFile('traffic.yaml');
  let cp: RunningControlPlane | undefined;
  let v1: TrafficApp, v2: TrafficApp, other: TrafficApp;
  let web: Sidecar | undefined;

  const catalogDoc = (withOther: boolean) => ({
    services: [
      {
        name: 'api',
        instances: [
          { id: 'api-v1', address: '127.0.0.1', port: v1.port, tags: ['v1'] },
          { id: 'api-v2', address: '127.0.0.1', port: v2.port, tags: ['v2'] },
        ],
      },
      ...(withOther
        ? [
            {
              name: 'other',
              instances: [{ id: 'other-1', address: '127.0.0.1', port: other.port }],
            },
          ]
        : []),
      { name: 'web', instances: [] },
    ],
  });
  const appOf = async (host: string, path = '/') =>
    (await callThrough(web!, host, { path }).catch(() => undefined))?.app;

  beforeAll(async () => {
    [v1, v2, other] = await Promise.all([
      startTrafficApp('api-v1'),
      startTrafficApp('api-v2'),
      startTrafficApp('other-1'),
    ]);
    const xdsPort = await freePort();
    catalog.write(catalogDoc(true));
    traffic.write([resolver, router(['/admin'])]);
    cp = await startTestControlPlane(catalog, { xds: xdsPort }, { traffic });
    web = await startSidecar({ nodeId: 'web-1', service: 'web', xdsPort, mode: 'delta' });
  });

  afterAll(async () => {
    await web?.envoy.stop();
    await cp?.stop();
    await Promise.all([v1?.close(), v2?.close(), other?.close()]);
    catalog.remove();
    traffic.remove();
  });

  it('routes through virtual hosts received over VHDS', async () => {
    await web!.envoy.waitFor(
      async () => (await appOf('api', '/admin')) === 'api-v2',
      'web → api /admin answered by api-v2',
      30_000,
    );
    expect(await appOf('api', '/orders')).toBe('api-v1');
    expect(await appOf('other')).toBe('other-1');
    const dump = (await web!.envoy.configDump()) as { configs: Array<Record<string, unknown>> };
    const routes = dump.configs.flatMap(
      (c) =>
        (c.dynamic_route_configs ?? []) as Array<{
          route_config: { name: string; vhds?: unknown; virtual_hosts?: Array<{ name: string }> };
        }>,
    );
    const outbound = routes.find((r) => r.route_config.name === 'outbound')!.route_config;
    expect(outbound.vhds).toBeDefined();
    expect(outbound.virtual_hosts!.map((h) => h.name).sort()).toEqual([
      'outbound/api',
      'outbound/other',
      'outbound/web',
    ]);
    expect(await web!.envoy.stat(VHDS_UPDATES)).toBeGreaterThan(0);
  });

  it('applies a router edit and a removed service as virtual host updates, never resending the route configuration', async () => {
    const rdsBefore = await web!.envoy.stat(RDS_UPDATES);
    const vhdsBefore = (await web!.envoy.stat(VHDS_UPDATES))!;
    expect(rdsBefore).toBeGreaterThan(0);
    expect(await appOf('api', '/beta')).toBe('api-v1');

    traffic.write([resolver, router(['/admin', '/beta'])]);
    await web!.envoy.waitFor(
      async () => (await appOf('api', '/beta')) === 'api-v2',
      'web → api /beta answered by api-v2 after the edit',
      15_000,
    );
    expect(await appOf('api', '/orders')).toBe('api-v1');

    catalog.write(catalogDoc(false));
    await web!.envoy.waitFor(
      async () => (await callThrough(web!, 'other').catch(() => undefined))?.status === 404,
      'web → other answered 404 once other left the catalog',
      15_000,
    );
    expect(await appOf('api', '/beta')).toBe('api-v2');
    expect(await web!.envoy.stat(RDS_UPDATES)).toBe(rdsBefore);
    expect(await web!.envoy.stat(VHDS_UPDATES)).toBeGreaterThanOrEqual(vhdsBefore + 2);
    expect(await rejectedUpdates(web!.envoy)).toBe(0);
  });
});

describe('VHDS with real Envoy: a sidecar whose scope has no service', () => {
  const catalog = new CatalogFile();
  let cp: RunningControlPlane | undefined;
  let lonely: Sidecar | undefined;

  afterAll(async () => {
    await lonely?.envoy.stop();
    await cp?.stop();
    catalog.remove();
  });

  it('is ready at once: a stand-in host, where an empty VHDS update leaves Envoy initializing for 15 s', async () => {
    catalog.write({
      services: [
        { name: 'lonely', upstreams: [], instances: [] },
        { name: 'api', instances: [{ id: 'api-1', address: '127.0.0.1', port: 9 }] },
      ],
    });
    const xdsPort = await freePort();
    cp = await startTestControlPlane(catalog, { xds: xdsPort }, { mesh: { scope: 'declared' } });
    const started = Date.now();
    lonely = await startSidecar({ nodeId: 'lonely-1', service: 'lonely', xdsPort, mode: 'delta' });
    await lonely.envoy.waitFor(
      async () => (await lonely!.envoy.admin('/ready').catch(() => '')).trim() === 'LIVE',
      'lonely-1 LIVE',
      12_000,
    );
    expect(Date.now() - started).toBeLessThan(8_000);
    expect((await callThrough(lonely, 'api').catch(() => undefined))?.status).toBe(404);
  });
});
