// Consul's config entries, live, against real Envoy. A real Consul agent (-dev) holds the
// entries, written and deleted with Consul's HTTP API as `consul config write` / `consul config
// delete` do. The control plane is what `lucid-mesh serve --source consul --intentions-default
// deny` builds (sourcesFromFlags: catalog and config entries from the same Consul, one
// connection budget), with the built-in CA: mTLS between sidecars, token-authenticated xDS.
// Real Envoy sidecars (delta xDS) run for web and for three api instances, all registered with
// Consul Connect sidecar registrations. Behaviour is asserted on requests through web's
// sidecar and on Envoy's admin endpoint; problems on the traffic source, the mesh and
// GET /v1/config/errors.
//
// With --intentions-default deny (Consul's ACL default policy deny) a service no intention
// names takes no mesh callers, as in Consul: api's baseline intention `*` allow opens it, and
// every test starts from it.
//
// api-1 and api-2 are tagged v1, api-3 v2. Consul needs the services' protocol to be http
// before it accepts a router, splitter or resolver with subsets: proxy-defaults global sets it.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startControlPlane, type RunningControlPlane } from '../../src/app.js';
import { MemoryCaStore, openCa, type OpenedCa } from '../../src/ca/index.js';
import { meshSettingsFromFlags, sourcesFromFlags } from '../../src/cli/traffic-flags.js';
import { ConsulTrafficSource } from '../../src/sources/consul/config-entries.js';
import type { DiscoverySource } from '../../src/sources/source.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import type { ConfigProblem, TrafficProvider } from '../../src/traffic/provider.js';
import { CONSUL_SETUP_TIMEOUT_MS, startConsul, type ConsulAgent } from '../support/consul.js';
import {
  circuitBreakers,
  deleteEntry,
  dumpedCluster,
  median,
  routeTable,
  send,
  tally,
  tryWriteEntry,
  writeEntry,
  type ConfigEntry,
  type Tally,
} from '../support/consul-entries.js';
import { httpGet, startHttpApp, type HttpApp } from '../support/http-app.js';
import {
  clusterHosts,
  hasCluster,
  rejectedUpdates,
  startSidecar,
  type Sidecar,
} from '../support/mesh.js';
import { freePorts } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

const API = ['api-1', 'api-2', 'api-3'];
const V1 = ['api-1', 'api-2'];
const V2 = ['api-3'];
const TAGS: Record<string, string> = { 'api-1': 'v1', 'api-2': 'v1', 'api-3': 'v2' };

const proxyDefaults: ConfigEntry = {
  Kind: 'proxy-defaults',
  Name: 'global',
  Config: { protocol: 'http' },
};
const resolver: ConfigEntry = {
  Kind: 'service-resolver',
  Name: 'api',
  DefaultSubset: 'v1',
  Subsets: {
    v1: { Filter: '"v1" in Service.Tags' },
    v2: { Filter: 'Service.Tags contains v2' },
  },
};
const adminRoute = {
  Match: { HTTP: { PathPrefix: '/admin' } },
  Destination: { ServiceSubset: 'v2' },
};
const router = (...routes: unknown[]): ConfigEntry => ({
  Kind: 'service-router',
  Name: 'api',
  Routes: routes.length ? routes : [adminRoute],
});
/** web's service-defaults UpstreamConfig for its calls to api. */
const apiOverride = {
  Name: 'api',
  Limits: { MaxConnections: 7, MaxPendingRequests: 8, MaxConcurrentRequests: 9 },
  PassiveHealthCheck: {
    Interval: '3s',
    MaxFailures: 4,
    EnforcingConsecutive5xx: 60,
    MaxEjectionPercent: 30,
    BaseEjectionTime: '7s',
  },
};
const ENVOY_DEFAULT_THRESHOLDS = {
  max_connections: 1024,
  max_pending_requests: 1024,
  max_requests: 1024,
};
/** What a Consul user with ACL default deny writes to let every caller reach api. */
const openApi: ConfigEntry = {
  Kind: 'service-intentions',
  Name: 'api',
  Sources: [{ Name: '*', Action: 'allow' }],
};
/** Deleted in this order: Consul refuses to delete a resolver a router or splitter needs. */
const CLEANUP_KINDS = [
  'service-intentions',
  'service-router',
  'service-splitter',
  'service-resolver',
  'service-defaults',
];
const splitter: ConfigEntry = {
  Kind: 'service-splitter',
  Name: 'api',
  Splits: [
    { Weight: 50, ServiceSubset: 'v1' },
    { Weight: 50, ServiceSubset: 'v2' },
  ],
};

