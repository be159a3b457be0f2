// The admin endpoints the web console reads beyond the CLI's: a proxy's last pushes and how it
// answered them (/v1/proxies/pushes), convergence per snapshot (/v1/convergence), who may call
// whom (/v1/mesh/calls), and the console's own files at /ui (open, CSP, nothing else served).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callGraph } from '../../src/admin/call-graph.js';
import { CONSOLE_CSP } from '../../src/admin/console-assets.js';
import { AdminServer } from '../../src/admin/http-server.js';
import type { AdminAuthorizer } from '../../src/admin/auth.js';
import type { RunningControlPlane } from '../../src/app.js';
import { parseCatalog } from '../../src/catalog/schema.js';
import { buildMesh } from '../../src/mesh/build.js';
import { DEFAULT_MESH_SETTINGS } from '../../src/mesh/types.js';
import { parsePolicy } from '../../src/policy/schema.js';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { EventHub } from '../../src/telemetry/events.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { Metrics } from '../../src/telemetry/metrics.js';
import { parseTrafficDocument } from '../../src/traffic/schema.js';
import { ack, node, sotwClient, typeUrl, type SotwStreamClient } from '../support/ads-client.js';
import { twoServices } from '../support/control-plane.js';
import { httpGet } from '../support/http-app.js';
import { CatalogFile, startTestControlPlane } from '../support/mesh.js';
import { waitFor } from '../support/wait.js';

describe('/v1/proxies/pushes and /v1/convergence', () => {
  const catalog = new CatalogFile();
  let cp: RunningControlPlane;
  let server: string;
  let client: SotwStreamClient;
  const json = async (path: string) => {
    const r = await httpGet(`${server}${path}`);
    return { status: r.status, body: JSON.parse(r.body) };
  };

  beforeAll(async () => {
    catalog.write(twoServices());
    cp = await startTestControlPlane(catalog);
    server = `http://127.0.0.1:${cp.adminPort}`;
    client = sotwClient(cp.xdsPort);
  });
  afterAll(async () => {
    client?.close();
    await cp?.stop();
    catalog.remove();
  });

  it("records a push, the proxy's ACK, then a NACK with its error text", async () => {
    client.send({ node: node('hello-1', 'hello'), typeUrl: typeUrl('clusters') });
    const first = await client.next();
    client.send(ack(first));
    const acked = await waitFor(
      async () => {
        const { body } = await json('/v1/proxies/pushes?node=hello-1');
        return body.pushes[0]?.outcome === 'acked' ? body : undefined;
      },
      { what: 'the push ACKed' },
    );
    expect(acked.connected).toBe(true);
    expect(acked.pushes[0]).toMatchObject({
      type: 'clusters',
      version: first.versionInfo,
      nonce: first.nonce,
    });
    expect(acked.pushes[0].resources).toBeGreaterThan(0);

    // A catalog edit: a new push, which the proxy refuses.
    catalog.write(twoServices({ more: [{ name: 'extra', instances: [] }] }));
    let second = await client.next(5000);
    // (a file edit may be seen as more than one change: answer the last push)
    for (;;) {
      const more = await client.next(700).catch(() => undefined);
      if (!more) break;
      second = more;
    }
    client.send({
      typeUrl: second.typeUrl,
      versionInfo: first.versionInfo,
      responseNonce: second.nonce,
      errorDetail: { code: 13, message: 'cluster extra: bad config (test)' },
    });
    const nacked = await waitFor(
      async () => {
        const { body } = await json('/v1/proxies/pushes?node=hello-1');
        return body.pushes[0]?.outcome === 'nacked' ? body : undefined;
      },
      { what: 'the push NACKed' },
    );
    expect(nacked.pushes[0]).toMatchObject({
      version: second.versionInfo,
      error: 'cluster extra: bad config (test)',
    });
    expect(nacked.pushes[1]).toMatchObject({ version: first.versionInfo, outcome: 'acked' });
  });

  it('lists convergence per snapshot once every proxy ACKed', async () => {
    // The proxy above (it NACKed the last push) now ACKs the next one: that change converges.
    const before = (await json('/v1/convergence')).body.changes.length;
    const wroteAt = Date.now();
    catalog.write(twoServices({ more: [{ name: 'extra2', instances: [] }] }));
    // ACK every push until the control plane has nothing more to send (a file edit may be
    // seen as more than one change).
    client.send(ack(await client.next(5000)));
    for (;;) {
      const more = await client.next(700).catch(() => undefined);
      if (!more) break;
      client.send(ack(more));
    }
    const changes = await waitFor(
      async () => {
        const { body } = await json('/v1/convergence');
        return body.changes.length > before ? body.changes : undefined;
      },
      { what: 'a convergence point for the catalog edit' },
    );
    // The snapshot version (not a response's per-type version) and how long it took.
    const point = changes.at(-1);
    expect(point.version).toMatch(/^\S+$/);
    expect(Date.parse(point.changedAt)).toBeGreaterThanOrEqual(wroteAt - 50);
    expect(point.seconds).toBeGreaterThanOrEqual(0);
    expect(point.seconds * 1000).toBeLessThanOrEqual(Date.now() - wroteAt + 50);
  });

  it('names the missing parameter, and answers an unknown node with no pushes', async () => {
    const missing = await json('/v1/proxies/pushes');
    expect(missing.status).toBe(400);
    expect(missing.body.error).toContain('node: required');
    expect((await json('/v1/proxies/pushes?node=nobody')).body).toEqual({
      node: 'nobody',
      connected: false,
      pushes: [],
    });
  });

  it('/v1/mesh/calls lists every ordered pair of services (no policy: all allowed)', async () => {
    const { status, body } = await json('/v1/mesh/calls');
    expect(status).toBe(200);
    expect(body.services).toEqual(['extra2', 'hello', 'world']);
    expect(body.calls).toHaveLength(6);
    expect(body.calls.every((c: { decision: string }) => c.decision === 'allow')).toBe(true);
  });
});

