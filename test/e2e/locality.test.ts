// Locality-aware failover against real Envoy (delta xDS): every instance runs on 127.0.0.1, and
// its zone, region and datacenter are catalog fields. A `web` sidecar (registered in dc1,
// region r1, zone a) calls `api`; the tests count which instance answers while instances go
// critical in the catalog, their processes die without the catalog noticing, the failover
// threshold lets load spill, and a service-resolver redirects or names a datacenter that does
// not exist. Switch times and failed requests are measured with a ~50 rps loop and reported.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ControlPlaneOptions, RunningControlPlane } from '../../src/app.js';
import type { EnvoyHandle } from '../support/envoy.js';
import { httpGet } from '../support/http-app.js';
import {
  CatalogFile,
  rejectedUpdates,
  startSidecar,
  startTestControlPlane,
  type Sidecar,
} from '../support/mesh.js';
import {
  among as amongNames,
  assignmentSummary,
  edsHealth,
  envoyAssignment,
  envoyHosts,
  loadAcross,
  type LoadRun,
  expectCleanReturn,
  expectFailover,
  ms,
  pct,
} from '../support/multi-dc.js';
import { freePort } from '../support/ports.js';
import {
  callMany,
  callThrough,
  envoyCluster,
  envoyRoutes,
  startTrafficApp,
  type Tally,
  type TrafficApp,
} from '../support/traffic-app.js';
import { waitFor } from '../support/wait.js';

// ---- the mesh under test ---------------------------------------------------------------------

/** An api instance: its app, where it runs, and what the catalog says of its health. */
interface Placement {
  readonly app: TrafficApp;
  readonly datacenter?: string;
  readonly region?: string;
  readonly zone?: string;
  readonly critical?: boolean;
}

/** What web's Envoy should hold for a host of cluster api. */
interface Expected {
  readonly app: TrafficApp;
  readonly priority: number;
  /** false: sent as UNHEALTHY (health_flags /failed_eds_health). Default true. */
  readonly healthy?: boolean;
}

/** The caller's registration: its node id is its catalog instance id, so this is its locality. */
const WEB = { id: 'web-1', datacenter: 'dc1', region: 'r1', zone: 'a' } as const;

interface TestMesh {
  readonly catalog: CatalogFile;
  readonly traffic: CatalogFile;
  readonly cp: RunningControlPlane;
  readonly web: Sidecar;
  /** A new api app (closed with the mesh). */
  app(name: string): Promise<TrafficApp>;
  /** Writes the catalog with these api instances (and web's registration). */
  place(api: readonly Placement[]): void;
  /** Waits until web's Envoy has exactly these hosts in cluster api, with these priorities. */
  expectHosts(hosts: readonly Expected[], what: string): Promise<void>;
  /** Writes the traffic file and waits until web's Envoy has applied what `ready` checks. */
  entries(entries: unknown[], ready: () => Promise<boolean>, what: string): Promise<void>;
}

/** Started meshes and apps, stopped by `stopAll` whether the tests passed or not. */
class Resources {
  readonly apps: TrafficApp[] = [];
  readonly envoys: EnvoyHandle[] = [];
  readonly cps: RunningControlPlane[] = [];
  readonly files: CatalogFile[] = [];

  async stopAll(): Promise<void> {
    await Promise.allSettled(this.envoys.map((e) => e.stop()));
    await Promise.allSettled(this.cps.map((c) => c.stop()));
    await Promise.allSettled(this.apps.map((a) => a.close()));
    for (const f of this.files) f.remove();
  }
}

