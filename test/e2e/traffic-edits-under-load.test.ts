// Traffic edits while requests flow, against real Envoy in SotW and delta at once: each edit
// sends all of api's traffic to a subset that did not exist before (a canary's first step).
// Nothing may fail: Envoy keeps a new cluster warming until its endpoints arrive, and a route
// to it that arrived first failed requests with 503 (flag NC, stat `no_cluster`), a few per
// edit (src/xds/warming-hold.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/app.js';
import { CatalogFile, startSidecar, startTestControlPlane, type Sidecar } from '../support/mesh.js';
import { startLoadLoop } from '../support/load-loop.js';
import { freePort } from '../support/ports.js';
import {
  callThrough,
  envoyRoutes,
  startTrafficApp,
  type TrafficApp,
} from '../support/traffic-app.js';

const EDITS = 12;
const RPS = 100;

/** api's subsets v1 and v2, plus `fresh` (new each edit) over `tag`, which gets every request. */
const allTo = (fresh: string, tag: string) => [
  {
    Kind: 'service-resolver',
    Name: 'api',
    Subsets: {
      v1: { Filter: '"v1" in Service.Tags' },
      v2: { Filter: '"v2" in Service.Tags' },
      [fresh]: { Filter: `"${tag}" in Service.Tags` },
    },
  },
  { Kind: 'service-splitter', Name: 'api', Splits: [{ Weight: 100, ServiceSubset: fresh }] },
];

describe('traffic edits under load with real Envoy (SotW and delta)', () => {
  const catalog = new CatalogFile();
  const traffic = new CatalogFile('traffic.yaml');
  let cp: RunningControlPlane | undefined;
  let v1: TrafficApp | undefined;
  let v2: TrafficApp | undefined;
  const sidecars: Sidecar[] = [];

  beforeAll(async () => {
    [v1, v2] = await Promise.all([startTrafficApp('api-v1'), startTrafficApp('api-v2')]);
    catalog.write({
      services: [
        {
          name: 'api',
          instances: [
            { id: 'api-v1', address: '127.0.0.1', port: v1.port, tags: ['v1'] },
            { id: 'api-v2', address: '127.0.0.1', port: v2.port, tags: ['v2'] },
          ],
        },
        { name: 'web', instances: [] },
      ],
    });
    traffic.write(allTo('first', 'v1'));
    const xdsPort = await freePort();
    cp = await startTestControlPlane(catalog, { xds: xdsPort }, { traffic });
    for (const mode of ['sotw', 'delta'] as const) {
      sidecars.push(await startSidecar({ nodeId: `web-${mode}`, service: 'web', xdsPort, mode }));
    }
    for (const web of sidecars) {
      await web.envoy.waitFor(
        async () => (await callThrough(web, 'api').catch(() => undefined))?.app === 'api-v1',
        'web → api answered',
        30_000,
      );
    }
  });

  afterAll(async () => {
    for (const web of sidecars) await web.envoy.stop();
    await cp?.stop();
    await Promise.all([v1?.close(), v2?.close()]);
    catalog.remove();
    traffic.remove();
  });

  it(`${EDITS} edits, each to a new subset, fail no request`, async () => {
    const loops = sidecars.map((web) => startLoadLoop(web, 'api', { rps: RPS, maxMs: 60_000 }));
    try {
      for (let i = 0; i < EDITS; i++) {
        const fresh = `c${i}`;
        traffic.write(allTo(fresh, i % 2 === 0 ? 'v2' : 'v1'));
        for (const web of sidecars) {
          await web.envoy.waitFor(
            async () =>
              JSON.stringify(await envoyRoutes(web.envoy, 'api')).includes(`api~${fresh}"`),
            `api's route to subset ${fresh}`,
            10_000,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 250)); // requests on the new route too
      }
    } finally {
      await Promise.all(loops.map((l) => l.stop()));
    }
    const results = await Promise.all(
      sidecars.map(async (web, i) => ({
        web: web.envoy.name,
        count: loops[i]!.count(),
        noCluster: await web.envoy.stat('http.outbound_http.no_cluster'),
      })),
    );
    for (const { web, count, noCluster } of results) {
      console.log(
        `[${web}] ${count.total} requests over ${EDITS} edits: ${count.failed} failed, no_cluster ${noCluster}; answered by ${JSON.stringify(count.apps)}`,
      );
    }
    for (const { count, noCluster } of results) {
      expect(count.failures).toEqual([]);
      expect(noCluster).toBe(0);
      // Every edit moved the traffic: both subsets answered.
      expect(Object.keys(count.apps).sort()).toEqual(['api-v1', 'api-v2']);
      expect(count.total).toBeGreaterThan(EDITS * 20);
    }
  });
});
