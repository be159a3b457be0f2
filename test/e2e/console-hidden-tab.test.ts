// The console stops polling while its tab is hidden (real Chromium against a real control
// plane): a console left open in a background tab asked /v1/mesh (2.3 MB at 1,000 services)
// every 2 s and /v1/proxies every 5 s for nobody. Shown again, it asks at once.
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/app.js';
import {
  buildConsole,
  launchChromium,
  openConsole,
  watchedPage,
  type WatchedPage,
} from '../support/browser.js';
import { CatalogFile, startTestControlPlane } from '../support/mesh.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('console in a hidden tab', () => {
  const catalog = new CatalogFile();
  let cp: RunningControlPlane | undefined;
  let browser: Browser | undefined;
  let w: WatchedPage;
  let other: Page | undefined;

  const meshAsks = () => w.requests.filter((r) => /\/v1\/mesh$/.test(r)).length;
  // Strings, not functions: they run in the page, and this project's types have no DOM.
  const visibility = () => w.page.evaluate('document.visibilityState');

  beforeAll(async () => {
    buildConsole();
    catalog.write({
      services: [{ name: 'hello', instances: [{ id: 'hello-1', address: '127.0.0.1', port: 9 }] }],
    });
    cp = await startTestControlPlane(catalog);
    browser = await launchChromium();
    w = await watchedPage(browser);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await cp?.stop();
    catalog.remove();
  });

  it('asks nothing while hidden, and asks at once when shown again', async () => {
    await openConsole(w, cp!.adminPort, '#/mesh');
    await w.page.waitForSelector('#mesh-view section.service[data-service=hello]');
    // Shown: the mesh view asks every 2 s.
    const shownFrom = meshAsks();
    await sleep(4_500);
    expect(meshAsks() - shownFrom).toBeGreaterThanOrEqual(2);

    // Another tab in front: this one is hidden, as a user's background tab.
    other = await browser!.newPage();
    await other.bringToFront();
    await w.page.waitForFunction("document.visibilityState === 'hidden'", { timeout: 5_000 });
    await sleep(500); // an ask already under way may still finish
    const hiddenFrom = w.requests.length;
    await sleep(6_000);
    expect(w.requests.slice(hiddenFrom)).toEqual([]);

    // Back in front: asked at once, not after a full period.
    const before = meshAsks();
    const started = Date.now();
    await w.page.bringToFront();
    expect(await visibility()).toBe('visible');
    while (meshAsks() === before && Date.now() - started < 1_500) await sleep(50);
    expect(meshAsks()).toBeGreaterThan(before);
    expect(w.errors).toEqual([]);
  }, 40_000);
});