/** The apps that answered, sorted. */
const answered = (t: Tally): string[] => Object.keys(t.apps).sort();
const share = (t: Tally, apps: readonly string[], total: number): number =>
  apps.reduce((n, a) => n + (t.apps[a] ?? 0), 0) / total;

describe('Consul config entries applied live to real Envoy (delta, mTLS)', () => {
  let consul: ConsulAgent | undefined;
  let cp: RunningControlPlane | undefined;
  let source: DiscoverySource | undefined;
  let traffic: TrafficProvider | undefined;
  let ca: OpenedCa | undefined;
  const apps = new Map<string, HttpApp>();
  const sidecarPort = new Map<string, number>();
  const sidecars: Sidecar[] = [];
  /** web-1's sidecar: every request of the tests goes through it. */
  let web: Sidecar;
  /** api-1's sidecar as a second caller (identity api) for the intentions. */
  let apiCaller: Sidecar;
  /** Time from the Consul API call to the change seen through Envoy. */
  const latencies: Array<{ what: string; ms: number }> = [];

  const c = (): ConsulAgent => consul!;
  const catchAll = async (): Promise<string | undefined> =>
    (await routeTable(web.envoy, 'api')).at(-1)?.cluster;
  const sidecarAddr = (id: string): string => `127.0.0.1:${sidecarPort.get(id)}`;
  /** Writes the resolver and the default router, and waits until web's Envoy routes by them. */
  async function writeResolverAndRouter(): Promise<void> {
    await writeEntry(c(), resolver);
    await writeEntry(c(), router());
    await web.envoy.waitFor(
      async () =>
        (await catchAll()) === 'api~v1' &&
        (await tally(web, 'api', 3, { path: '/admin' })).apps['api-3'] === 3,
      'resolver and router in force',
    );
  }

  /** Runs `change` (a Consul API call) and waits until `seen` holds; records the time. */
  async function timed(
    what: string,
    change: () => Promise<void>,
    seen: () => Promise<boolean>,
  ): Promise<number> {
    const t0 = performance.now();
    await change();
    await waitFor(async () => (await seen()) || undefined, {
      what: `${what}: the change seen through Envoy`,
      timeoutMs: 10_000,
      intervalMs: 5,
      details: () => `traffic problems: ${JSON.stringify(traffic?.problems())}`,
    });
    const ms = performance.now() - t0;
    latencies.push({ what, ms });
    return ms;
  }
  const firstAnswer = async (path: string, method = 'GET'): Promise<string | undefined> =>
    (await send(web, 'api', { path, method })).app;

  /**
   * For intentions (RBAC on api's inbound listeners): like timed(), and also records when every
   * api sidecar had applied the new listeners (its LDS update_success counter moved). The
   * difference is Envoy draining the listener's old filter chain: requests on connections
   * web's sidecar already holds keep the old chain's RBAC until they close (--drain-time-s 1
   * here; Envoy's default is 600 s, gradually).
   */
  const ldsUpdates = (): Promise<number[]> =>
    Promise.all(
      sidecars
        .slice(0, API.length)
        .map(async (s) => (await s.envoy.stat('listener_manager.lds.update_success')) ?? 0),
    );
  const rbacApplied: number[] = [];
  async function timedRbac(
    what: string,
    change: () => Promise<void>,
    seen: () => Promise<boolean>,
  ): Promise<void> {
    const before = await ldsUpdates();
    const t0 = performance.now();
    let appliedAt: number | undefined;
    await timed(what, change, async () => {
      if (appliedAt === undefined && (await ldsUpdates()).every((n, i) => n > before[i]!)) {
        appliedAt = performance.now() - t0;
      }
      return seen();
    });
    rbacApplied.push(appliedAt ?? latencies.at(-1)!.ms);
  }
  /** One request per api instance (round robin); true when all three answered `status`. */
  const everyInstance = async (
    status: number,
    opts: { path?: string; method?: string } = {},
  ): Promise<boolean> =>
    (await tally(web, 'api', API.length, opts)).statuses[status] === API.length;

  let operatorToken: string | undefined;
  const configErrors = async (): Promise<{ problems: ConfigProblem[] }> => {
    operatorToken ??= await ca!.tokens.issueOperator({ name: 'consul-traffic-test' });
    const res = await httpGet(`http://127.0.0.1:${cp!.adminPort}/v1/config/errors`, {
      authorization: `Bearer ${operatorToken}`,
    });
    expect(res.status, res.body).toBe(200);
    return JSON.parse(res.body) as { problems: ConfigProblem[] };
  };

  beforeAll(async () => {
    for (const name of [...API, 'web-1']) apps.set(name, await startHttpApp(name));
    const ports = await freePorts(4);
    [...API, 'web-1'].forEach((id, i) => sidecarPort.set(id, ports[i]!));
    consul = await startConsul();
    await writeEntry(consul, proxyDefaults);
    await writeEntry(consul, openApi);
    for (const id of [...API, 'web-1']) {
      const name = id.replace(/-\d+$/, '');
      await consul.register({
        Name: name,
        ID: id,
        Address: '127.0.0.1',
        Port: apps.get(id)!.port,
        ...(TAGS[id] ? { Tags: [TAGS[id]] } : {}),
        Check: { CheckID: `${id}-ttl`, TTL: '10m', Status: 'passing' },
        // Consul's own sidecar registration ("<id>-sidecar-proxy", Kind connect-proxy), with a
        // TTL check that starts passing instead of the default TCP check's 10 s interval.
        Connect: {
          SidecarService: {
            Port: sidecarPort.get(id),
            Checks: [{ TTL: '10m', Status: 'passing' }],
          },
        },
      });
    }
    ca = await openCa({ store: new MemoryCaStore(), env: {} });
    // What `lucid-mesh serve --source consul --consul ADDR --intentions-default deny` builds.
    const flags = {
      consul: consul.address,
      consulWait: '30s',
      consulBackoffMax: '1s',
      intentionsDefault: 'deny' as const,
      connectTimeoutMs: 5000,
      datacenter: 'dc1',
      datacenters: [],
    };
    ({ source, traffic } = sourcesFromFlags('consul', flags, silentLogger));
    // No --traffic: the entries come from Consul.
    expect(traffic).toBeInstanceOf(ConsulTrafficSource);
    cp = await startControlPlane({
      source,
      traffic,
      mesh: meshSettingsFromFlags(flags),
      security: { ca, mtls: true, auth: 'token' },
      logger: silentLogger,
      host: '127.0.0.1',
      xdsPort: 0,
      adminPort: 0,
    });
    const xdsPort = cp.xdsPort;
    const started = await Promise.allSettled(
      [...API, 'web-1'].map(async (id) =>
        startSidecar({
          nodeId: `${id}-sidecar-proxy`,
          service: id.replace(/-\d+$/, ''),
          xdsPort,
          mode: 'delta',
          token: await ca!.tokens.issue(id.replace(/-\d+$/, '')),
        }),
      ),
    );
    for (const s of started) if (s.status === 'fulfilled') sidecars.push(s.value);
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    [apiCaller] = sidecars as [Sidecar];
    web = sidecars[3]!;
    await web.envoy.waitFor(
      async () => {
        const t = await tally(web, 'api', 6);
        return t.statuses[200] === 6 && answered(t).join() === API.join();
      },
      'web → every api instance over mTLS',
      30_000,
    );
  }, CONSUL_SETUP_TIMEOUT_MS);

  /** Deletes every entry a test left (a failed one too) and waits until Envoy is back to none. */
  afterEach(async () => {
    if (!consul?.running() || !cp || sidecars.length < API.length + 1) return;
    for (const kind of CLEANUP_KINDS) {
      const res = await c().api('GET', `/v1/config/${kind}`);
      for (const e of JSON.parse(res.body) as ConfigEntry[]) await deleteEntry(c(), kind, e.Name);
    }
    await writeEntry(c(), openApi);
    await web.envoy.waitFor(async () => {
      const [open, routes, limits] = await Promise.all([
        send(web, 'api', { path: '/private', method: 'POST' }),
        routeTable(web.envoy, 'api'),
        circuitBreakers(web.envoy, 'api'),
      ]);
      return (
        open.status === 200 &&
        routes.length === 1 &&
        routes[0]!.cluster === 'api' &&
        limits.max_connections === ENVOY_DEFAULT_THRESHOLDS.max_connections
      );
    }, 'no entries left in force');
  });

  afterAll(async () => {
    await Promise.all(sidecars.map((s) => s.envoy.stop()));
    if (cp) await cp.stop();
    else {
      await source?.stop().catch(() => undefined);
      await traffic?.stop().catch(() => undefined);
      ca?.stop();
    }
    await consul?.stop();
    await Promise.all([...apps.values()].map((a) => a.close()));
  });

  it('service-resolver subsets and a service-router /admin → v2 apply live; deleting each reverts', async () => {
    // No entries for api: round robin over every instance.
    expect(answered(await tally(web, 'api', 12))).toEqual(API);

    await timed(
      'write service-resolver',
      () => writeEntry(c(), resolver),
      async () => (await catchAll()) === 'api~v1',
    );
    // Subset membership from the tags, one EDS cluster per subset.
    expect(await clusterHosts(web.envoy, 'api~v1')).toEqual(V1.map(sidecarAddr).sort());
    expect(await clusterHosts(web.envoy, 'api~v2')).toEqual(V2.map(sidecarAddr));
    // DefaultSubset v1: everything, /admin included, goes to the v1 instances only.
    for (const path of ['/', '/admin']) {
      const t = await tally(web, 'api', 12, { path });
      expect(t.apps, path).toEqual({ 'api-1': 6, 'api-2': 6 });
    }

    await timed(
      'write service-router',
      () => writeEntry(c(), router()),
      async () => (await firstAnswer('/admin')) === 'api-3',
    );
    expect((await tally(web, 'api', 12, { path: '/admin' })).apps).toEqual({ 'api-3': 12 });
    expect((await tally(web, 'api', 12, { path: '/admin/users?x=1' })).apps).toEqual({
      'api-3': 12,
    });
    expect((await tally(web, 'api', 12, { path: '/other' })).apps).toEqual({
      'api-1': 6,
      'api-2': 6,
    });

    // A few more writes and deletes of the router, for the latency figure.
    for (let i = 0; i < 3; i++) {
      await timed(
        'delete service-router',
        () => deleteEntry(c(), 'service-router', 'api'),
        async () => V1.includes((await firstAnswer('/admin')) ?? ''),
      );
      await timed(
        'write service-router',
        () => writeEntry(c(), router()),
        async () => (await firstAnswer('/admin')) === 'api-3',
      );
    }

    // Deleting the router: /admin goes to the default subset again.
    await timed(
      'delete service-router',
      () => deleteEntry(c(), 'service-router', 'api'),
      async () => V1.includes((await firstAnswer('/admin')) ?? ''),
    );
    expect((await tally(web, 'api', 12, { path: '/admin' })).apps).toEqual({
      'api-1': 6,
      'api-2': 6,
    });

    // Deleting the resolver: every instance again, and the subset clusters are gone.
    await timed(
      'delete service-resolver',
      () => deleteEntry(c(), 'service-resolver', 'api'),
      async () => (await firstAnswer('/')) === 'api-3',
    );
    const all = await tally(web, 'api', 12);
    expect(all.apps).toEqual({ 'api-1': 4, 'api-2': 4, 'api-3': 4 });
    await web.envoy.waitFor(
      async () =>
        !(await hasCluster(web.envoy, 'api~v1')) && !(await hasCluster(web.envoy, 'api~v2')),
      'subset clusters removed',
    );
    expect(await catchAll()).toBe('api');
  });

  it('service-splitter 50/50: both versions answer about half of 200 requests', async () => {
    // Consul refuses a splitter naming subsets no resolver defines: the resolver first.
    await timed(
      'write service-resolver',
      () => writeEntry(c(), resolver),
      async () => (await catchAll()) === 'api~v1',
    );
    await timed(
      'write service-splitter',
      () => writeEntry(c(), splitter),
      async () => (await firstAnswer('/')) === 'api-3',
    );
    const t = await tally(web, 'api', 200, { concurrency: 4 });
    expect(t.errors).toEqual([]);
    expect(t.statuses).toEqual({ 200: 200 });
    const v2 = share(t, V2, 200);
    const v1 = share(t, V1, 200);
    console.log(
      `[consul traffic] splitter 50/50 over 200 requests: v1 ${(v1 * 100).toFixed(1)} %, v2 ${(v2 * 100).toFixed(1)} %`,
    );
    expect(v1 + v2).toBe(1);
    expect(v2).toBeGreaterThanOrEqual(0.35);
    expect(v2).toBeLessThanOrEqual(0.65);
    expect(v1).toBeGreaterThanOrEqual(0.35);
    expect(v1).toBeLessThanOrEqual(0.65);
    // Both v1 instances take part.
    expect(t.apps['api-1']).toBeGreaterThan(0);
    expect(t.apps['api-2']).toBeGreaterThan(0);

    await timed(
      'delete service-splitter',
      () => deleteEntry(c(), 'service-splitter', 'api'),
      async () => (await catchAll()) === 'api~v1',
    );
    expect((await tally(web, 'api', 12)).apps).toEqual({ 'api-1': 6, 'api-2': 6 });
    await deleteEntry(c(), 'service-resolver', 'api');
    await web.envoy.waitFor(async () => (await catchAll()) === 'api', 'resolver gone');
  });

  it('service-intentions over mTLS: a deny gives 403; an L7 permission allows only GET /public', async () => {
    // api has the baseline intention only (`*` allow): open.
    expect((await send(web, 'api', { path: '/private' })).status).toBe(200);

    // L4 deny for web; every other caller allowed.
    await timedRbac(
      'write service-intentions',
      () =>
        writeEntry(c(), {
          Kind: 'service-intentions',
          Name: 'api',
          Sources: [
            { Name: 'web', Action: 'deny' },
            { Name: '*', Action: 'allow' },
          ],
        }),
      () => everyInstance(403),
    );
    const hits = API.map((a) => apps.get(a)!.hits);
    const denied = await tally(web, 'api', 9);
    // Envoy (api's sidecar RBAC) answers; no app sees the request.
    expect(denied.statuses).toEqual({ 403: 9 });
    expect(denied.apps).toEqual({ '(envoy)': 9 });
    expect(API.map((a) => apps.get(a)!.hits)).toEqual(hits);
    expect((await send(web, 'api')).body).toBe('RBAC: access denied');
    // The deny is web's: api's own identity (the "*" intention) still gets in.
    expect((await tally(apiCaller, 'api', 6)).statuses).toEqual({ 200: 6 });

    // L7: web may only GET /public. Consul's semantics: a request from a source whose
    // intention has Permissions and that no permission matches gets the *default intention
    // behaviour* (Consul: the ACL default policy), not a lower-precedence intention such as
    // "*" (docs: "traffic that fails to match any of the provided permissions in this
    // intention will be subject to the default intention behavior"). So a trailing
    // `{Name: '*', Action: deny}` would NOT close POST /public or /private for web in
    // Consul; `--intentions-default deny` (the ACL default policy deny) does, and that is what
    // this control plane runs with. The "*" allow here proves it: other callers get through
    // while web's unmatched requests are still refused.
    await timedRbac(
      'write service-intentions',
      () =>
        writeEntry(c(), {
          Kind: 'service-intentions',
          Name: 'api',
          Sources: [
            {
              Name: 'web',
              Permissions: [{ Action: 'allow', HTTP: { PathPrefix: '/public', Methods: ['GET'] } }],
            },
            { Name: '*', Action: 'allow' },
          ],
        }),
      () => everyInstance(200, { path: '/public/x' }),
    );
    const allowed = await tally(web, 'api', 9, { path: '/public/x' });
    expect(allowed.statuses).toEqual({ 200: 9 });
    expect(answered(allowed)).toEqual(API);
    expect((await tally(web, 'api', 6, { path: '/private' })).statuses).toEqual({ 403: 6 });
    expect((await tally(web, 'api', 6, { path: '/public', method: 'POST' })).statuses).toEqual({
      403: 6,
    });
    expect((await tally(web, 'api', 3, { path: '/public', method: 'DELETE' })).statuses).toEqual({
      403: 3,
    });
    // The "*" intention still lets api's own identity do anything.
    expect((await tally(apiCaller, 'api', 3, { path: '/private' })).statuses).toEqual({ 200: 3 });
    expect(
      (await tally(apiCaller, 'api', 3, { path: '/public', method: 'POST' })).statuses,
    ).toEqual({ 200: 3 });

    // Back to the baseline `*` allow: open again.
    await timedRbac(
      'write service-intentions',
      () => writeEntry(c(), openApi),
      () => everyInstance(200, { path: '/private' }),
    );
    expect((await tally(web, 'api', 6, { path: '/private', method: 'POST' })).statuses).toEqual({
      200: 6,
    });
  });

  it('--intentions-default deny (Consul: ACL default policy deny): a service no intention names takes no mesh callers', async () => {
    // Consul: "If the default ACL policy is deny all, then all Connect connections are denied
    // by default." Without its intentions entry api is closed to web and to api's own identity.
    await timedRbac(
      'delete service-intentions',
      () => deleteEntry(c(), 'service-intentions', 'api'),
      () => everyInstance(403, { path: '/private' }),
    );
    const hits = API.map((a) => apps.get(a)!.hits);
    expect((await tally(web, 'api', 6)).statuses).toEqual({ 403: 6 });
    expect((await tally(apiCaller, 'api', 3)).statuses).toEqual({ 403: 3 });
    expect((await send(web, 'api')).body).toBe('RBAC: access denied');
    expect(API.map((a) => apps.get(a)!.hits)).toEqual(hits);
  });

  it('a router naming something that does not exist: the route falls back to the default destination and the problem is listed', async () => {
    await writeResolverAndRouter();

    // Consul itself refuses a router naming a subset its resolver does not define (it compiles
    // the discovery chain on every write), so `ServiceSubset: v9` never reaches lucid-mesh from
    // Consul; the router in force stays.
    const refused = await tryWriteEntry(
      c(),
      router({ Match: { HTTP: { PathPrefix: '/admin' } }, Destination: { ServiceSubset: 'v9' } }),
    );
    expect(refused.status).toBe(500);
    expect(refused.body).toContain('does not have a subset named "v9"');
    expect((await tally(web, 'api', 6, { path: '/admin' })).apps).toEqual({ 'api-3': 6 });

    // What Consul does accept: a route to a service that is not in the catalog.
    await writeEntry(
      c(),
      router(
        { Match: { HTTP: { PathPrefix: '/ghost' } }, Destination: { Service: 'ghost' } },
        adminRoute,
      ),
    );
    const ghostProblem = {
      kind: 'service-router',
      name: 'api',
      message: expect.stringMatching(/Routes\[0\].*"ghost"/) as unknown,
    };
    await waitFor(
      () => cp!.store.mesh?.problems.some((p) => p.message.includes('"ghost"')) ?? false,
      { what: 'the ghost route in the mesh problems' },
    );
    expect(cp!.store.mesh!.problems).toEqual([ghostProblem]);
    expect((await configErrors()).problems).toEqual([ghostProblem]);
    // Envoy: /ghost goes where everything else goes (the default subset v1); the rest of the
    // router applies.
    await web.envoy.waitFor(
      async () => (await routeTable(web.envoy, 'api')).length === 3,
      'the new router in Envoy',
    );
    expect(await routeTable(web.envoy, 'api')).toEqual([
      { match: 'prefix:/ghost', cluster: 'api~v1' },
      { match: 'prefix:/admin', cluster: 'api~v2' },
      { match: 'prefix:/', cluster: 'api~v1' },
    ]);
    expect((await tally(web, 'api', 8, { path: '/ghost/a' })).apps).toEqual({
      'api-1': 4,
      'api-2': 4,
    });
    expect((await tally(web, 'api', 6, { path: '/admin' })).apps).toEqual({ 'api-3': 6 });

    // The nearest thing to a missing subset that Consul lets through: a resolver whose v2
    // Filter Consul accepts but lucid-mesh cannot evaluate (Node.Meta: lucid-mesh evaluates
    // subsets from Service.Tags and Service.Meta only). The resolver is rejected (the traffic
    // source lists it), so the router's ServiceSubset v2 names a subset lucid-mesh does not
    // have: the mesh lists it and /admin falls back to the service's default destination.
    await writeEntry(c(), {
      ...resolver,
      Subsets: { v1: { Filter: '"v1" in Service.Tags' }, v2: { Filter: 'Node.Meta.rack == r2' } },
    });
    await waitFor(
      () =>
        cp!.store.mesh?.problems.some((p) => p.message.includes('subset "v2" is not defined')) ??
        false,
      { what: 'the missing subset in the mesh problems' },
    );
    expect(traffic!.problems()).toEqual([
      { kind: 'service-resolver', name: 'api', message: expect.stringContaining('Node.Meta') },
    ]);
    expect(cp!.store.mesh!.problems).toEqual(
      expect.arrayContaining([
        {
          kind: 'service-router',
          name: 'api',
          message: expect.stringMatching(/Routes\[1\].*subset "v2" is not defined/) as unknown,
        },
      ]),
    );
    const errors = (await configErrors()).problems;
    expect(errors.map((p) => `${p.kind}/${p.name}`).sort()).toEqual([
      'service-resolver/api',
      'service-router/api',
      'service-router/api',
    ]);
    // Without a (valid) resolver the default destination is the whole service.
    await web.envoy.waitFor(async () => (await catchAll()) === 'api', 'resolver gone from Envoy');
    for (const path of ['/admin', '/ghost', '/']) {
      const t = await tally(web, 'api', 9, { path });
      expect(t.apps, path).toEqual({ 'api-1': 3, 'api-2': 3, 'api-3': 3 });
    }

    await deleteEntry(c(), 'service-router', 'api');
    await deleteEntry(c(), 'service-resolver', 'api');
    await waitFor(() => traffic!.problems().length === 0 && cp!.store.mesh?.problems.length === 0, {
      what: 'no problems left',
    });
    expect((await configErrors()).problems).toEqual([]);
  });

  it('an entry Consul accepts but lucid-mesh rejects is listed and breaks nothing else', async () => {
    await writeResolverAndRouter();
    const consulTraffic = traffic as ConsulTrafficSource;
    const updates = (): number => consulTraffic.status().updates;
    const before = updates();

    // Consul does not compile a route's PathRegex; one that is not a regular expression is
    // stored as written (Envoy would reject the whole route configuration).
    const badRouter: ConfigEntry = {
      Kind: 'service-router',
      Name: 'web',
      Routes: [{ Match: { HTTP: { PathRegex: '/slow(' } }, Destination: { Service: 'web' } }],
    };
    await writeEntry(c(), badRouter);
    await waitFor(() => traffic!.problems().length > 0, { what: 'the rejected router listed' });
    expect(traffic!.problems()).toEqual([
      {
        kind: 'service-router',
        name: 'web',
        message: expect.stringMatching(/Routes\[0\]\.Match\.HTTP\.PathRegex.*slow\(/) as unknown,
      },
    ]);
    expect((await configErrors()).problems).toEqual(traffic!.problems());
    expect(cp!.store.mesh!.problems).toEqual([]);
    // api's resolver and router still apply...
    expect((await tally(web, 'api', 6, { path: '/admin' })).apps).toEqual({ 'api-3': 6 });
    expect((await tally(web, 'api', 6, { path: '/x' })).apps).toEqual({ 'api-1': 3, 'api-2': 3 });
    // ...and later writes still do.
    await timed(
      'write service-splitter',
      () => writeEntry(c(), splitter),
      async () => (await firstAnswer('/x')) === 'api-3',
    );
    expect(updates()).toBeGreaterThan(before);

    // Fixed in Consul: the problem goes.
    await writeEntry(c(), {
      ...badRouter,
      Routes: [{ Match: { HTTP: { PathRegex: '/slow.*' } }, Destination: { Service: 'web' } }],
    });
    await waitFor(() => traffic!.problems().length === 0, { what: 'the router accepted' });
    expect((await configErrors()).problems).toEqual([]);

    for (const [kind, name] of [
      ['service-router', 'web'],
      ['service-splitter', 'api'],
      ['service-router', 'api'],
      ['service-resolver', 'api'],
    ] as const) {
      await deleteEntry(c(), kind, name);
    }
    await web.envoy.waitFor(async () => (await catchAll()) === 'api', 'entries gone from Envoy');
  });

  it('service-defaults without Protocol, as Consul stores it (Protocol ""), still applies its UpstreamConfig', async () => {
    // The usual way to set upstream limits in Consul: an entry with UpstreamConfig only. Consul
    // stores and serves it with `"Protocol": ""` (GET /v1/config/service-defaults/web).
    await writeEntry(c(), {
      Kind: 'service-defaults',
      Name: 'web',
      UpstreamConfig: { Overrides: [apiOverride] },
    });
    const stored = JSON.parse((await c().api('GET', '/v1/config/service-defaults/web')).body) as {
      Protocol?: unknown;
    };
    expect(stored.Protocol).toBe('');
    const consulTraffic = traffic as ConsulTrafficSource;
    await waitFor(() => consulTraffic.status().kinds['service-defaults'].entries === 1, {
      what: 'service-defaults/web read from Consul',
    });
    // An empty Protocol is "not set" (Consul's own API output), not an invalid value.
    expect(traffic!.problems()).toEqual([]);
    await web.envoy.waitFor(
      async () => (await circuitBreakers(web.envoy, 'api')).max_connections === 7,
      "the override on web's api cluster",
      5_000,
    );
  });

  it("service-defaults UpstreamConfig on the caller: circuit breakers and outlier detection on web's api cluster", async () => {
    const envoyDefaults = ENVOY_DEFAULT_THRESHOLDS;
    // (Should the previous test's override still be in force here, its removal did not
    // reach Envoy: see the end of this test.)
    expect(await circuitBreakers(web.envoy, 'api')).toMatchObject(envoyDefaults);
    expect((await dumpedCluster(web.envoy, 'api'))?.outlier_detection).toBeUndefined();

    // Protocol stated: in Consul a service-defaults entry without one makes the service tcp
    // whatever proxy-defaults says (hashicorp/consul#11457); the previous test has that case.
    const webDefaults: ConfigEntry = {
      Kind: 'service-defaults',
      Name: 'web',
      Protocol: 'http',
      UpstreamConfig: { Overrides: [apiOverride] },
    };
    await timed(
      'write service-defaults',
      () => writeEntry(c(), webDefaults),
      async () => (await circuitBreakers(web.envoy, 'api')).max_connections === 7,
    );
    // Envoy's /clusters: the thresholds in force.
    expect(await circuitBreakers(web.envoy, 'api')).toMatchObject({
      max_connections: 7,
      max_pending_requests: 8,
      max_requests: 9,
    });
    // Envoy's /config_dump: the outlier detection of the cluster (Consul hands the durations
    // back as integer nanoseconds; Envoy shows what lucid-mesh made of them).
    const cluster = await dumpedCluster(web.envoy, 'api');
    expect(cluster?.outlier_detection).toMatchObject({
      interval: '3s',
      consecutive_5xx: 4,
      enforcing_consecutive_5xx: 60,
      max_ejection_percent: 30,
      base_ejection_time: '7s',
    });
    // Only the caller's proxies: api's own sidecar keeps Envoy's defaults for api.
    expect(await circuitBreakers(apiCaller.envoy, 'api')).toMatchObject(envoyDefaults);
    expect((await dumpedCluster(apiCaller.envoy, 'api'))?.outlier_detection).toBeUndefined();
    expect((await tally(web, 'api', 6)).statuses).toEqual({ 200: 6 });

    // Deleting the entry must give web's sidecar the shared api cluster back. (The override
    // is a per-proxy cluster shadowing the shared one of the same name; when it goes and the
    // shared one has not changed, the stream must still send the shared one.)
    await timed(
      'delete service-defaults',
      () => deleteEntry(c(), 'service-defaults', 'web'),
      async () => (await circuitBreakers(web.envoy, 'api')).max_connections === 1024,
    );
    expect(await circuitBreakers(web.envoy, 'api')).toMatchObject(envoyDefaults);
    expect((await dumpedCluster(web.envoy, 'api'))?.outlier_detection).toBeUndefined();
  });

  it('reports Consul write → Envoy latency; Envoy never rejected an update', async () => {
    const ms = latencies.map((l) => l.ms);
    const byKind = new Map<string, number[]>();
    for (const l of latencies) byKind.set(l.what, [...(byKind.get(l.what) ?? []), l.ms]);
    console.log(
      `[consul traffic] Consul PUT/DELETE /v1/config → behaviour seen through Envoy (delta, ` +
        `debounce 100 ms), ${ms.length} changes: median ${Math.round(median(ms))} ms, ` +
        `min ${Math.round(Math.min(...ms))}, max ${Math.round(Math.max(...ms))}; ` +
        [...byKind]
          .map(([k, v]) => `${k} ×${v.length} median ${Math.round(median(v))} ms`)
          .join('; '),
    );
    console.log(
      `[consul traffic] intentions: new listeners (RBAC) applied by every api sidecar after ` +
        `median ${Math.round(median(rbacApplied))} ms; enforced on every request after median ` +
        `${Math.round(median(byKind.get('write service-intentions')!.concat(byKind.get('delete service-intentions')!)))} ms ` +
        `(connections already open drain on the old filter chain: --drain-time-s 1 here)`,
    );
    expect(ms.length).toBeGreaterThanOrEqual(15);
    expect(median(ms)).toBeLessThan(1000);
    for (const s of sidecars) expect(await rejectedUpdates(s.envoy), s.envoy.name).toBe(0);
    expect(cp!.counters.nacks).toBe(0);
  });
});