async function startMesh(
  res: Resources,
  mesh: ControlPlaneOptions['mesh'],
  initial: (app: (name: string) => Promise<TrafficApp>) => Promise<Placement[]>,
): Promise<{ mesh: TestMesh; api: Placement[] }> {
  const catalog = new CatalogFile();
  const traffic = new CatalogFile('traffic.yaml');
  res.files.push(catalog, traffic);
  const webPort = await freePort();
  const app = async (name: string): Promise<TrafficApp> => {
    const a = await startTrafficApp(name);
    res.apps.push(a);
    return a;
  };
  const place = (api: readonly Placement[]): void =>
    catalog.write({
      services: [
        {
          name: 'api',
          instances: api.map((p) => ({
            id: p.app.name,
            address: '127.0.0.1',
            port: p.app.port,
            health: p.critical ? 'critical' : 'passing',
            ...(p.datacenter !== undefined ? { datacenter: p.datacenter } : {}),
            ...(p.region !== undefined ? { region: p.region } : {}),
            ...(p.zone !== undefined ? { zone: p.zone } : {}),
          })),
        },
        {
          name: 'web',
          instances: [{ ...WEB, address: '127.0.0.1', port: webPort }],
        },
      ],
    });
  const api = await initial(app);
  place(api);
  traffic.write([]);
  const xdsPort = await freePort();
  const cp = await startTestControlPlane(catalog, { xds: xdsPort }, { traffic, mesh });
  res.cps.push(cp);
  const web = await startSidecar({ nodeId: WEB.id, service: 'web', xdsPort, mode: 'delta' });
  res.envoys.push(web.envoy);
  await web.envoy.waitFor(
    async () => (await callThrough(web, 'api').catch(() => undefined))?.status === 200,
    'web → api answered',
    30_000,
  );
  return {
    api,
    mesh: {
      catalog,
      traffic,
      cp,
      web,
      app,
      place,
      async expectHosts(hosts, what) {
        const want = hosts
          .map(
            (h) => `${h.app.port} P${h.priority} ${h.healthy === false ? 'unhealthy' : 'healthy'}`,
          )
          .sort()
          .join(', ');
        let got = '';
        try {
          await web.envoy.waitFor(
            async () => {
              got = [...(await envoyHosts(web.envoy, 'api')).entries()]
                .map(([port, h]) => `${port} P${h.priority} ${edsHealth(h.flags)}`)
                .sort()
                .join(', ');
              return got === want;
            },
            what,
            20_000,
          );
        } catch (err) {
          throw new Error(
            `${(err as Error).message}\nwanted hosts: ${want}\nEnvoy has: ${got}\n` +
              `EDS: ${await assignmentSummary(web.envoy, 'api')}`,
          );
        }
      },
      async entries(entries, ready, what) {
        traffic.write(entries);
        await web.envoy.waitFor(async () => (await ready()) || undefined, what, 20_000);
      },
    },
  };
}

/** A loadAcross predicate: answered by one of `apps`. */
const among = (apps: readonly TrafficApp[]) => amongNames(apps.map((a) => a.name));

function served(t: Tally, apps: readonly TrafficApp[]): number {
  return apps.reduce((n, a) => n + (t.apps[a.name] ?? 0), 0);
}

/** A service-router for api: retry what could not connect, on any host (Consul's router). */
const retryRouter = {
  Kind: 'service-router',
  Name: 'api',
  Routes: [{ Destination: { RetryOnConnectFailure: true, NumRetries: 3 } }],
};

/** api's route carries a retry policy with connect-failure. */
const hasRetries = async (web: Sidecar): Promise<boolean> =>
  JSON.stringify((await envoyRoutes(web.envoy, 'api'))[0]?.route?.retry_policy ?? {}).includes(
    'connect-failure',
  );

// ---- the tests -------------------------------------------------------------------------------

