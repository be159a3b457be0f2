// A route regex of an ordinary size reaches a real Envoy and routes. Envoy's own limit on an
// RE2 program is 100 instructions, which /tenants/[a-z0-9-]{1,63}/.* (267) already exceeds:
// lucid-mesh accepted it (its check is RE2's syntax) and every sidecar NACKed the route. The
// sidecar bootstrap now raises the limit to 32768 (sidecar-bootstrap/bootstrap.template.yaml).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/app.js';
import { proxyRows } from '../../src/admin/proxies.js';
import { CatalogFile, startSidecar, startTestControlPlane, type Sidecar } from '../support/mesh.js';
import { freePort } from '../support/ports.js';
import { callThrough, startTrafficApp, type TrafficApp } from '../support/traffic-app.js';

const TENANT_PATH = '/tenants/[a-z0-9-]{1,63}/.*';

describe('route regexes on a real Envoy (sotw and delta)', () => {
  const catalog = new CatalogFile();
  const traffic = new CatalogFile('traffic.yaml');
  let cp: RunningControlPlane | undefined;
  let api: TrafficApp, tenants: TrafficApp;
  const sidecars: { nodeId: string; sidecar: Sidecar }[] = [];

  beforeAll(async () => {
    [api, tenants] = await Promise.all([startTrafficApp('api-1'), startTrafficApp('tenants-1')]);
    catalog.write({
      services: [
        { name: 'api', instances: [{ id: 'api-1', address: '127.0.0.1', port: api.port }] },
        {
          name: 'tenants',
          instances: [{ id: 'tenants-1', address: '127.0.0.1', port: tenants.port }],
        },
        { name: 'web', instances: [] },
      ],
    });
    traffic.write([
      {
        Kind: 'service-router',
        Name: 'api',
        Routes: [
          { Match: { HTTP: { PathRegex: TENANT_PATH } }, Destination: { Service: 'tenants' } },
        ],
      },
    ]);
    const xdsPort = await freePort();
    cp = await startTestControlPlane(catalog, { xds: xdsPort }, { traffic });
    for (const mode of ['sotw', 'delta'] as const) {
      const nodeId = `web-${mode}`;
      sidecars.push({
        nodeId,
        sidecar: await startSidecar({ nodeId, service: 'web', xdsPort, mode }),
      });
    }
  });

  afterAll(async () => {
    await Promise.all(sidecars.map((s) => s.sidecar.envoy.stop()));
    await cp?.stop();
    await Promise.all([api, tenants].map((a) => a?.close()));
    catalog.remove();
    traffic.remove();
  });

  it('routes by /tenants/[a-z0-9-]{1,63}/.*, with no NACK', async () => {
    for (const { nodeId, sidecar } of sidecars) {
      const appOf = async (path: string) =>
        (await callThrough(sidecar, 'api', { path }).catch(() => undefined))?.app;
      await sidecar.envoy.waitFor(
        async () => (await appOf('/tenants/acme-1/orders')) === 'tenants-1',
        `${nodeId}: /tenants/acme-1/orders → tenants`,
        20_000,
      );
      expect(await appOf('/orders')).toBe('api-1');
      const row = proxyRows(cp!.xds.connected.values()).find((r) => r.nodeId === nodeId);
      const refused = Object.entries(row!.types).filter(([, t]) => t?.status === 'NACKED');
      expect(refused).toEqual([]);
    }
  });
});
