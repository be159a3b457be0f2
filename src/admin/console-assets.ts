// The web console's static files (built by scripts/build-console.mjs into dist/console/),
// served at /ui on the admin port. The shell and assets are public (they hold no data; the page
// asks for an operator token and reads /v1/ with it), strict CSP: nothing but this origin.
import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import { packageRoot } from '../package-root.js';

export const CONSOLE_PATH = '/ui';

/** The console's page and its scripts and styles may come from this origin only. */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** The files the build writes; nothing else is served (no directory walking). */
const FILES: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};

export function isConsolePath(pathname: string): boolean {
  return pathname === CONSOLE_PATH || pathname.startsWith(`${CONSOLE_PATH}/`);
}

export function consoleDir(): string {
  return join(packageRoot(import.meta.url), 'dist', 'console');
}

/** Serves /ui (the page) and /ui/<file>; 404 for anything else, 503 if not built. */
export async function serveConsole(
  pathname: string,
  res: ServerResponse,
  dir: string = consoleDir(),
): Promise<void> {
  const rest = pathname.slice(CONSOLE_PATH.length).replace(/^\/+/, '');
  const file = rest === '' ? 'index.html' : rest;
  const type = FILES[file];
  const headers = {
    'content-security-policy': CONSOLE_CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  };
  if (!type) {
    res.writeHead(404, { ...headers, 'content-type': 'application/json' });
    res.end(`${JSON.stringify({ error: `no such console file ${pathname}` })}\n`);
    return;
  }
  let body: Buffer;
  try {
    body = await readFile(join(dir, file));
  } catch {
    res.writeHead(503, { ...headers, 'content-type': 'application/json' });
    res.end(
      `${JSON.stringify({ error: `the web console is not built (${join(dir, file)} missing): run npm run build` })}\n`,
    );
    return;
  }
  res.writeHead(200, { ...headers, 'content-type': type, 'cache-control': 'no-cache' });
  res.end(body);
}
