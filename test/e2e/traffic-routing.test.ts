// Consul's discovery chain against real Envoy, in SotW and in delta mode: service-router
// (path and header matches to subsets, PrefixRewrite), service-splitter (90/10 canary),
// service-resolver subsets from tag filters, and lucid-mesh's Fault and Mirror extensions, all
// from a watched traffic file that is edited live. Then the same chain with mTLS from the
// built-in CA: a subset cluster still demands the target service's SPIFFE ID.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/app.js';
import type { XdsMode } from '../../src/bootstrap/render.js';
import { MemoryCaStore, openCa, type OpenedCa } from '../../src/ca/index.js';
import {
  CatalogFile,
  clusterHosts,
  rejectedUpdates,
  startSidecar,
  startTestControlPlane,
  type Sidecar,
} from '../support/mesh.js';
import { freePort } from '../support/ports.js';
import {
  callMany,
  callThrough,
  envoyCluster,
  envoyRoutes,
  startTrafficApp,
  type AppReply,
  type DumpedRoute,
  type TrafficApp,
} from '../support/traffic-app.js';
import { waitFor } from '../support/wait.js';

const resolver = (subsets: Record<string, string> = {}) => ({
  Kind: 'service-resolver',
  Name: 'api',
  DefaultSubset: 'v1',
  Subsets: {
    v1: { Filter: '"v1" in Service.Tags' },
    v2: { Filter: 'Service.Tags contains v2' },
    ...Object.fromEntries(Object.entries(subsets).map(([k, Filter]) => [k, { Filter }])),
  },
});

interface RouterOptions {
  /** Subset of the /admin route (default v2). */
  admin?: string;
  /** Extra routes, before the others. */
  first?: unknown[];
}

/** The api router: /admin and x-canary: 1 to v2, /old/ rewritten, a fault and a mirror route. */
const router = (opts: RouterOptions = {}) => ({
  Kind: 'service-router',
  Name: 'api',
  Routes: [
    ...(opts.first ?? []),
    {
      Match: { HTTP: { PathPrefix: '/admin' } },
      Destination: { ServiceSubset: opts.admin ?? 'v2' },
    },
    {
      Match: { HTTP: { Header: [{ Name: 'x-canary', Exact: '1' }] } },
      Destination: { ServiceSubset: 'v2' },
    },
    { Match: { HTTP: { PathPrefix: '/old/' } }, Destination: { PrefixRewrite: '/new/' } },
    {
      Match: { HTTP: { PathPrefix: '/fault/abort' } },
      Destination: { Fault: { Abort: { HttpStatus: 418, Percent: 100 } } },
    },
    {
      Match: { HTTP: { PathPrefix: '/fault/delay' } },
      Destination: { Fault: { Delay: { Duration: '400ms', Percent: 100 } } },
    },
    {
      Match: { HTTP: { PathPrefix: '/mirror' } },
      Destination: { Mirror: { Service: 'shadow', Percent: 100 } },
    },
  ],
});

const splitter = {
  Kind: 'service-splitter',
  Name: 'api',
  Splits: [
    { Weight: 90, ServiceSubset: 'v1' },
    { Weight: 10, ServiceSubset: 'v2' },
  ],
};

/** The catch-all (last) route's cluster names: one, or the weighted ones. */
function catchAllClusters(routes: DumpedRoute[]): string[] {
  const action = routes[routes.length - 1]?.route as
    { cluster?: string; weighted_clusters?: { clusters: Array<{ name: string }> } } | undefined;
  if (!action) return [];
  return action.weighted_clusters
    ? action.weighted_clusters.clusters.map((c) => c.name).sort()
    : [action.cluster ?? ''];
}

function captureLogs() {
  const lines: string[] = [];
  const logger = pino(
    { level: 'warn' },
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    }),
  );
  return { lines, logger };
}