describe('locality-aware failover with real Envoy (delta)', () => {
  const res = new Resources();
  let m: TestMesh;
  let zoneA: TrafficApp, zoneB: TrafficApp, zoneC: TrafficApp;
  let dc1: TrafficApp[], dc2: TrafficApp[];
  let dc1Generation = 0;

  const zones = (aCritical: boolean): Placement[] => [
    { app: zoneA, region: 'r1', zone: 'a', critical: aCritical },
    { app: zoneB, region: 'r1', zone: 'b' },
    { app: zoneC, region: 'r1', zone: 'c' },
  ];
  /** api in two datacenters: dc1 (the caller's, the control plane's default) and dc2. */
  const datacenters = (dc1Critical = false): Placement[] => [
    ...dc1.map((app) => ({ app, critical: dc1Critical })),
    ...dc2.map((app) => ({ app, datacenter: 'dc2' })),
  ];
  const dcHosts = (dc1Healthy = true): Expected[] => [
    ...dc1.map((app) => ({ app, priority: 0, healthy: dc1Healthy })),
    ...dc2.map((app) => ({ app, priority: 1 })),
  ];

  beforeAll(async () => {
    const started = await startMesh(
      res,
      { datacenter: 'dc1', datacenters: ['dc2'] },
      async (app) => {
        [zoneA, zoneB, zoneC] = await Promise.all([
          app('api-zone-a'),
          app('api-zone-b'),
          app('api-zone-c'),
        ]);
        dc1 = await Promise.all([app('api-dc1-1'), app('api-dc1-2')]);
        dc2 = await Promise.all([app('api-dc2-1'), app('api-dc2-2')]);
        return zones(false);
      },
    );
    m = started.mesh;
  });

  afterAll(async () => {
    await res.stopAll();
  });

  it('zones: a caller in zone a uses zone a until its instance is critical, then zones b and c', async () => {
    m.place(zones(false));
    await m.expectHosts(
      [
        { app: zoneA, priority: 0 },
        { app: zoneB, priority: 1 },
        { app: zoneC, priority: 1 },
      ],
      'api by zone: a at P0, b and c at P1',
    );
    const local = await callMany(m.web, 'api', 60, { concurrency: 2 });
    expect(local.errors).toEqual([]);
    expect(local.apps).toEqual({ [zoneA.name]: 60 });

    m.place(zones(true));
    await m.expectHosts(
      [
        { app: zoneA, priority: 0, healthy: false },
        { app: zoneB, priority: 1 },
        { app: zoneC, priority: 1 },
      ],
      'zone a sent as unhealthy',
    );
    const away = await callMany(m.web, 'api', 60, { concurrency: 2 });
    expect(away.failed, JSON.stringify(away)).toBe(0);
    expect(away.apps[zoneA.name] ?? 0).toBe(0);
    expect(away.apps[zoneB.name]).toBeGreaterThan(0);
    expect(away.apps[zoneC.name]).toBeGreaterThan(0);

    const back = await loadAcross(m.web, 'api', {
      from: among([zoneB, zoneC]),
      to: among([zoneA]),
      change: () => m.place(zones(false)),
    });
    console.log(
      `[locality] zones: 60/60 to zone a; zone a critical → ${JSON.stringify(away.apps)}; ` +
        `restored → 100 % zone a again after ${ms(back.switchMs)} (${back.total} requests at 50 rps, ${back.failed} failed)`,
    );
    expectCleanReturn(back);
  });

  it('datacenters: all in dc1; dc1 critical → dc2 with ≤ 1 % failed; dc1 restored → back within 10 s', async () => {
    m.place(datacenters());
    await m.entries([retryRouter], () => hasRetries(m.web), 'retry policy on the api route');
    await m.expectHosts(dcHosts(), 'dc1 at P0, dc2 at P1');
    const local = await callMany(m.web, 'api', 60, { concurrency: 2 });
    expect(local.failed).toBe(0);
    expect(served(local, dc1)).toBe(60);

    // The whole 10 s at 50 rps: the failure share is over the loop, not a short one.
    const away = await loadAcross(m.web, 'api', {
      from: among(dc1),
      to: among(dc2),
      change: () => m.place(datacenters(true)),
      minAfterMs: 9_000,
      maxAfterMs: 9_000,
    });
    await m.expectHosts(dcHosts(false), 'dc1 sent as unhealthy');
    const back = await loadAcross(m.web, 'api', {
      from: among(dc2),
      to: among(dc1),
      change: () => m.place(datacenters(false)),
    });
    console.log(
      `[locality] datacenters: dc1 critical → all dc2 after ${ms(away.switchMs)}, ${away.failed}/${away.total} failed (${pct(away.failed, away.total)}); ` +
        `dc1 restored → all dc1 after ${ms(back.switchMs)}, ${back.failed}/${back.total} failed`,
    );
    expectFailover(away);
    expectCleanReturn(back);
  });

  it('dead dc1 processes, catalog still passing: outlier detection (on by default) moves traffic to dc2', async () => {
    m.place(datacenters());
    await m.entries([retryRouter], () => hasRetries(m.web), 'retry policy on the api route');
    await m.expectHosts(dcHosts(), 'dc1 at P0, dc2 at P1');
    // No PassiveHealthCheck anywhere: a failover backend gets outlier detection by default.
    const cluster = await envoyCluster(m.web.envoy, 'api');
    expect(cluster?.outlier_detection).toEqual({
      consecutive_5xx: 5,
      interval: '10s',
      base_ejection_time: '30s',
      max_ejection_percent: 100,
    });
    expect(cluster?.common_lb_config?.healthy_panic_threshold).toEqual({});
    expect(cluster?.common_lb_config?.update_merge_window).toBe('0s');
    const stat = async (name: string) => (await m.web.envoy.stat(`cluster.api.${name}`)) ?? 0;
    const ejectedBefore = await stat('outlier_detection.ejections_enforced_total');
    const retriesBefore = await stat('upstream_rq_retry');
    const overflowBefore = await stat('upstream_rq_retry_overflow');

    const dead = dc1;
    let run: LoadRun;
    let ejected: number, flags: string[], retries: number, overflow: number;
    try {
      // The whole 10 s at 50 rps: the failure share is over the loop, not a short one.
      run = await loadAcross(m.web, 'api', {
        from: among(dead),
        to: among(dc2),
        change: () => Promise.all(dead.map((a) => a.close())),
        minAfterMs: 9_000,
        maxAfterMs: 9_000,
      });
      ejected = (await stat('outlier_detection.ejections_enforced_total')) - ejectedBefore;
      const hosts = await envoyHosts(m.web.envoy, 'api');
      flags = dead.map((a) => hosts.get(a.port)?.flags ?? '(gone)');
      retries = (await stat('upstream_rq_retry')) - retriesBefore;
      overflow = (await stat('upstream_rq_retry_overflow')) - overflowBefore;
    } finally {
      // dc1 comes back as new processes (new ports: no ejection history), for the next tests.
      dc1 = await Promise.all([
        m.app(`api-dc1-${++dc1Generation}a`),
        m.app(`api-dc1-${dc1Generation}b`),
      ]);
      m.place(datacenters());
    }
    console.log(
      `[locality] dead dc1 processes (catalog passing): all dc2 after ${ms(run.switchMs)}, ` +
        `${run.failed}/${run.total} failed (${pct(run.failed, run.total)}), ${ejected} ejections, ` +
        `dc1 hosts ${flags.join(' ')}, upstream_rq_retry ${retries}, upstream_rq_retry_overflow ${overflow}; ` +
        `cluster api common_lb_config ${JSON.stringify(cluster?.common_lb_config)}` +
        (run.failures.length > 0 ? `\n  ${run.failures.join('\n  ')}` : ''),
    );
    expect(run.beforeOff).toBe(0);
    expect(run.switchMs, JSON.stringify(run.apps)).toBeDefined();
    expect(run.switchMs!).toBeLessThan(10_000);
    expect(ejected).toBeGreaterThanOrEqual(2);
    for (const f of flags) expect(f).toContain('failed_outlier_check');
    // Few: ejecting both hosts takes 5 connect failures each, a couple of requests' worth with
    // 3 retries; once both are ejected, nothing is left in P0 and dc2 takes every request.
    expect(run.failed / run.total, run.failures.join('\n')).toBeLessThanOrEqual(0.01);

    await m.expectHosts(dcHosts(), 'new dc1 instances at P0');
    const local = await callMany(m.web, 'api', 50, { concurrency: 2 });
    expect(local.failed).toBe(0);
    expect(served(local, dc1)).toBe(50);
  });

  it('Redirect{Datacenter: dc2} sends every request to dc2 at once; removing it reverts', async () => {
    m.place(datacenters());
    await m.entries([retryRouter], () => hasRetries(m.web), 'retry policy on the api route');
    await m.expectHosts(dcHosts(), 'dc1 at P0, dc2 at P1');
    const redirect = { Kind: 'service-resolver', Name: 'api', Redirect: { Datacenter: 'dc2' } };

    const there = await loadAcross(m.web, 'api', {
      from: among(dc1),
      to: among(dc2),
      change: () => m.traffic.write([retryRouter, redirect]),
    });
    await m.expectHosts(
      dc2.map((app) => ({ app, priority: 0 })),
      'only dc2 instances',
    );
    const all = await callMany(m.web, 'api', 60, { concurrency: 2 });
    const reverted = await loadAcross(m.web, 'api', {
      from: among(dc2),
      to: among(dc1),
      change: () => m.traffic.write([retryRouter]),
    });
    console.log(
      `[locality] Redirect dc2: all dc2 after ${ms(there.switchMs)} (${there.toBeforeSwitch} dc2 answers before the last dc1 one, ${there.failed}/${there.total} failed), ` +
        `then ${served(all, dc2)}/60 to dc2; removed → all dc1 after ${ms(reverted.switchMs)} (${reverted.failed}/${reverted.total} failed)`,
    );
    expect(there.beforeOff).toBe(0);
    expect(there.switchMs, JSON.stringify(there.apps)).toBeDefined();
    // At once: no dc1 answer after the first dc2 one.
    expect(there.toBeforeSwitch).toBe(0);
    expect(there.failed, there.failures.join('\n')).toBe(0);
    expect(all.failed).toBe(0);
    expect(served(all, dc2)).toBe(60);
    expect(reverted.switchMs, JSON.stringify(reverted.apps)).toBeDefined();
    expect(reverted.toBeforeSwitch).toBe(0);
    expect(reverted.failed, reverted.failures.join('\n')).toBe(0);
  });

  it('a resolver failing over to an unknown datacenter is reported, and local traffic keeps working', async () => {
    m.place(datacenters());
    await m.entries([], async () => !(await hasRetries(m.web)), 'no retry policy');
    await m.expectHosts(dcHosts(), 'dc1 at P0, dc2 at P1');
    const rejectedBefore = await rejectedUpdates(m.web.envoy);

    m.traffic.write([
      { Kind: 'service-resolver', Name: 'api', Failover: { '*': { Datacenters: ['dc9'] } } },
    ]);
    const problem = await waitFor(
      () => m.cp.store.mesh?.problems.find((p) => p.message.includes('"dc9"')),
      { what: 'a problem naming dc9 in the mesh', timeoutMs: 10_000 },
    );
    expect(problem.kind).toBe('service-resolver');
    expect(problem.name).toBe('api');
    const errors = await httpGet(`http://127.0.0.1:${m.cp.adminPort}/v1/config/errors`);
    expect(errors.status).toBe(200);
    const listed = (JSON.parse(errors.body) as { problems: Array<{ message: string }> }).problems;
    expect(listed.map((p) => p.message)).toContain(problem.message);

    // The resolver's failover list replaces the configured order: dc1, then dc9 (absent).
    await m.expectHosts(
      dc1.map((app) => ({ app, priority: 0 })),
      'dc1 only: the failover list names dc9, not dc2',
    );
    const local = await callMany(m.web, 'api', 60, { concurrency: 2 });
    console.log(
      `[locality] Failover to dc9: problem "${problem.message}"; local traffic ${JSON.stringify(local.apps)}`,
    );
    expect(local.failed).toBe(0);
    expect(served(local, dc1)).toBe(60);
    expect(await rejectedUpdates(m.web.envoy)).toBe(rejectedBefore);
  });
});

