// Resilience settings from Consul config entries against real Envoy, in SotW and in delta mode:
// retries and request timeouts on a service-router route; circuit breakers (Limits) and outlier
// detection (PassiveHealthCheck) from the caller's service-defaults UpstreamConfig. Each test
// measures what a caller of the service notices, before and after the entry applies.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/app.js';
import type { XdsMode } from '../../src/bootstrap/render.js';
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
  hostHealthFlags,
  startTrafficApp,
  type DumpedRoute,
  type TrafficApp,
} from '../support/traffic-app.js';

/** A service-router for api with one catch-all route to `destination`. */
const catchAll = (destination: Record<string, unknown>) => ({
  Kind: 'service-router',
  Name: 'api',
  Routes: [{ Destination: destination }],
});

/** web's own service-defaults: how web's sidecar reaches api. */
const webUpstream = (settings: Record<string, unknown>) => ({
  Kind: 'service-defaults',
  Name: 'web',
  UpstreamConfig: { Overrides: [{ Name: 'api', ...settings }] },
});

const pct = (part: number, total: number) => `${((part / total) * 100).toFixed(1)} %`;

describe.each<XdsMode>(['sotw', 'delta'])('traffic resilience with real Envoy (%s)', (mode) => {
  const catalog = new CatalogFile();
  const traffic = new CatalogFile('traffic.yaml');
  let cp: RunningControlPlane | undefined;
  let flaky: TrafficApp, slow: TrafficApp, good1: TrafficApp, good2: TrafficApp, bad: TrafficApp;
  let web: Sidecar | undefined;

  const catalogDoc = (apps: TrafficApp[]) => ({
    services: [
      {
        name: 'api',
        instances: apps.map((a) => ({ id: a.name, address: '127.0.0.1', port: a.port })),
      },
      // The caller: its service-defaults say how its sidecar reaches api.
      { name: 'web', instances: [] },
    ],
  });

  /**
   * Writes the catalog (api's instances) and the traffic file, and waits until web's Envoy has
   * both: exactly those hosts in cluster api, and `ready` true of its routes and cluster api.
   */
  async function apply(
    apps: TrafficApp[],
    entries: unknown[],
    ready: (routes: DumpedRoute[], cluster: DumpedRoute | undefined) => boolean,
    what: string,
  ): Promise<void> {
    catalog.write(catalogDoc(apps));
    traffic.write(entries);
    const hosts = apps.map((a) => `127.0.0.1:${a.port}`).sort();
    await web!.envoy.waitFor(
      async () =>
        (await clusterHosts(web!.envoy, 'api')).join() === hosts.join() &&
        ready(await envoyRoutes(web!.envoy, 'api'), await envoyCluster(web!.envoy, 'api')),
      what,
      20_000,
    );
  }
  const action = (routes: DumpedRoute[]) =>
    (routes[0]?.route ?? {}) as { retry_policy?: unknown; timeout?: string };
  /** api's route has neither retries nor a timeout: no service-router applies. */
  const plainRoute = (routes: DumpedRoute[]) =>
    routes.length === 1 && !action(routes).retry_policy && action(routes).timeout === undefined;

  beforeAll(async () => {
    [flaky, slow, good1, good2, bad] = await Promise.all([
      startTrafficApp('api-flaky', { fail: { status: 503, every: 2 } }),
      startTrafficApp('api-slow', { delayMs: 2000 }),
      startTrafficApp('api-1'),
      startTrafficApp('api-2'),
      startTrafficApp('api-bad', { fail: { status: 500, every: 1 } }),
    ]);
    const xdsPort = await freePort();
    catalog.write(catalogDoc([flaky]));
    traffic.write([]);
    cp = await startTestControlPlane(catalog, { xds: xdsPort }, { traffic });
    web = await startSidecar({ nodeId: 'web-1', service: 'web', xdsPort, mode });
    await web.envoy.waitFor(
      async () => (await callThrough(web!, 'api').catch(() => undefined))?.app === 'api-flaky',
      'web → api answered',
      30_000,
    );
  });

  afterAll(async () => {
    await web?.envoy.stop();
    await cp?.stop();
    await Promise.all([flaky, slow, good1, good2, bad].map((a) => a?.close()));
    catalog.remove();
    traffic.remove();
  });

  it('retries 5xx: an app failing every other request looks healthy with NumRetries 3', async () => {
    // One request at a time: the app fails exactly every other request, so a retry lands on a
    // success. (At a random 50 %, even three retries would leave 0.5^4 ≈ 6 % failing.)
    await apply([flaky], [], plainRoute, 'no retry policy');
    const without = await callMany(web!, 'api', 200);
    expect(without.errors).toEqual([]);
    expect(without.failed / without.total).toBeGreaterThanOrEqual(0.4);
    expect(without.failed / without.total).toBeLessThanOrEqual(0.6);
    expect(without.statuses[503]).toBe(without.failed);

    await apply(
      [flaky],
      [catchAll({ NumRetries: 3, RetryOn: ['5xx'] })],
      (routes) => action(routes).retry_policy !== undefined,
      'retry policy on the api route',
    );
    const retriesBefore = (await web!.envoy.stat('cluster.api.upstream_rq_retry')) ?? 0;
    const hitsBefore = flaky.hits;
    const withRetries = await callMany(web!, 'api', 200);
    console.log(
      `[${mode}] retries: failures without ${pct(without.failed, 200)}, with NumRetries 3 ${pct(withRetries.failed, 200)}; app saw ${flaky.hits - hitsBefore} attempts for 200 requests`,
    );
    expect(withRetries.failed / withRetries.total).toBeLessThan(0.01);
    // The app really failed as often: Envoy retried.
    expect(flaky.hits - hitsBefore).toBeGreaterThanOrEqual(300);
    expect(await web!.envoy.stat('cluster.api.upstream_rq_retry')).toBeGreaterThanOrEqual(
      retriesBefore + 90,
    );
  });

  it('times out a slow app: RequestTimeout 500ms answers 504 within a second', async () => {
    await apply([slow], [], plainRoute, 'no route timeout');
    const patient = await callThrough(web!, 'api', { timeoutMs: 5_000 });
    expect(patient.status).toBe(200);
    expect(patient.elapsedMs).toBeGreaterThanOrEqual(1_950);

    await apply(
      [slow],
      [catchAll({ RequestTimeout: '500ms' })],
      (routes) => action(routes).timeout === '0.500s',
      'route timeout 500ms',
    );
    const timedOut = await callMany(web!, 'api', 3, { concurrency: 3 });
    console.log(
      `[${mode}] timeout: without ${patient.elapsedMs.toFixed(0)} ms (200), with RequestTimeout 500ms ${timedOut.elapsedMs.map((t) => t.toFixed(0)).join('/')} ms (${Object.keys(timedOut.statuses).join()})`,
    );
    expect(timedOut.statuses).toEqual({ 504: 3 });
    for (const ms of timedOut.elapsedMs) {
      expect(ms).toBeGreaterThanOrEqual(490);
      expect(ms).toBeLessThan(1_000);
    }
  });

  it("circuit breaker: the caller's Limits overflow parallel requests with 503s", async () => {
    slow.behave({ delayMs: 1000 });
    await apply(
      [slow],
      [],
      (routes, cluster) => plainRoute(routes) && !cluster?.circuit_breakers,
      'no limits',
    );
    slow.resetStats();
    const open = await callMany(web!, 'api', 20, { concurrency: 20 });
    expect(open.statuses).toEqual({ 200: 20 });
    const openParallel = slow.maxInFlight;
    expect(openParallel).toBeGreaterThan(10);

    // MaxConcurrentRequests is Envoy's max_requests. Envoy 1.40 counts its overflows in
    // upstream_rq_active_overflow (envoyproxy/envoy#44164; before, in upstream_rq_pending_overflow).
    const stat = (name: string) => web!.envoy.stat(`cluster.api.${name}`).then((v) => v ?? 0);
    await apply(
      [slow],
      [webUpstream({ Limits: { MaxConcurrentRequests: 1 } })],
      (_routes, cluster) => JSON.stringify(cluster?.circuit_breakers).includes('"max_requests":1'),
      'max_requests 1 on cluster api',
    );
    let activeOverflow = await stat('upstream_rq_active_overflow');
    slow.resetStats();
    const limited = await callMany(web!, 'api', 20, { concurrency: 20 });
    activeOverflow = (await stat('upstream_rq_active_overflow')) - activeOverflow;
    const limitedParallel = slow.maxInFlight;
    expect(limited.errors).toEqual([]);
    expect(limited.statuses[503]).toBeGreaterThan(0);
    expect(limited.statuses[200]).toBeGreaterThan(0);
    expect(limitedParallel).toBe(1);
    expect(activeOverflow).toBe(limited.statuses[503]);

    // One connection, one request waiting for it: the rest overflow the pending queue.
    await apply(
      [slow],
      [webUpstream({ Limits: { MaxConnections: 1, MaxPendingRequests: 1 } })],
      (_routes, cluster) =>
        JSON.stringify(cluster?.circuit_breakers).includes('"max_pending_requests":1'),
      'max_connections 1, max_pending_requests 1 on cluster api',
    );
    let pendingOverflow = await stat('upstream_rq_pending_overflow');
    slow.resetStats();
    const queued = await callMany(web!, 'api', 20, { concurrency: 20 });
    pendingOverflow = (await stat('upstream_rq_pending_overflow')) - pendingOverflow;
    console.log(
      `[${mode}] circuit breaker, 20 parallel 1 s requests: no limits ${JSON.stringify(open.statuses)} (app served ${openParallel} at once); MaxConcurrentRequests 1 ${JSON.stringify(limited.statuses)} (${limitedParallel} at once, upstream_rq_active_overflow +${activeOverflow}); MaxConnections 1 + MaxPendingRequests 1 ${JSON.stringify(queued.statuses)} (${slow.maxInFlight} at once, upstream_rq_pending_overflow +${pendingOverflow})`,
    );
    expect(queued.errors).toEqual([]);
    expect(queued.statuses[503]).toBeGreaterThan(0);
    // The first request, and the one queued behind it when it found the connection open.
    expect(queued.statuses[200]).toBeGreaterThan(0);
    expect(slow.maxInFlight).toBe(1);
    expect(pendingOverflow).toBe(queued.statuses[503]);
    expect(await rejectedUpdates(web!.envoy)).toBe(0);
  });

  it('outlier detection ejects an instance answering 500, and lets it back after BaseEjectionTime', async () => {
    const badHost = `127.0.0.1:${bad.port}`;
    await apply(
      [good1, good2, bad],
      [
        webUpstream({
          // Envoy's default MaxEjectionPercent (10) never ejects one host in three
          // (outlier_detection.ejections_overflow): allow half the hosts out.
          PassiveHealthCheck: {
            Interval: '1s',
            MaxFailures: 3,
            BaseEjectionTime: '5s',
            MaxEjectionPercent: 50,
          },
        }),
      ],
      (routes, cluster) =>
        plainRoute(routes) &&
        cluster?.outlier_detection !== undefined &&
        cluster.circuit_breakers === undefined,
      'outlier detection on cluster api',
    );
    // Round robin over three hosts: the bad one sees every third request.
    let ejectedAt: number | undefined;
    let sent = 0;
    for (; sent < 60 && ejectedAt === undefined; sent++) {
      await callThrough(web!, 'api');
      if ((await hostHealthFlags(web!.envoy, 'api', badHost))?.includes('failed_outlier_check'))
        ejectedAt = performance.now();
    }
    expect(ejectedAt, `not ejected after ${sent} requests`).toBeDefined();
    expect(
      await web!.envoy.stat('cluster.api.outlier_detection.ejections_enforced_consecutive_5xx'),
    ).toBeGreaterThan(0);

    const badHits = bad.hits;
    const ejected = await callMany(web!, 'api', 40, { concurrency: 4 });
    expect(ejected.statuses).toEqual({ 200: 40 });
    expect(Object.keys(ejected.apps).sort()).toEqual(['api-1', 'api-2']);
    expect(bad.hits).toBe(badHits);

    await web!.envoy.waitFor(
      async () => (await hostHealthFlags(web!.envoy, 'api', badHost)) === 'healthy',
      'the ejected host back',
      15_000,
    );
    const back = performance.now() - ejectedAt!;
    console.log(
      `[${mode}] outlier: ejected after ${sent} requests, back after ${(back / 1000).toFixed(1)} s (BaseEjectionTime 5s, Interval 1s)`,
    );
    expect(back).toBeGreaterThanOrEqual(4_500);
    expect(back).toBeLessThan(8_000);
    const after = await callMany(web!, 'api', 9);
    expect(after.apps['api-bad']).toBeGreaterThan(0);
    expect(bad.hits).toBeGreaterThan(badHits);
    expect(await rejectedUpdates(web!.envoy)).toBe(0);
  });
});
