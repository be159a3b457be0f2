// The web console (/ui) in real headless Chromium against a real control plane and two real
// Envoy sidecars: it asks for the operator token, shows the mesh, both proxies SYNCED, a NACK
// with Envoy's own error text, and a catalog edit in the live view within 2 s; no console
// errors, only GET requests. Screenshots of each view go to test-results/console/.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProxyRow } from '../../src/admin/proxies.js';
import type { RunningControlPlane } from '../../src/app.js';
import { openCa, type OpenedCa } from '../../src/ca/index.js';
import { buildConsole, launchChromium, watchedPage, type WatchedPage } from '../support/browser.js';
import { httpGet, startHttpApp, type HttpApp } from '../support/http-app.js';
import { CatalogFile, startSidecar, startTestControlPlane, type Sidecar } from '../support/mesh.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

describe('web console in Chromium', () => {
  const catalog = new CatalogFile();
  // world in two subsets, split 90/10: the mesh view shows both.
  const traffic = new CatalogFile('traffic.yaml');
  const dataDir = mkdtempSync(join(tmpdir(), 'lucid-console-ca-'));
  let ca: OpenedCa;
  let cp: RunningControlPlane;
  let base: string;
  let token: string;
  let hello: HttpApp, world: HttpApp, world2: HttpApp;
  let a: Sidecar, b: Sidecar;
  let ports: { hello: number; world: number };
  let browser: Browser;
  let w: WatchedPage;

  const doc = (opts: { world2?: boolean; clashOn?: number; worldSidecarOn?: number } = {}) => ({
    services: [
      {
        name: 'hello',
        protocol: 'http',
        instances: [
          {
            id: 'hello-1',
            address: '127.0.0.1',
            port: hello.port,
            sidecarPort: ports.hello,
            zone: 'zone-a',
          },
        ],
      },
      {
        name: 'world',
        protocol: 'http',
        instances: [
          {
            id: 'world-1',
            address: '127.0.0.1',
            port: world.port,
            sidecarPort: opts.worldSidecarOn ?? ports.world,
            meta: { version: 'v1' },
          },
          ...(opts.world2 ? [{ id: 'world-2', address: '127.0.0.1', port: world2.port }] : []),
        ],
      },
      // A tcp service on A's outbound HTTP port: Envoy refuses the second listener (a NACK).
      ...(opts.clashOn
        ? [{ name: 'db', protocol: 'tcp', outboundPort: opts.clashOn, instances: [] }]
        : []),
    ],
    // A gateway of another datacenter (no Envoy: the mesh view lists it).
    gateways: [
      { id: 'gw-dc2', datacenter: 'dc2', address: '10.2.0.9', port: 8443, health: 'critical' },
    ],
  });

  const proxies = async () =>
    JSON.parse(
      (await httpGet(`${base}/v1/proxies`, { authorization: `Bearer ${token}` })).body,
    ) as { proxies: ProxyRow[] };

  /** Text of the first element matching `selector`, once it exists. */
  const textOf = async (selector: string, timeout = 15_000) => {
    const el = await w.page.waitForSelector(selector, { timeout });
    return (await el!.evaluate((e) => e.textContent ?? '')).trim();
  };

  beforeAll(async () => {
    // The console as `npm run build` makes it (dist/console/, served at /ui).
    buildConsole();
    [hello, world, world2] = await Promise.all([
      startHttpApp('hello'),
      startHttpApp('world'),
      startHttpApp('world-2'),
    ]);
    ports = { hello: await freePort(), world: await freePort() };
    catalog.write(doc());
    traffic.write([
      {
        Kind: 'service-resolver',
        Name: 'world',
        DefaultSubset: 'v1',
        Subsets: {
          v1: { Filter: 'Service.Meta.version == v1' },
          v2: { Filter: 'Service.Meta.version == v2' },
        },
      },
      {
        Kind: 'service-splitter',
        Name: 'world',
        Splits: [
          { Weight: 90, ServiceSubset: 'v1' },
          { Weight: 10, ServiceSubset: 'v2' },
        ],
      },
    ]);
    ca = await openCa({ dataDir, env: {} });
    cp = await startTestControlPlane(
      catalog,
      {},
      { traffic, security: { ca, mtls: false, auth: 'none', adminAuth: 'token' } },
    );
    base = `http://127.0.0.1:${cp.adminPort}`;
    token = await ca.tokens.issueOperator({ name: 'console-test' });
    [a, b] = await Promise.all([
      startSidecar({ nodeId: 'hello-1', service: 'hello', xdsPort: cp.xdsPort, mode: 'sotw' }),
      startSidecar({ nodeId: 'world-1', service: 'world', xdsPort: cp.xdsPort, mode: 'delta' }),
    ]);
    browser = await launchChromium();
    w = await watchedPage(browser);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await Promise.all([a?.envoy.stop(), b?.envoy.stop()]);
    await cp?.stop();
    await Promise.all([hello?.close(), world?.close(), world2?.close()]);
    catalog.remove();
    traffic.remove();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('asks for the operator token, then shows the mesh and who may call whom', async () => {
    await w.page.goto(`${base}/ui`);
    await w.page.waitForSelector('input#token');
    await w.screenshot('token');
    await w.page.type('input#token', token);
    await w.page.click('form button[type=submit]');
    await w.page.waitForSelector('#mesh-view section.service[data-service=world]');
    expect(await textOf('section.service[data-service=hello] tr[data-instance=hello-1]')).toMatch(
      /hello-1\s*127\.0\.0\.1:\d+\s*passing\s*.*zone-a\s*\d+/,
    );
    expect(await textOf('section.service[data-service=world] h3')).toContain('http');
    // The traffic configuration: world's subsets and its 90/10 split.
    expect(await textOf('section.service[data-service=world] .subsets')).toMatch(/v1\s*v2/);
    expect(await textOf('section.service[data-service=world] table.routes tbody')).toMatch(
      /any path\s*world\S*v1\S* 90%\s*world\S*v2\S* 10%/,
    );
    // The mesh gateways the control plane knows, with their health.
    expect(await textOf('#mesh-view section.gateways tr[data-gateway=gw-dc2]')).toMatch(
      /gw-dc2\s*dc2\s*10\.2\.0\.9:8443\s*10\.2\.0\.9:8443\s*critical/,
    );
    // No policy: each of the two services may call the other, drawn as two arrows.
    await w.page.waitForSelector('#call-graph path.edge[data-from=hello][data-to=world]');
    expect(await w.page.$$eval('#call-graph path.edge', (l) => l.length)).toBe(2);
    // The token stays in this tab's sessionStorage only.
    expect(
      // (page-side code as text: the tests' tsconfig has no DOM types)
      await w.page.evaluate(
        `[sessionStorage.getItem('lucid-mesh.operator-token') !== null, localStorage.length, document.cookie]`,
      ),
    ).toEqual([true, 0, '']);
    await w.screenshot('mesh');
  });

  it('shows both demo sidecars SYNCED for every type they subscribe to', async () => {
    await waitFor(
      async () => {
        const rows = (await proxies()).proxies;
        return rows.length === 2 &&
          rows.every((r) => Object.values(r.types).every((t) => t.status === 'SYNCED'))
          ? rows
          : undefined;
      },
      { what: 'both proxies SYNCED in /v1/proxies', timeoutMs: 20_000 },
    );
    await w.page.goto(`${base}/ui#/proxies`);
    for (const node of ['hello-1', 'world-1']) {
      for (const kind of ['listeners', 'routes', 'clusters', 'endpoints']) {
        await w.page.waitForSelector(
          `tr[data-node="${node}"] td.sync.SYNCED[data-kind="${kind}"]`,
          { timeout: 10_000 },
        );
      }
    }
    const row = await textOf('tr[data-node="world-1"]');
    expect(row).toMatch(/world-1\s*world\s*delta/);
    expect(row).toMatch(/\d+ s ago/);
    await w.screenshot('proxies');
  });

  it("shows a NACK with Envoy's own error text, on the list and on the proxy's page", async () => {
    catalog.write(doc({ clashOn: a.outboundPort }));
    const cell = 'tr[data-node="hello-1"] td.sync.NACKED[data-kind="listeners"]';
    await w.page.waitForSelector(cell, { timeout: 15_000 });
    const shown = await textOf(`${cell} .nack-error`);
    const envoySaid = (await proxies()).proxies.find((r) => r.nodeId === 'hello-1')!.types
      .listeners!.nackError!;
    expect(envoySaid).toMatch(/duplicate|address|outbound\|tcp\|db|outbound\|http/i);
    expect(shown).toBe(envoySaid.trim());
    await w.screenshot('proxies-nack');

    await w.page.goto(`${base}/ui#/proxies/hello-1`);
    await w.page.waitForSelector('#proxy-view tr.push.nacked');
    expect(await textOf('#proxy-view tr.push.nacked .nack-error')).toBe(envoySaid.trim());
    expect(await textOf('#proxy-view tr.push.acked')).toMatch(/acked/);
    // Its resources as Envoy JSON: the outbound listener it refused is among them.
    await w.page.waitForSelector('#proxy-view section.resources[data-kind=listeners]');
    expect(await textOf('#proxy-view section.resources[data-kind=listeners]')).toContain(
      `outbound|http|${a.outboundPort}`,
    );
    await w.page.click('#proxy-view section.resources[data-kind=clusters] summary');
    expect(await textOf('#proxy-view section.resources[data-kind=clusters] pre')).toContain(
      '"@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster"',
    );
    await w.screenshot('proxy');

    catalog.write(doc());
    await w.page.waitForSelector(
      '#proxy-view tr[data-node="hello-1"] td.sync.SYNCED[data-kind="listeners"]',
      { timeout: 15_000 },
    );
  });

  it('lists a proxy that refused its configuration first, under a summary, though it sorts last', async () => {
    await w.page.goto(`${base}/ui#/proxies`);
    await w.page.waitForSelector('tr[data-node="world-1"] td.sync.SYNCED[data-kind="listeners"]');
    await w.page.goto(`${base}/ui#/mesh`);
    await w.page.waitForSelector('#mesh-view');
    // world-1 alone NACKs: its inbound listener's port is taken by hello's app. hello-1 sorts
    // before it.
    catalog.write(doc({ worldSidecarOn: hello.port }));
    // Every view's header says so, linking to the list.
    const badge = await w.page.waitForSelector('header a.refused-badge', { timeout: 15_000 });
    expect(await badge!.evaluate((e) => e.textContent ?? '')).toBe(
      '1 proxy refused its configuration',
    );
    await w.screenshot('mesh-refused-badge');
    await badge!.click();
    await w.page.waitForSelector(
      '#proxies-view tbody tr:first-child[data-node="world-1"] td.sync.NACKED',
      { timeout: 15_000 },
    );
    expect(await textOf('#proxies-view .refused-summary')).toMatch(
      /^1 of 2 proxies refused their configuration \(NACK\)/,
    );
    await w.screenshot('proxies-refused-first');
    catalog.write(doc());
    await w.page.waitForSelector('tr[data-node="world-1"] td.sync.SYNCED[data-kind="listeners"]', {
      timeout: 15_000,
    });
    expect(await w.page.$('#proxies-view .refused-summary')).toBeNull();
  });

  it('shows a catalog edit in the live view within 2 s, filterable by node and type', async () => {
    await w.page.goto(`${base}/ui#/live`);
    await w.page.waitForSelector('#live-view .stream.open');
    await waitFor(() => cp.events.subscriberCount > 0, { what: 'the page follows /v1/events' });
    const wroteAt = Date.now();
    catalog.write(doc({ world2: true }));
    const change = await w.page.waitForSelector(
      '#live-view li.event.snapshot li.change[data-resource="endpoints/world"]',
      { timeout: 2_000 },
    );
    const seenAfterMs = Date.now() - wroteAt;
    expect(seenAfterMs).toBeLessThan(2_000);
    // The field-level diff names the new endpoint's port.
    expect(await change!.evaluate((e) => e.textContent ?? '')).toContain(String(world2.port));
    // Then the pushes and the ACKs of both proxies.
    await w.page.waitForSelector('#live-view li.event.ack');

    // Convergence of that change, once both proxies ACKed, is on the chart.
    await w.page.waitForSelector('#convergence-chart:not([data-points="0"])', {
      timeout: 10_000,
    });
    await w.screenshot('live');

    await w.page.select('#filter-node', 'world-1');
    await w.page.select('#filter-type', 'endpoints');
    const nodes = await w.page.$$eval('#live-view li.event:not(.snapshot)', (items) =>
      items.map((i) => i.textContent ?? ''),
    );
    expect(nodes.length).toBeGreaterThan(0);
    for (const line of nodes) {
      expect(line).toContain('world-1');
      expect(line).toContain('endpoints');
    }
    await w.screenshot('live-filtered');
    console.log(`console e2e: catalog edit shown in the live view after ${seenAfterMs} ms`);
  });

  it('made no console errors and only GET requests to this origin', () => {
    expect(w.errors).toEqual([]);
    expect(w.requests.length).toBeGreaterThan(5);
    for (const r of w.requests) expect(r).toMatch(new RegExp(`^GET ${base}/`));
  });
});
