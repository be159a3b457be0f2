// The console's live view, left open across a control-plane restart (an upgrade, a crash): it
// says the stream is gone (the other views, that the control plane does not answer),
// reconnects by itself once the control plane is back on the same port, and shows the new
// control plane's events, without a reload. Real Chromium, real
// control plane (no sidecar needed: a catalog edit is a snapshot event).
import type { Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { get as httpRequest, type ClientRequest } from 'node:http';
import type { RunningControlPlane } from '../../src/app.js';
import { FileSource } from '../../src/sources/file-source.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import {
  buildConsole,
  launchChromium,
  openConsole,
  watchedPage,
  type WatchedPage,
} from '../support/browser.js';
import { CatalogFile, startTestControlPlane } from '../support/mesh.js';
import { freePort } from '../support/ports.js';
import { QUICK_DEBOUNCE, startSourceControlPlane } from '../support/source-control-plane.js';
import { waitFor } from '../support/wait.js';

describe('console live view across a control-plane restart', () => {
  const catalog = new CatalogFile();
  let cp: RunningControlPlane | undefined;
  let browser: Browser | undefined;
  let w: WatchedPage;
  let adminPort: number;

  const doc = (instances: number) => ({
    services: [
      {
        name: 'api',
        instances: Array.from({ length: instances }, (_, i) => ({
          id: `api-${i + 1}`,
          address: '127.0.0.1',
          port: 9000 + i,
        })),
      },
    ],
  });

  // No operator auth: the restarted control plane takes the same (empty) token.
  const start = () => startTestControlPlane(catalog, { admin: adminPort });

  beforeAll(async () => {
    buildConsole();
    adminPort = await freePort();
    catalog.write(doc(1));
    cp = await start();
    browser = await launchChromium();
    w = await watchedPage(browser);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await cp?.stop();
    catalog.remove();
  });

  it('says the stream is gone, reconnects when the control plane is back and shows its events', async () => {
    await openConsole(w, adminPort, '#/live');
    await w.page.waitForSelector('#live-view .stream.open');

    await cp!.stop();
    cp = undefined;
    await w.page.waitForSelector('#live-view .stream:not(.open)', { timeout: 10_000 });
    const down = await w.page.$eval('#live-view h2', (e) => e.textContent ?? '');
    expect(down).toMatch(/reconnecting/);
    // The other views say plainly that the control plane is not answering.
    await w.page.evaluate(`location.hash = '#/proxies'`);
    const said = await w.page.waitForSelector('#proxies-view p.error', { timeout: 10_000 });
    expect(await said!.evaluate((e) => e.textContent ?? '')).toMatch(
      /^the control plane did not answer \(/,
    );
    await w.page.evaluate(`location.hash = '#/live'`);
    await w.page.waitForSelector('#live-view .stream');

    cp = await start();
    const restarted = cp;
    await w.page.waitForSelector('#live-view .stream.open', { timeout: 15_000 });
    await waitFor(() => restarted.events.subscriberCount > 0, {
      what: 'the page follows the new control plane’s /v1/events',
    });
    catalog.write(doc(2));
    const change = await w.page.waitForSelector(
      '#live-view li.event.snapshot li.change[data-resource="endpoints/api"]',
      { timeout: 10_000 },
    );
    expect(await change!.evaluate((e) => e.textContent ?? '')).toContain('9001');
    await w.screenshot('live-reconnected');
  });
});

describe('console live view refused by the server', () => {
  const catalog = new CatalogFile();
  let cp: RunningControlPlane | undefined;
  let browser: Browser | undefined;
  let held: ClientRequest | undefined;

  beforeAll(async () => {
    buildConsole();
    catalog.write({ services: [{ name: 'api', instances: [] }] });
    cp = await startSourceControlPlane(new FileSource(catalog.path, silentLogger), {
      ...QUICK_DEBOUNCE,
      maxEventClients: 1,
    });
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    held?.destroy();
    await browser?.close();
    await cp?.stop();
    catalog.remove();
  });

  it("says why in the server's words, and connects once it may", async () => {
    // The one event client allowed is this test's.
    held = httpRequest(`http://127.0.0.1:${cp!.adminPort}/v1/events`);
    await waitFor(() => cp!.events.subscriberCount === 1, { what: 'the test holds the slot' });
    const w = await watchedPage(browser!);
    await openConsole(w, cp!.adminPort, '#/live');
    const said = await w.page.waitForSelector('#live-view h2 .error', { timeout: 10_000 });
    expect(await said!.evaluate((e) => e.textContent ?? '')).toContain(
      'too many event clients (at most 1, --max-event-clients); try again later; trying again in',
    );
    held.destroy();
    await w.page.waitForSelector('#live-view .stream.open', { timeout: 15_000 });
  });
});