describe('callGraph under a policy', () => {
  it('allows what the policy allows and denies the rest, with the reason', () => {
    const mesh = buildMesh({
      catalog: parseCatalog({
        services: ['web', 'api', 'db'].map((name, i) => ({
          name,
          instances: [
            { id: `${name}-1`, address: '127.0.0.1', port: 9100 + i, sidecarPort: 19100 + i },
          ],
        })),
      }),
      traffic: parseTrafficDocument([]),
      policy: parsePolicy({
        defaults: { action: 'deny' },
        rules: [
          { from: ['web'], to: ['api'], action: 'allow' },
          { from: ['api'], to: ['db'], action: 'allow' },
        ],
      }),
      settings: {
        ...DEFAULT_MESH_SETTINGS,
        mtls: { trustDomain: 'lucid.internal', namespace: 'default' },
      },
    });
    const graph = callGraph(mesh);
    const allowed = graph.calls
      .filter((c) => c.decision === 'allow')
      .map((c) => `${c.from}→${c.to}`);
    expect(allowed.sort()).toEqual(['api→db', 'web→api']);
    const webDb = graph.calls.find((c) => c.from === 'web' && c.to === 'db')!;
    expect(webDb).toMatchObject({ decision: 'deny', enforced: true, perRequest: false });
    expect(webDb.reason).toContain('denies');
  });
});

describe('/ui: the console files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lucid-console-'));
  let admin: AdminServer;
  let base: string;
  // A token check that refuses everything: /ui must still be served, /v1 must not.
  const refuseAll: AdminAuthorizer = {
    authorize: async () => ({
      ok: false,
      status: 401,
      reason: 'missing-token',
      message: 'no token',
    }),
    onRevoked: () => () => {},
  };

  beforeAll(async () => {
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>console</title>');
    writeFileSync(join(dir, 'app.js'), 'console.log(1)');
    const store = new SnapshotStore({ logger: silentLogger });
    admin = new AdminServer({
      notReadyReason: () => undefined,
      registry: new Metrics({ store, streams: () => [] }).registry,
      store,
      streams: () => [],
      events: new EventHub(store, () => []),
      auth: refuseAll,
      consoleDir: dir,
    });
    base = `http://127.0.0.1:${await admin.listen('127.0.0.1', 0)}`;
  });
  afterAll(async () => {
    await admin?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the page and its script without a token, with a CSP allowing this origin only', async () => {
    for (const [path, type] of [
      ['/ui', 'text/html'],
      ['/ui/', 'text/html'],
      ['/ui/app.js', 'text/javascript'],
    ] as const) {
      const r = await fetch(`${base}${path}`);
      expect(r.status, path).toBe(200);
      expect(r.headers.get('content-type')).toContain(type);
      expect(r.headers.get('content-security-policy')).toBe(CONSOLE_CSP);
      expect(r.headers.get('x-content-type-options')).toBe('nosniff');
    }
    expect(CONSOLE_CSP).toContain("default-src 'none'");
    expect(CONSOLE_CSP).toContain("script-src 'self'");
    expect((await fetch(`${base}/v1/proxies`)).status).toBe(401);
  });

  it('serves nothing else under /ui, and refuses writes', async () => {
    for (const path of ['/ui/secret.txt', '/ui/sub/app.js', '/ui/app.css']) {
      const r = await fetch(`${base}${path}`);
      expect(r.status, path).toBe(path.endsWith('app.css') ? 503 : 404);
    }
    expect((await fetch(`${base}/ui/app.js`, { method: 'POST' })).status).toBe(405);
  });

  it('says how to build the console when its files are missing', async () => {
    const r = await fetch(`${base}/ui/app.css`);
    expect(r.status).toBe(503);
    expect(((await r.json()) as { error: string }).error).toContain('run npm run build');
  });
});