describe.each<XdsMode>(['sotw', 'delta'])('traffic routing with real Envoy (%s)', (mode) => {
  const catalog = new CatalogFile();
  const traffic = new CatalogFile('traffic.yaml');
  const logs = captureLogs();
  let cp: RunningControlPlane | undefined;
  let v1: TrafficApp, v2: TrafficApp, shadow: TrafficApp;
  let web: Sidecar | undefined;

  const catalogDoc = () => ({
    services: [
      {
        name: 'api',
        instances: [
          { id: 'api-v1', address: '127.0.0.1', port: v1.port, tags: ['v1'] },
          { id: 'api-v2', address: '127.0.0.1', port: v2.port, tags: ['v2'] },
        ],
      },
      { name: 'shadow', instances: [{ id: 'shadow-1', address: '127.0.0.1', port: shadow.port }] },
      { name: 'web', instances: [] },
    ],
  });

  /** Writes the traffic file and waits until web's Envoy has routes for api that pass `ready`. */
  async function apply(
    entries: unknown[],
    ready: (routes: DumpedRoute[]) => boolean,
    what: string,
  ) {
    traffic.write(entries);
    await web!.envoy.waitFor(async () => ready(await envoyRoutes(web!.envoy, 'api')), what);
  }
  const base = () => [resolver(), router()];
  const hasBaseRoutes = (routes: DumpedRoute[]) =>
    routes.length === 7 &&
    (routes[0]?.route as { cluster?: string } | undefined)?.cluster === 'api~v2' &&
    catchAllClusters(routes).join() === 'api~v1';

  beforeAll(async () => {
    [v1, v2, shadow] = await Promise.all([
      startTrafficApp('api-v1'),
      startTrafficApp('api-v2'),
      startTrafficApp('shadow'),
    ]);
    const xdsPort = await freePort();
    catalog.write(catalogDoc());
    traffic.write(base());
    cp = await startTestControlPlane(catalog, { xds: xdsPort }, { traffic, logger: logs.logger });
    web = await startSidecar({ nodeId: 'web-1', service: 'web', xdsPort, mode });
  });

  afterAll(async () => {
    await web?.envoy.stop();
    await cp?.stop();
    await Promise.all([v1?.close(), v2?.close(), shadow?.close()]);
    catalog.remove();
    traffic.remove();
  });

  it('sends /admin and x-canary: 1 to subset v2 (instances tagged v2), everything else to v1', async () => {
    await web!.envoy.waitFor(
      async () =>
        (await callThrough(web!, 'api', { path: '/admin' }).catch(() => undefined))?.app ===
        'api-v2',
      'web → api /admin answered by api-v2',
      30_000,
    );
    // Each subset is its own cluster with only its instances.
    expect(await clusterHosts(web!.envoy, 'api~v1')).toEqual([`127.0.0.1:${v1.port}`]);
    expect(await clusterHosts(web!.envoy, 'api~v2')).toEqual([`127.0.0.1:${v2.port}`]);

    const admin = await callMany(web!, 'api', 30, { path: '/admin/users', concurrency: 5 });
    expect(admin.apps).toEqual({ 'api-v2': 30 });
    const canary = await callMany(web!, 'api', 30, {
      path: '/orders',
      headers: { 'x-canary': '1' },
      concurrency: 5,
    });
    expect(canary.apps).toEqual({ 'api-v2': 30 });
    const rest = await callMany(web!, 'api', 30, { path: '/orders', concurrency: 5 });
    expect(rest.apps).toEqual({ 'api-v1': 30 });
    const notCanary = await callMany(web!, 'api', 30, {
      path: '/',
      headers: { 'x-canary': '0' },
      concurrency: 5,
    });
    expect(notCanary.apps).toEqual({ 'api-v1': 30 });
  });

  it('matches a path in any case with CaseInsensitive (Consul), prefix and regex alike', async () => {
    const anyCase = router({
      first: [
        {
          Match: { HTTP: { PathPrefix: '/Reports', CaseInsensitive: true } },
          Destination: { ServiceSubset: 'v2' },
        },
        {
          Match: { HTTP: { PathRegex: '/exports/[a-z]+', CaseInsensitive: true } },
          Destination: { ServiceSubset: 'v2' },
        },
      ],
    });
    await apply(
      [resolver(), anyCase],
      (routes) => routes.length === 9,
      'the case-insensitive routes',
    );
    for (const path of ['/reports/1', '/REPORTS/1', '/Reports', '/EXPORTS/CSV', '/exports/Csv']) {
      expect((await callMany(web!, 'api', 5, { path })).apps, path).toEqual({ 'api-v2': 5 });
    }
    // The rest keeps its case: /ADMIN is not /admin, so it goes to the default subset.
    expect((await callMany(web!, 'api', 5, { path: '/ADMIN' })).apps).toEqual({ 'api-v1': 5 });
    await apply(base(), hasBaseRoutes, 'the base routes again');
  });

  it('rewrites the /old/ prefix to /new/ before the app sees it', async () => {
    v1.resetStats();
    const res = await callThrough(web!, 'api', { path: '/old/items?page=2' });
    expect(res.status).toBe(200);
    expect((JSON.parse(res.body) as AppReply).path).toBe('/new/items?page=2');
    expect(v1.log.map((r) => r.path)).toEqual(['/new/items?page=2']);
    // Only the prefix: a path that merely contains it is left alone.
    expect(
      (JSON.parse((await callThrough(web!, 'api', { path: '/x/old/y' })).body) as AppReply).path,
    ).toBe('/x/old/y');
  });

  it('injects faults: an abort answers with the configured status, a delay holds the request', async () => {
    await apply(base(), hasBaseRoutes, 'base routes');
    const hitsBefore = v1.hits + v2.hits;
    const aborted = await callMany(web!, 'api', 20, { path: '/fault/abort', concurrency: 4 });
    expect(aborted.statuses).toEqual({ 418: 20 });
    expect(aborted.apps).toEqual({ '(envoy)': 20 });
    expect(v1.hits + v2.hits).toBe(hitsBefore); // never reached an app

    const plain = await callMany(web!, 'api', 5, { path: '/orders' });
    const delayed = await callMany(web!, 'api', 3, { path: '/fault/delay' });
    expect(delayed.apps).toEqual({ 'api-v1': 3 });
    // Envoy arms the delay from its event loop's cached time, so under load it can end a few ms
    // short of 400 as the client measures (394 ms once in CI); 350 still sets it far from plain.
    expect(Math.min(...delayed.elapsedMs)).toBeGreaterThanOrEqual(350);
    expect(Math.min(...plain.elapsedMs)).toBeLessThan(200);
    console.log(
      `[${mode}] fault delay 400ms: delayed ${fmt(delayed.elapsedMs)}, plain ${fmt(plain.elapsedMs)}`,
    );
  });

  it('mirrors /mirror requests to the shadow service; the caller sees only the primary', async () => {
    shadow.resetStats();
    v1.resetStats();
    const tally = await callMany(web!, 'api', 25, { path: '/mirror/report', concurrency: 5 });
    expect(tally.apps).toEqual({ 'api-v1': 25 });
    // Mirrored requests are fire-and-forget: count them as they arrive.
    await waitFor(() => shadow.log.length >= 25, {
      what: `25 mirrored requests at shadow (has ${shadow.log.length})`,
    });
    expect(shadow.log).toHaveLength(25);
    for (const r of shadow.log) {
      expect(r.path).toBe('/mirror/report');
      expect(r.headers.host).toBe('api-shadow'); // Envoy marks shadow traffic by the Host
    }
    expect(v1.log).toHaveLength(25);
    // Only that route mirrors: other requests sent before five more mirrored ones never show up.
    await callMany(web!, 'api', 10, { path: '/orders' });
    await callMany(web!, 'api', 5, { path: '/mirror/again' });
    await waitFor(() => shadow.log.length >= 30, { what: '5 more mirrored requests at shadow' });
    expect(shadow.log.filter((r) => !r.path.startsWith('/mirror/'))).toEqual([]);
  });

  it('splits 90/10 between v1 and v2: over 1,000 requests v2 gets 10 % ± 3', async () => {
    await apply(
      [...base(), splitter],
      (routes) => catchAllClusters(routes).join() === 'api~v1,api~v2',
      'weighted clusters on the catch-all route',
    );
    const tally = await callMany(web!, 'api', 1000, { path: '/orders', concurrency: 20 });
    expect(tally.failed).toBe(0);
    const share = (tally.apps['api-v2'] ?? 0) / tally.total;
    console.log(`[${mode}] splitter 90/10: v2 share ${(share * 100).toFixed(1)} % of 1000`);
    expect(tally.apps['api-v1']! + tally.apps['api-v2']!).toBe(1000);
    expect(share).toBeGreaterThanOrEqual(0.07);
    expect(share).toBeLessThanOrEqual(0.13);
    // A route naming a subset is not split.
    expect((await callMany(web!, 'api', 20, { path: '/admin' })).apps).toEqual({ 'api-v2': 20 });
    await apply(base(), hasBaseRoutes, 'splitter removed');
    expect((await callMany(web!, 'api', 50, { path: '/orders', concurrency: 10 })).apps).toEqual({
      'api-v1': 50,
    });
  });

  it('applies file edits live, and an invalid edit keeps the last good configuration', async () => {
    const envoyPid = web!.envoy.pid;
    await apply(
      [resolver(), router({ admin: 'v1' })],
      (routes) => (routes[0]?.route as { cluster?: string } | undefined)?.cluster === 'api~v1',
      '/admin routed to v1',
    );
    expect((await callMany(web!, 'api', 20, { path: '/admin' })).apps).toEqual({ 'api-v1': 20 });

    const version = cp!.store.snapshot?.version;
    const rejectedBefore = logs.lines.filter((l) => l.includes('traffic file rejected')).length;
    // /admin back to v2, but with an invalid retry count: the whole edit must be refused.
    const invalid = [
      resolver(),
      router({
        first: [{ Match: { HTTP: { PathPrefix: '/retry' } }, Destination: { NumRetries: -1 } }],
      }),
    ];
    traffic.write(invalid);
    const rejection = await waitFor(
      () => logs.lines.filter((l) => l.includes('traffic file rejected')).slice(rejectedBefore)[0],
      { what: 'the invalid traffic edit rejected' },
    );
    expect(rejection).toContain(
      'service-router/api: Routes[0].Destination.NumRetries: expected integer ≥ 0, got -1',
    );
    expect(cp!.store.snapshot?.version).toBe(version);
    expect((await callMany(web!, 'api', 20, { path: '/admin' })).apps).toEqual({ 'api-v1': 20 });
    expect(await rejectedUpdates(web!.envoy)).toBe(0);
    expect(web!.envoy.pid).toBe(envoyPid);

    // Fixing the file applies it.
    await apply(base(), hasBaseRoutes, 'base routes again');
    expect((await callMany(web!, 'api', 20, { path: '/admin' })).apps).toEqual({ 'api-v2': 20 });
  });

  it('a route naming a missing subset falls back to the default destination and is reported', async () => {
    await apply(
      [
        resolver(),
        router({
          first: [
            { Match: { HTTP: { PathPrefix: '/beta' } }, Destination: { ServiceSubset: 'v3' } },
          ],
        }),
      ],
      (routes) => routes.length === 8,
      'the /beta route',
    );
    const problems = cp!.store.mesh?.problems ?? [];
    expect(problems).toContainEqual(
      expect.objectContaining({
        kind: 'service-router',
        name: 'api',
        message: expect.stringContaining('subset "v3"') as unknown,
      }),
    );
    expect((await callMany(web!, 'api', 20, { path: '/beta' })).apps).toEqual({ 'api-v1': 20 });
    // Nothing else broke.
    expect((await callMany(web!, 'api', 20, { path: '/admin' })).apps).toEqual({ 'api-v2': 20 });
    expect(await rejectedUpdates(web!.envoy)).toBe(0);
  });
});

