// The console's mesh view on a mesh too big for the call graph (more than MAX_GRAPH_SERVICES
// services), in real Chromium against a real control plane: it says why the graph is missing
// and stops asking for it (it asked every 5 s, each a 413 and a console error in devtools),
// asking again once the mesh changes size. Only GETs, no console errors.
import type { Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_GRAPH_SERVICES } from '../../src/admin/call-graph.js';
import type { RunningControlPlane } from '../../src/app.js';
import {
  buildConsole,
  launchChromium,
  openConsole,
  watchedPage,
  type WatchedPage,
} from '../support/browser.js';
import { CatalogFile, startTestControlPlane } from '../support/mesh.js';

describe('console mesh view on a mesh too big for the call graph', () => {
  const catalog = new CatalogFile();
  let cp: RunningControlPlane | undefined;
  let browser: Browser | undefined;
  let w: WatchedPage;

  const doc = (n: number) => ({
    services: Array.from({ length: n }, (_, i) => ({
      name: `svc-${i}`,
      instances: [{ id: `svc-${i}-1`, address: '127.0.0.1', port: 9000 + i }],
    })),
  });
  const callsAsked = () => w.requests.filter((r) => r.endsWith('/v1/mesh/calls')).length;

  beforeAll(async () => {
    buildConsole();
    catalog.write(doc(MAX_GRAPH_SERVICES + 1));
    cp = await startTestControlPlane(catalog);
    browser = await launchChromium();
    w = await watchedPage(browser);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await cp?.stop();
    catalog.remove();
  });

  it('says why there is no graph and asks once, not every 5 s; again when the mesh shrinks', async () => {
    await openConsole(w, cp!.adminPort, '#/mesh');
    await w.page.waitForSelector('#mesh-view section.service[data-service=svc-0]');
    const said = await w.page.waitForSelector('#mesh-view .graph-unavailable', {
      timeout: 10_000,
    });
    expect(await said!.evaluate((e) => e.textContent ?? '')).toContain(
      `the mesh has ${MAX_GRAPH_SERVICES + 1} services`,
    );
    // Two polls' worth of time (every 5 s): no second request.
    await new Promise((r) => setTimeout(r, 11_000));
    expect(callsAsked()).toBe(1);
    // Devtools show no error: the one refusal is expected, not a failure.
    expect(w.errors.filter((e) => !e.includes('413'))).toEqual([]);
    expect(w.errors.filter((e) => e.includes('413')).length).toBeLessThanOrEqual(1);

    // Small enough again: the graph is drawn.
    catalog.write(doc(3));
    await w.page.waitForSelector('#call-graph path.edge[data-from=svc-0][data-to=svc-1]', {
      timeout: 10_000,
    });
    for (const r of w.requests) expect(r).toMatch(/^GET /);
  }, 40_000);
});
