// Scope widening while requests flow (docs/scoping.md), against real Envoy in SotW and delta:
// web declares only `api`; a splitter of api sending everything to `billing`, then a chain
// (billing → ledger), then none, widen and narrow web's scope by one edit each. The sidecar
// must get the new clusters before the route that uses them, and lose them only after the
// route stopped using them: no request may fail (503 NC: no cluster) on the way.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/app.js';
import { startLoadLoop } from '../support/load-loop.js';
import {
  CatalogFile,
  hasCluster,
  rejectedUpdates,
  startSidecar,
  startTestControlPlane,
  type Sidecar,
} from '../support/mesh.js';
import { freePort } from '../support/ports.js';
import { callThrough, startTrafficApp, type TrafficApp } from '../support/traffic-app.js';

const RPS = 80;
const split = (from: string, to: string) => ({
  Kind: 'service-splitter',
  Name: from,
  Splits: [{ Weight: 100, Service: to }],
});
/** Each edit and the services web's sidecar must then hold (and the app that answers). */
const EDITS = [
  { entries: [split('api', 'billing')], holds: ['api', 'billing'], app: 'billing' },
  {
    entries: [split('api', 'billing'), split('billing', 'ledger')],
    // Consul's discovery chain: api's route goes to where billing's splitter sends it.
    holds: ['api', 'ledger'],
    app: 'ledger',
  },
  { entries: [], holds: ['api'], app: 'api' },
  { entries: [split('api', 'ledger')], holds: ['api', 'ledger'], app: 'ledger' },
  { entries: [], holds: ['api'], app: 'api' },
];
const ALL = ['api', 'billing', 'ledger'];

describe('scope widening and narrowing under load (real Envoy, SotW and delta)', () => {
  const catalog = new CatalogFile();
  const traffic = new CatalogFile('traffic.yaml');
  let cp: RunningControlPlane | undefined;
  const apps: TrafficApp[] = [];
  const sidecars: Sidecar[] = [];

  beforeAll(async () => {
    apps.push(...(await Promise.all(ALL.map((name) => startTrafficApp(name)))));
    catalog.write({
      services: [
        ...ALL.map((name, i) => ({
          name,
          instances: [{ id: `${name}-1`, address: '127.0.0.1', port: apps[i]!.port }],
        })),
        { name: 'web', upstreams: ['api'], instances: [] },
      ],
    });
    traffic.write([]);
    const xdsPort = await freePort();
    cp = await startTestControlPlane(
      catalog,
      { xds: xdsPort },
      { traffic, mesh: { scope: 'declared' } },
    );
    for (const mode of ['sotw', 'delta'] as const) {
      sidecars.push(await startSidecar({ nodeId: `web-${mode}`, service: 'web', xdsPort, mode }));
    }
    for (const web of sidecars) {
      await web.envoy.waitFor(
        async () => (await callThrough(web, 'api').catch(() => undefined))?.app === 'api',
        'web → api answered',
        30_000,
      );
      expect(await hasCluster(web.envoy, 'billing')).toBe(false);
    }
  }, 60_000);

  afterAll(async () => {
    for (const web of sidecars) await web.envoy.stop();
    await cp?.stop();
    await Promise.all(apps.map((a) => a.close()));
    catalog.remove();
    traffic.remove();
  });

  it('each edit moves the traffic and fails no request', async () => {
    const loops = sidecars.map((web) => startLoadLoop(web, 'api', { rps: RPS, maxMs: 60_000 }));
    try {
      for (const edit of EDITS) {
        traffic.write(edit.entries);
        for (const web of sidecars) {
          await web.envoy.waitFor(
            async () => {
              for (const name of ALL) {
                if ((await hasCluster(web.envoy, name)) !== edit.holds.includes(name)) return false;
              }
              return (await callThrough(web, 'api').catch(() => undefined))?.app === edit.app;
            },
            `web holds ${edit.holds.join(', ')} and api answers from ${edit.app}`,
            10_000,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
    } finally {
      await Promise.all(loops.map((l) => l.stop()));
    }
    for (const [i, web] of sidecars.entries()) {
      const count = loops[i]!.count();
      const noCluster = await web.envoy.stat('http.outbound_http.no_cluster');
      console.log(
        `[${web.envoy.name}] ${count.total} requests over ${EDITS.length} edits: ${count.failed} failed, no_cluster ${noCluster}; answered by ${JSON.stringify(count.apps)}`,
      );
      expect(count.failures).toEqual([]);
      expect(noCluster).toBe(0);
      expect(await rejectedUpdates(web.envoy)).toBe(0);
      expect(Object.keys(count.apps).sort()).toEqual(ALL);
    }
  }, 90_000);
});
