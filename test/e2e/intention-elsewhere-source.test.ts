// A service-intentions source that names a caller elsewhere (a cluster peer's `web`, or `web`
// in another namespace or partition) is not a rule for this mesh's `web`: lucid-mesh does not
// implement peering or tenancy, and lists such fields as unsupported. With real Envoy over
// mTLS and intentions default deny, this mesh's web must stay denied (403 from api's RBAC: web
// declares api, so its sidecar sends the request) and api outside ops' policy scope (ops
// declares nothing); an intention for this mesh's callers still opens api.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/app.js';
import { openCa, type OpenedCa } from '../../src/ca/index.js';
import { startHttpApp, type HttpApp } from '../support/http-app.js';
import {
  CatalogFile,
  hasCluster,
  startSidecar,
  startTestControlPlane,
  type Sidecar,
} from '../support/mesh.js';
import { freePort } from '../support/ports.js';

const intentions = (source: Record<string, unknown>) => [
  {
    Kind: 'service-intentions',
    Name: 'api',
    Sources: ['web', 'ops'].map((Name) => ({ Name, Action: 'allow', ...source })),
  },
];

describe('intention sources elsewhere (real Envoy, mTLS, intentions default deny)', () => {
  const catalog = new CatalogFile();
  const traffic = new CatalogFile('traffic.yaml');
  let ca: OpenedCa;
  let cp: RunningControlPlane;
  let api: HttpApp;
  let web: Sidecar, ops: Sidecar, apiSidecar: Sidecar;

  beforeAll(async () => {
    api = await startHttpApp('api');
    const apiSidecarPort = await freePort();
    catalog.write({
      services: [
        {
          name: 'api',
          instances: [
            { id: 'api-1', address: '127.0.0.1', port: api.port, sidecarPort: apiSidecarPort },
          ],
        },
        { name: 'web', upstreams: ['api'], instances: [] },
        { name: 'ops', instances: [] },
      ],
    });
    traffic.write(intentions({ Peer: 'cluster-02' }));
    ca = await openCa({ dataDir: mkdtempSync(join(tmpdir(), 'lucid-ca-')) });
    cp = await startTestControlPlane(
      catalog,
      {},
      {
        traffic,
        security: { ca, mtls: true, auth: 'token' },
        mesh: { scope: 'policy', intentionsDefault: 'deny' },
      },
    );
    [web, ops, apiSidecar] = await Promise.all([
      startSidecar({
        nodeId: 'web-1',
        service: 'web',
        xdsPort: cp.xdsPort,
        mode: 'sotw',
        token: await ca.tokens.issue('web'),
      }),
      startSidecar({
        nodeId: 'ops-1',
        service: 'ops',
        xdsPort: cp.xdsPort,
        mode: 'delta',
        token: await ca.tokens.issue('ops'),
      }),
      startSidecar({
        nodeId: 'api-1',
        service: 'api',
        xdsPort: cp.xdsPort,
        mode: 'delta',
        token: await ca.tokens.issue('api'),
      }),
    ]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([web?.envoy.stop(), ops?.envoy.stop(), apiSidecar?.envoy.stop()]);
    await cp?.stop();
    await api?.close();
    catalog.remove();
    traffic.remove();
  });

  it("a peer's, another namespace's or partition's web is not this mesh's web", async () => {
    // Once web's request gets through its sidecar to api's RBAC (it declares api).
    await web.envoy.waitFor(
      async () => (await web.call('api').catch(() => undefined))?.status === 403,
      'web → api refused by RBAC',
      30_000,
    );
    for (const source of [
      { Peer: 'cluster-02' },
      { Namespace: 'team-b' },
      { Partition: 'finance' },
    ]) {
      traffic.write(intentions(source));
      // Give the edit time to reach the sidecars, then: still denied, and not in ops' scope.
      await new Promise((r) => setTimeout(r, 1500));
      const what = JSON.stringify(source);
      expect((await web.call('api')).status, what).toBe(403);
      expect(await hasCluster(ops.envoy, 'api'), what).toBe(false);
    }
    // This mesh's callers: allowed, so in ops' scope, and the requests pass RBAC.
    traffic.write(intentions({}));
    for (const caller of [web, ops]) {
      const res = await caller.envoy.waitFor(
        async () => {
          const r = await caller.call('api').catch(() => undefined);
          return r?.status === 200 ? r : undefined;
        },
        `${caller.envoy.name} → api once allowed`,
        30_000,
      );
      expect(JSON.parse(res.body)).toMatchObject({ app: 'api' });
    }
    // A source elsewhere next to them neither takes that away nor adds anything.
    traffic.write([
      {
        Kind: 'service-intentions',
        Name: 'api',
        Sources: [
          { Name: 'web', Action: 'deny', Peer: 'cluster-02' },
          { Name: 'web', Action: 'allow' },
        ],
      },
    ]);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await web.call('api')).status).toBe(200);
  });
});