describe('traffic routing with mTLS from the built-in CA', () => {
  const catalog = new CatalogFile();
  const traffic = new CatalogFile('traffic.yaml');
  let ca: OpenedCa | undefined;
  let cp: RunningControlPlane | undefined;
  let v1: TrafficApp, v2: TrafficApp, shadow: TrafficApp;
  let web: Sidecar | undefined, apiV2: Sidecar | undefined, shadowSidecar: Sidecar | undefined;
  let ports: { v2: number; shadow: number };

  const catalogDoc = (decoy = false, apiHealth = 'passing') => ({
    services: [
      {
        name: 'api',
        instances: [
          // Not meshed: reached in plaintext.
          { id: 'api-v1', address: '127.0.0.1', port: v1.port, tags: ['v1'], health: apiHealth },
          {
            id: 'api-v2',
            address: '127.0.0.1',
            port: v2.port,
            sidecarPort: ports.v2,
            tags: ['v2'],
            health: apiHealth,
          },
          // An "api" instance whose sidecar port is shadow's sidecar: it presents shadow's identity.
          ...(decoy
            ? [
                {
                  id: 'api-decoy',
                  address: '127.0.0.1',
                  port: shadow.port,
                  sidecarPort: ports.shadow,
                  tags: ['v3'],
                },
              ]
            : []),
        ],
      },
      {
        name: 'shadow',
        instances: [
          { id: 'shadow-1', address: '127.0.0.1', port: shadow.port, sidecarPort: ports.shadow },
        ],
      },
      { name: 'web', instances: [] },
    ],
  });

  beforeAll(async () => {
    [v1, v2, shadow] = await Promise.all([
      startTrafficApp('api-v1'),
      startTrafficApp('api-v2'),
      startTrafficApp('shadow'),
    ]);
    ports = { v2: await freePort(), shadow: await freePort() };
    catalog.write(catalogDoc());
    traffic.write([
      resolver({ v3: '"v3" in Service.Tags' }),
      router({
        first: [
          { Match: { HTTP: { PathPrefix: '/decoy' } }, Destination: { ServiceSubset: 'v3' } },
        ],
      }),
    ]);
    ca = await openCa({ store: new MemoryCaStore(), env: {} });
    cp = await startTestControlPlane(
      catalog,
      {},
      { traffic, security: { ca, mtls: true, auth: 'none' } },
    );
    const xdsPort = cp.xdsPort;
    [web, apiV2, shadowSidecar] = await Promise.all([
      startSidecar({ nodeId: 'web-1', service: 'web', xdsPort, mode: 'sotw' }),
      startSidecar({ nodeId: 'api-v2', service: 'api', xdsPort, mode: 'delta' }),
      startSidecar({ nodeId: 'shadow-1', service: 'shadow', xdsPort, mode: 'sotw' }),
    ]);
  });

  afterAll(async () => {
    await Promise.all([web?.envoy.stop(), apiV2?.envoy.stop(), shadowSidecar?.envoy.stop()]);
    await cp?.stop();
    ca?.stop();
    await Promise.all([v1?.close(), v2?.close(), shadow?.close()]);
    catalog.remove();
    traffic.remove();
  });

  it("routes /admin to subset v2 over mTLS, checking api's SPIFFE ID on the subset cluster", async () => {
    await web!.envoy.waitFor(
      async () =>
        (await callThrough(web!, 'api', { path: '/admin' }).catch(() => undefined))?.app ===
        'api-v2',
      'web → api /admin answered by api-v2 over mTLS',
      30_000,
    );
    expect((await callMany(web!, 'api', 20, { path: '/admin' })).apps).toEqual({ 'api-v2': 20 });
    expect((await callMany(web!, 'api', 20, { path: '/orders' })).apps).toEqual({ 'api-v1': 20 });
    // It arrived over TLS at api-v2's sidecar.
    expect(await apiV2!.envoy.stat(`listener.0.0.0.0_${ports.v2}.ssl.handshake`)).toBeGreaterThan(
      0,
    );
    const cluster = await envoyCluster(web!.envoy, 'api~v2');
    expect(JSON.stringify(cluster?.transport_socket_matches)).toContain(
      'spiffe://lucid.internal/ns/default/svc/api',
    );
  });

  it('refuses a subset endpoint that presents another service’s identity', async () => {
    catalog.write(catalogDoc(true));
    await web!.envoy.waitFor(
      async () => (await clusterHosts(web!.envoy, 'api~v3')).length === 1,
      'api-decoy in subset v3',
    );
    const before = shadow.hits;
    const decoy = await callMany(web!, 'api', 10, { path: '/decoy' });
    expect(decoy.statuses).toEqual({ 503: 10 });
    expect(shadow.hits).toBe(before);
    // Control: that sidecar port works for its own service, so the refusal is the identity check.
    expect((await callMany(web!, 'shadow', 5)).apps).toEqual({ shadow: 5 });
    expect((await callMany(web!, 'api', 10, { path: '/admin' })).apps).toEqual({ 'api-v2': 10 });
    expect(await rejectedUpdates(web!.envoy)).toBe(0);
  });

  it('fails over to another service (resolver Failover target) through an aggregate cluster, over its own mTLS identity', async () => {
    catalog.write(catalogDoc());
    traffic.write([
      {
        ...resolver(),
        Failover: { '*': { Targets: [{ Service: 'shadow' }] } },
      },
    ]);
    await web!.envoy.waitFor(
      async () => (await clusterHosts(web!.envoy, 'api~v1|primary')).length === 1,
      'the aggregate cluster over api~v1 and shadow',
    );
    expect((await callMany(web!, 'api', 10)).apps).toEqual({ 'api-v1': 10 });
    // Every api instance down: the aggregate moves to shadow (its sidecar, its SPIFFE ID).
    catalog.write(catalogDoc(false, 'critical'));
    await web!.envoy.waitFor(
      async () => (await callThrough(web!, 'api').catch(() => undefined))?.app === 'shadow',
      'api requests answered by shadow',
    );
    const failover = await callMany(web!, 'api', 20);
    expect(failover.apps).toEqual({ shadow: 20 });
    expect(
      await shadowSidecar!.envoy.stat(`listener.0.0.0.0_${ports.shadow}.ssl.handshake`),
    ).toBeGreaterThan(0);
    // api back: traffic returns to it.
    catalog.write(catalogDoc());
    await web!.envoy.waitFor(
      async () => (await callThrough(web!, 'api').catch(() => undefined))?.app === 'api-v1',
      'api requests answered by api again',
    );
    expect(await rejectedUpdates(web!.envoy)).toBe(0);
  });

  it('fails over along a chain: api → shadow, whose own resolver fails over to api~v2', async () => {
    // shadow's backend is then an aggregate cluster too. Envoy's aggregate cluster does not
    // look into a nested aggregate (it has no hosts of its own): api's failover must name
    // shadow's own cluster, not its aggregate.
    catalog.write(catalogDoc());
    traffic.write([
      { ...resolver(), Failover: { '*': { Targets: [{ Service: 'shadow' }] } } },
      {
        Kind: 'service-resolver',
        Name: 'shadow',
        Failover: { '*': { Targets: [{ Service: 'api', ServiceSubset: 'v2' }] } },
      },
    ]);
    await web!.envoy.waitFor(
      async () => (await clusterHosts(web!.envoy, 'shadow|primary')).length === 1,
      'shadow’s own aggregate cluster',
    );
    expect((await callMany(web!, 'api', 10)).apps).toEqual({ 'api-v1': 10 });
    catalog.write(catalogDoc(false, 'critical'));
    await web!.envoy.waitFor(
      async () => (await callThrough(web!, 'api').catch(() => undefined))?.app === 'shadow',
      'api requests answered by shadow, api’s failover target',
    );
    expect((await callMany(web!, 'api', 20)).apps).toEqual({ shadow: 20 });
    catalog.write(catalogDoc());
    await web!.envoy.waitFor(
      async () => (await callThrough(web!, 'api').catch(() => undefined))?.app === 'api-v1',
      'api requests answered by api again',
    );
    expect(await rejectedUpdates(web!.envoy)).toBe(0);
  });
});

function fmt(ms: readonly number[]): string {
  const sorted = [...ms].sort((a, b) => a - b);
  return `${sorted[0]!.toFixed(0)}–${sorted[sorted.length - 1]!.toFixed(0)} ms`;
}
