// Scope `policy` (docs/scoping.md) follows intention edits on running sidecars, against a real
// Envoy: web declares nothing, so it receives what the intentions let it call. An intention
// allowing web to call `billing` widens its scope (the cluster arrives and answers), a deny
// narrows it again (cluster and virtual host go, no update rejected, api keeps answering).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/app.js';
import {
  CatalogFile,
  hasCluster,
  rejectedUpdates,
  startSidecar,
  startTestControlPlane,
  type Sidecar,
} from '../support/mesh.js';
import { callThrough, startTrafficApp, type TrafficApp } from '../support/traffic-app.js';

const intention = (name: string, action: 'allow' | 'deny') => ({
  Kind: 'service-intentions',
  Name: name,
  Sources: [{ Name: 'web', Action: action }],
});

describe('scope policy follows intention edits (real Envoy)', () => {
  const catalog = new CatalogFile();
  const traffic = new CatalogFile('traffic.yaml');
  let cp: RunningControlPlane | undefined;
  let api: TrafficApp, billing: TrafficApp;
  let web: Sidecar;

  beforeAll(async () => {
    [api, billing] = await Promise.all([startTrafficApp('api'), startTrafficApp('billing')]);
    catalog.write({
      services: [
        { name: 'api', instances: [{ id: 'api-1', address: '127.0.0.1', port: api.port }] },
        {
          name: 'billing',
          instances: [{ id: 'billing-1', address: '127.0.0.1', port: billing.port }],
        },
        { name: 'web', instances: [] },
      ],
    });
    traffic.write([intention('api', 'allow'), intention('billing', 'deny')]);
    cp = await startTestControlPlane(
      catalog,
      {},
      { traffic, mesh: { scope: 'policy', intentionsDefault: 'deny' } },
    );
    web = await startSidecar({
      nodeId: 'web-1',
      service: 'web',
      xdsPort: cp.xdsPort,
      mode: 'delta',
    });
    await web.envoy.waitFor(
      async () => (await callThrough(web, 'api').catch(() => undefined))?.app === 'api',
      'web → api',
      30_000,
    );
  }, 60_000);

  afterAll(async () => {
    await web?.envoy.stop();
    await cp?.stop();
    await Promise.all([api?.close(), billing?.close()]);
    catalog.remove();
    traffic.remove();
  });

  it('denied: not in the scope; allowed: in it; denied again: gone', async () => {
    expect(await hasCluster(web.envoy, 'billing')).toBe(false);
    expect((await web.call('billing')).status).toBe(404);

    traffic.write([intention('api', 'allow'), intention('billing', 'allow')]);
    await web.envoy.waitFor(
      async () => (await callThrough(web, 'billing').catch(() => undefined))?.app === 'billing',
      'web → billing once allowed',
    );

    traffic.write([intention('api', 'allow'), intention('billing', 'deny')]);
    await web.envoy.waitFor(
      async () => !(await hasCluster(web.envoy, 'billing')),
      'billing cluster removed once denied',
    );
    expect((await web.call('billing')).status).toBe(404);
    expect((await callThrough(web, 'api')).app).toBe('api');
    expect(await rejectedUpdates(web.envoy)).toBe(0);
  });
});