describe('failover threshold with real Envoy (delta)', () => {
  const res = new Resources();
  let m: TestMesh;
  let dc1: TrafficApp[], dc2: TrafficApp[];

  const place = (criticalDc1: number): Placement[] => [
    ...dc1.map((app, i) => ({ app, critical: i < criticalDc1 })),
    ...dc2.map((app) => ({ app, datacenter: 'dc2' })),
  ];
  /** Places api with `criticalDc1` of the 4 dc1 instances critical and sends 200 requests. */
  async function spill(criticalDc1: number): Promise<{ tally: Tally; dc2Share: number }> {
    m.place(place(criticalDc1));
    await m.expectHosts(
      [
        ...dc1.map((app, i) => ({ app, priority: 0, healthy: i >= criticalDc1 })),
        ...dc2.map((app) => ({ app, priority: 1 })),
      ],
      `${criticalDc1} of 4 dc1 instances unhealthy`,
    );
    const tally = await callMany(m.web, 'api', 200, { concurrency: 4 });
    const dc2Share = served(tally, dc2) / tally.total;
    console.log(
      `[locality] threshold 50 %, ${criticalDc1}/4 dc1 critical: dc2 share ${pct(served(tally, dc2), tally.total)} of 200 ` +
        `(${JSON.stringify(tally.apps)}); EDS ${await assignmentSummary(m.web.envoy, 'api')}`,
    );
    expect(tally.failed, JSON.stringify(tally)).toBe(0);
    return { tally, dc2Share };
  }

  beforeAll(async () => {
    const started = await startMesh(
      res,
      { datacenter: 'dc1', datacenters: ['dc2'], failoverThresholdPercent: 50 },
      async (app) => {
        dc1 = await Promise.all([1, 2, 3, 4].map((i) => app(`api-dc1-${i}`)));
        dc2 = await Promise.all([1, 2].map((i) => app(`api-dc2-${i}`)));
        return place(0);
      },
    );
    m = started.mesh;
  });

  afterAll(async () => {
    await res.stopAll();
  });

  it('--failover-threshold 50 is the overprovisioning factor 200 in the EDS Envoy applied', async () => {
    m.place(place(0));
    await m.expectHosts(
      [...dc1.map((app) => ({ app, priority: 0 })), ...dc2.map((app) => ({ app, priority: 1 }))],
      'dc1 at P0, dc2 at P1',
    );
    const cla = await envoyAssignment(m.web.envoy, 'api');
    expect(cla?.policy?.overprovisioning_factor).toBe(200);
  });

  it('1 of 4 dc1 instances critical: no traffic spills to dc2', async () => {
    const { tally } = await spill(1);
    expect(served(tally, dc2)).toBe(0);
    expect(served(tally, dc1)).toBe(200);
  });

  // The threshold is the healthy share *below which* load spills (docs/multi-dc.md): Envoy gives
  // P0 min(100 %, overprovisioning factor × healthy/total) of the load, the factor 100/T × 100.
  it('2 of 4 dc1 instances critical with threshold 50: 50 % healthy is not below it, nothing spills', async () => {
    const { tally } = await spill(2);
    expect(served(tally, dc2)).toBe(0);
  });

  it('2 of 4 dc1 instances critical with the resolver’s FailoverThreshold 60: some traffic spills', async () => {
    await m.entries(
      [{ Kind: 'service-resolver', Name: 'api', FailoverThreshold: 60 }],
      async () =>
        (await envoyAssignment(m.web.envoy, 'api'))?.policy?.overprovisioning_factor === 167,
      'FailoverThreshold 60 (factor 167) applied',
    );
    try {
      // P0 keeps 167 × 50 % = 83 % of the load; about 17 % goes to dc2.
      const { dc2Share } = await spill(2);
      expect(dc2Share).toBeGreaterThan(0.05);
      expect(dc2Share).toBeLessThan(0.35);
    } finally {
      await m.entries(
        [],
        async () =>
          (await envoyAssignment(m.web.envoy, 'api'))?.policy?.overprovisioning_factor === 200,
        'the serve threshold (factor 200) back',
      );
    }
  });

  it('3 of 4 dc1 instances critical: dc1 keeps half (25 % healthy × 2), dc2 takes the rest', async () => {
    const { dc2Share } = await spill(3);
    expect(dc2Share).toBeGreaterThan(0.35);
    expect(dc2Share).toBeLessThan(0.65);
  });
});
