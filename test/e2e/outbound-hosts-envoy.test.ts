// The outbound listener's virtual hosts against real Envoy in SotW and delta: whatever Host an
// app sends for a service (bare, with the mesh domain, with a port, in any case) reaches it, and
// a Host that names no service gets 404.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/app.js';
import type { XdsMode } from '../../src/bootstrap/render.js';
import { httpGet, startHttpApp, type HttpApp } from '../support/http-app.js';
import {
  CatalogFile,
  startSidecar,
  startTestControlPlane,
  waitReaches,
  type Sidecar,
} from '../support/mesh.js';

const MODES: readonly XdsMode[] = ['sotw', 'delta'];

describe('outbound virtual hosts by Host (real Envoy)', () => {
  const catalog = new CatalogFile();
  let cp: RunningControlPlane;
  let hello: HttpApp, world: HttpApp;
  const clients = new Map<XdsMode, Sidecar>();

  beforeAll(async () => {
    [hello, world] = await Promise.all([startHttpApp('hello'), startHttpApp('world')]);
    catalog.write({
      services: [
        { name: 'client', instances: [] },
        { name: 'hello', instances: [{ id: 'hello-1', address: '127.0.0.1', port: hello.port }] },
        { name: 'world', instances: [{ id: 'world-1', address: '127.0.0.1', port: world.port }] },
      ],
    });
    cp = await startTestControlPlane(catalog);
    for (const mode of MODES) {
      clients.set(
        mode,
        await startSidecar({
          nodeId: `client-${mode}`,
          service: 'client',
          xdsPort: cp.xdsPort,
          mode,
        }),
      );
    }
    await Promise.all([...clients.values()].map((c) => waitReaches(c, 'world', 'client → world')));
  }, 60_000);

  afterAll(async () => {
    await Promise.all([...clients.values()].map((c) => c.envoy.stop()));
    await cp?.stop();
    await Promise.all([hello?.close(), world?.close()]);
    catalog.remove();
  });

  it.each(MODES)(
    '%s: the Host with or without the mesh domain and a port, in any case, finds the service; others 404',
    async (mode) => {
      const client = clients.get(mode)!;
      for (const host of [
        'world',
        'world:8080',
        'world.lucid.internal',
        'world.lucid.internal:15001',
        'World.Lucid.Internal:15001',
      ]) {
        const res = await httpGet(`http://127.0.0.1:${client.outboundPort}/x`, { host }, 3000);
        expect(res.status, `${host}: ${res.body}`).toBe(200);
        expect(JSON.parse(res.body), host).toMatchObject({ app: 'world', path: '/x' });
      }
      for (const host of ['nowhere', 'world.elsewhere', 'world.lucid.internal.evil:80']) {
        const res = await httpGet(`http://127.0.0.1:${client.outboundPort}/`, { host }, 3000);
        expect(res.status, host).toBe(404);
      }
    },
  );
});
