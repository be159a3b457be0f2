// Headless Chromium (Debian's, from scripts/tools/chromium.sh) driven by puppeteer-core: no
// library ever downloads a browser. The browser dies with the test process (reaper.ts) and
// every page records what a user's devtools would show as errors.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { killWithTestProcess } from './reaper.js';
import { toolPath } from './tools.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** Where tests save screenshots (gitignored). */
export const ARTIFACTS = join('test-results', 'console');

export async function launchChromium(): Promise<Browser> {
  const browser = await puppeteer.launch({
    executablePath: toolPath('chromium'),
    headless: true,
    // Tests run as root in containers (no user namespaces for the sandbox); /dev/shm is small.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
    defaultViewport: { width: 1280, height: 900 },
  });
  const child = browser.process();
  if (child) killWithTestProcess(child, 'chromium');
  return browser;
}

export interface WatchedPage {
  readonly page: Page;
  /** Console errors, uncaught exceptions and failed requests, in order. */
  readonly errors: string[];
  /** Every request the page made, as "METHOD url". */
  readonly requests: string[];
  screenshot(name: string): Promise<string>;
}

export async function watchedPage(browser: Browser): Promise<WatchedPage> {
  const page = await browser.newPage();
  const errors: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (err) => errors.push(`page: ${(err as Error).message}`));
  page.on('requestfailed', (r) => {
    // A stream the page itself ends (leaving the live view) is not a failure.
    if (r.failure()?.errorText !== 'net::ERR_ABORTED')
      errors.push(`request: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`);
  });
  page.on('request', (r) => requests.push(`${r.method()} ${r.url()}`));
  mkdirSync(ARTIFACTS, { recursive: true });
  return {
    page,
    errors,
    requests,
    async screenshot(name) {
      const path = join(ARTIFACTS, `${name}.png`);
      await page.screenshot({ path, fullPage: true });
      return path;
    },
  };
}

/** Builds `dist/console/` (what the admin server serves at /ui) from the current sources. */
export function buildConsole(): void {
  execFileSync(process.execPath, ['scripts/build-console.mjs'], { cwd: repoRoot });
}

/**
 * Opens the console at `hash` (e.g. `#/mesh`) of a control plane run with --admin-auth none:
 * its token form is sent empty, as a user there would.
 */
export async function openConsole(w: WatchedPage, adminPort: number, hash: string): Promise<void> {
  await w.page.goto(`http://127.0.0.1:${adminPort}/ui${hash}`);
  await w.page.waitForSelector('input#token');
  await w.page.click('form button[type=submit]');
}
