// A method the admin API does not take (curl -X POST, a tool probing with OPTIONS): 405 with
// the Allow header RFC 9110 requires, naming GET and HEAD, and a body naming the method sent.
// A real control plane's admin port (no auth: the method is judged after the token).
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/app.js';
import { CatalogFile, startTestControlPlane } from '../support/mesh.js';

function send(port: number, method: string, path: string) {
  return new Promise<{ status: number; allow?: string; body: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, allow: res.headers.allow, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the admin API and methods other than GET/HEAD', () => {
  const catalog = new CatalogFile();
  let cp: RunningControlPlane;

  beforeAll(async () => {
    catalog.write({ services: [{ name: 'web', instances: [] }] });
    cp = await startTestControlPlane(catalog);
  });

  afterAll(async () => {
    await cp?.stop();
    catalog.remove();
  });

  it('405 with Allow: GET, HEAD on /v1/, /ready and /metrics; GET still 200', async () => {
    for (const [method, path] of [
      ['POST', '/v1/proxies'],
      ['DELETE', '/v1/mesh'],
      ['PUT', '/ready'],
      ['OPTIONS', '/metrics'],
    ] as const) {
      const r = await send(cp.adminPort, method, path);
      expect(r.status, `${method} ${path}`).toBe(405);
      expect(r.allow, `${method} ${path}`).toBe('GET, HEAD');
      expect(JSON.parse(r.body)).toEqual({ error: `only GET and HEAD, got ${method}` });
    }
    expect((await send(cp.adminPort, 'GET', '/v1/proxies')).status).toBe(200);
  });
});
