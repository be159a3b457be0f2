// Failover across two real Consul datacenters with real Envoy (issue 11's first test): two -dev
// server agents on loopback, dc1 and dc2, WAN-joined; one lucid-mesh control plane per
// datacenter, each built as `lucid-mesh serve --source consul --consul <its agent> --datacenters
// <the other> --remote-stale-after 3s` builds it (sourcesFromFlags: catalog and config entries
// from its own agent, the other datacenter read through it with ?dc=; no --datacenter, so each
// takes its agent's). `api` runs in both datacenters (two instances each), every instance an app
// behind its own Envoy sidecar, registered with a Consul Connect sidecar registration and
// bootstrapped with `lucid-mesh bootstrap --consul-service-id` against its datacenter's control
// plane. `web` runs in dc1 and calls api through its sidecar in a bounded ~50 rps loop while dc1's
// instances go critical in Consul, die without Consul noticing, come back, a service-resolver
// redirects api to dc2, and dc2's agent goes away. Every measured number is logged with the
// prefix [consul multi-dc].
//
// mTLS stays off here (`security` undefined): with one control plane per datacenter, sidecars of
// dc1 and dc2 would need certificates from one shared CA (the same --ca-cert/--ca-key, or a
// shared CA store) to trust each other; that is what the mesh-gateway tests are about, not this.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControlPlane, type RunningControlPlane } from '../../src/app.js';
import { bootstrapCommand } from '../../src/cli/bootstrap-command.js';
import { meshSettingsFromFlags, sourcesFromFlags } from '../../src/cli/traffic-flags.js';
import { ConsulSource } from '../../src/sources/consul/consul-source.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { CONSUL_SETUP_TIMEOUT_MS, startConsul, type ConsulAgent } from '../support/consul.js';
import {
  circuitBreakers,
  deleteEntry,
  writeEntry,
  type ConfigEntry,
} from '../support/consul-entries.js';
import { startEnvoy, type EnvoyHandle } from '../support/envoy.js';
import { httpGet } from '../support/http-app.js';
import { rejectedUpdates, type Sidecar } from '../support/mesh.js';
import {
  among,
  assignmentSummary,
  clusterLines,
  consulHealth,
  edsHealth,
  envoyHosts,
  expectCleanReturn,
  expectFailover,
  loadAcross,
  ms,
  pct,
  type LoadRun,
} from '../support/multi-dc.js';
import { freePorts } from '../support/ports.js';
import { runCommand } from '../support/run-command.js';
import {
  envoyCluster,
  envoyRoutes,
  startTrafficApp,
  type TrafficApp,
} from '../support/traffic-app.js';
import { waitFor } from '../support/wait.js';

type Dc = 'dc1' | 'dc2';

/** --remote-stale-after of both control planes. */
const STALE_AFTER_MS = 3_000;

/** An api instance: its app, its sidecar's ports and Envoy. The id is also the app's name. */
interface Api {
  readonly id: string;
  readonly dc: Dc;
  readonly app: TrafficApp;
  readonly sidecarPort: number;
  readonly adminPort: number;
  readonly outboundPort: number;
  envoy?: EnvoyHandle;
}

interface Datacenter {
  readonly name: Dc;
  readonly consul: ConsulAgent;
  readonly cp: RunningControlPlane;
  readonly source: ConsulSource;
}

/** Everything started, stopped by `stopAll` whether the tests passed or not. */
class Resources {
  readonly envoys: EnvoyHandle[] = [];
  readonly cps: RunningControlPlane[] = [];
  readonly apps: TrafficApp[] = [];
  readonly agents: ConsulAgent[] = [];

  async stopAll(): Promise<void> {
    await Promise.allSettled(this.envoys.map((e) => e.stop()));
    await Promise.allSettled(this.cps.splice(0).map((c) => c.stop()));
    await Promise.allSettled(this.agents.map((a) => a.stop()));
    await Promise.allSettled(this.apps.map((a) => a.close()));
  }
}

/** What `lucid-mesh serve --source consul --consul ADDR --datacenters OTHERS ...` parses to. */
const serveFlags = (consul: ConsulAgent, others: readonly string[]) => ({
  consul: consul.address,
  consulWait: '30s',
  consulBackoffMax: '1s',
  remoteStaleAfter: `${STALE_AFTER_MS / 1000}s`,
  intentionsDefault: 'allow' as const,
  connectTimeoutMs: 5000,
  // commander's default for --datacenter; not given (meshSettingsFromFlags(…, false)), so the
  // control plane takes its Consul agent's datacenter.
  datacenter: 'dc1',
  datacenters: [...others],
});

async function startDcControlPlane(
  res: Resources,
  consul: ConsulAgent,
  others: readonly string[],
): Promise<{ cp: RunningControlPlane; source: ConsulSource }> {
  const flags = serveFlags(consul, others);
  const { source, traffic } = sourcesFromFlags('consul', flags, silentLogger);
  if (!(source instanceof ConsulSource)) throw new Error('sourcesFromFlags: not a ConsulSource');
  try {
    // Default debounce (100 ms), as `lucid-mesh serve` runs.
    const cp = await startControlPlane({
      source,
      traffic,
      mesh: meshSettingsFromFlags(flags, false),
      logger: silentLogger,
      host: '127.0.0.1',
      xdsPort: 0,
      adminPort: 0,
    });
    res.cps.push(cp);
    return { cp, source };
  } catch (err) {
    await source.stop().catch(() => undefined);
    await traffic?.stop().catch(() => undefined);
    throw err;
  }
}

/** `lucid-mesh bootstrap --consul-service-id ID --consul AGENT --xds CP --mode delta`, then Envoy. */
async function startConsulSidecar(
  res: Resources,
  consul: ConsulAgent,
  cp: RunningControlPlane,
  serviceId: string,
  adminPort: number,
): Promise<EnvoyHandle> {
  const boot = await runCommand(bootstrapCommand, [
    '--consul-service-id',
    serviceId,
    '--consul',
    consul.address,
    '--xds',
    `127.0.0.1:${cp.xdsPort}`,
    '--mode',
    'delta',
  ]);
  if (boot.code !== 0) throw new Error(`bootstrap ${serviceId}: exit ${boot.code}: ${boot.stderr}`);
  const envoy = await startEnvoy({
    name: `${serviceId}-sidecar-proxy`,
    adminPort,
    bootstrapYaml: boot.stdout,
  });
  res.envoys.push(envoy);
  return envoy;
}

const retryRouter: ConfigEntry = {
  Kind: 'service-router',
  Name: 'api',
  Routes: [{ Destination: { RetryOnConnectFailure: true, NumRetries: 3 } }],
};
const redirectToDc2: ConfigEntry = {
  Kind: 'service-resolver',
  Name: 'api',
  Redirect: { Datacenter: 'dc2' },
};

describe('Consul datacenters dc1 + dc2, a control plane each, real Envoy: failover of api', () => {
  const res = new Resources();
  const dcs = {} as Record<Dc, Datacenter>;
  let dc1: Api[] = [];
  let dc2: Api[] = [];
  let web: Sidecar;

  const ids = (apis: readonly Api[]) => apis.map((a) => a.id);
  const agents = {} as Record<Dc, ConsulAgent>;
  const agent = (dc: Dc): ConsulAgent => agents[dc];

  /**
   * Free ports never handed out before in this file: a port is chosen well before its Envoy
   * binds it (it goes into the Consul registration first), and Envoy's listeners bind with
   * SO_REUSEPORT, so two sidecars given the same port would both listen on it.
   */
  const handedOut = new Set<number>();
  let portQueue: Promise<unknown> = Promise.resolve();
  const takePorts = (n: number): Promise<number[]> => {
    const next = portQueue.then(async () => {
      const out: number[] = [];
      while (out.length < n) {
        for (const p of await freePorts(n - out.length)) {
          if (!handedOut.has(p)) {
            handedOut.add(p);
            out.push(p);
          }
        }
      }
      return out;
    });
    portQueue = next.catch(() => undefined);
    return next;
  };

  /** A new app and free ports for an api instance (its sidecar not started yet). */
  const newApi = async (dc: Dc, id: string): Promise<Api> => {
    const app = await startTrafficApp(id);
    res.apps.push(app);
    const [sidecarPort, adminPort, outboundPort] = (await takePorts(3)) as [number, number, number];
    return { id, dc, app, sidecarPort, adminPort, outboundPort };
  };

  /**
   * The instance's Consul registration with its Connect sidecar registration. Both carry TTL
   * checks (ids `<id>-ttl`, `<id>-sidecar-ttl`): Consul's default sidecar TCP check runs every
   * 10 s, too slow and too random for these measurements.
   */
  const register = (a: Api, sidecarStatus: 'passing' | 'critical' = 'passing') =>
    agent(a.dc).register({
      Name: 'api',
      ID: a.id,
      Address: '127.0.0.1',
      Port: a.app.port,
      Check: { CheckID: `${a.id}-ttl`, TTL: '10m', Status: 'passing' },
      Connect: {
        SidecarService: {
          Port: a.sidecarPort,
          Checks: [
            { CheckID: `${a.id}-sidecar-ttl`, Name: 'sidecar', TTL: '10m', Status: sidecarStatus },
          ],
          Proxy: {
            Config: { lucid_admin_port: a.adminPort, lucid_outbound_port: a.outboundPort },
          },
        },
      },
    });

  /** Starts the instance's sidecar and waits until its inbound listener reaches the app. */
  const startApiSidecar = async (a: Api): Promise<void> => {
    a.envoy = await startConsulSidecar(res, agent(a.dc), dcs[a.dc].cp, a.id, a.adminPort);
    await a.envoy.waitFor(
      async () => {
        const r = await httpGet(`http://127.0.0.1:${a.sidecarPort}/`, {}, 2_000);
        return r.status === 200 && (JSON.parse(r.body) as { app?: string }).app === a.id;
      },
      `${a.id}'s sidecar inbound listener on ${a.sidecarPort} reaches the app`,
      20_000,
    );
  };

  /** What dc1's control plane holds for api: `id@sidecarPort dc health`. */
  const meshApi = (cp: RunningControlPlane): string =>
    (cp.store.mesh?.services.find((s) => s.name === 'api')?.instances ?? [])
      .map((i) => `${i.id}@${i.sidecarPort} ${i.locality.datacenter} ${i.health}`)
      .join(', ');

  /** Everything that says why web's Envoy does not hold what it should. */
  const state = async (): Promise<string> =>
    [
      `web's Envoy /clusters (api):\n${await clusterLines(web.envoy, 'api')}`,
      `web's Envoy EDS: ${await assignmentSummary(web.envoy, 'api')}`,
      `dc1 control plane mesh api: ${meshApi(dcs.dc1.cp)}`,
      `dc1 Consul /v1/health/service/api: ${await consulHealth(agent('dc1'), 'api')}`,
      `dc1 Consul /v1/health/service/api-sidecar-proxy: ${await consulHealth(agent('dc1'), 'api-sidecar-proxy')}`,
      `dc2 via dc1 (?dc=dc2): ${await consulHealth(agent('dc1'), 'api', 'dc2')}`,
      `dc1 source datacenters: ${JSON.stringify(dcs.dc1.source.stats().datacenters)}`,
    ].join('\n');

  /** Waits until web's Envoy has exactly these api hosts, with these priorities and health. */
  const expectHosts = async (
    want: ReadonlyArray<{ api: Api; priority: number; healthy?: boolean }>,
    what: string,
    timeoutMs = 20_000,
  ): Promise<void> => {
    const wanted = want
      .map(
        (h) =>
          `${h.api.id}-sidecar-proxy@${h.api.sidecarPort} P${h.priority} ${h.healthy === false ? 'unhealthy' : 'healthy'}`,
      )
      .sort()
      .join(', ');
    let got = '';
    try {
      await web.envoy.waitFor(
        async () => {
          got = [...(await envoyHosts(web.envoy, 'api')).entries()]
            .map(([port, h]) => `${h.hostname}@${port} P${h.priority} ${edsHealth(h.flags)}`)
            .sort()
            .join(', ');
          return got === wanted;
        },
        what,
        timeoutMs,
      );
    } catch (err) {
      throw new Error(
        `${(err as Error).message}\nwanted: ${wanted}\nEnvoy has: ${got}\n${await state()}`,
      );
    }
  };

  const normalHosts = () => [
    ...dc1.map((api) => ({ api, priority: 0 })),
    ...dc2.map((api) => ({ api, priority: 1 })),
  ];

  /** api's route in web's Envoy retries connect failures (the service-router from Consul). */
  const hasRetries = async (): Promise<boolean> =>
    JSON.stringify((await envoyRoutes(web.envoy, 'api'))[0]?.route?.retry_policy ?? {}).includes(
      'connect-failure',
    );

  /** Every dc1 and dc2 instance passing, no resolver: dc1 at P0, dc2 at P1. */
  const baseline = async (): Promise<void> => {
    await expectHosts(normalHosts(), 'dc1 at P0, dc2 at P1 (baseline)');
    await web.envoy.waitFor(hasRetries, 'retry policy on the api route');
  };

  const summary = (r: LoadRun): string =>
    `${r.failed}/${r.total} failed (${pct(r.failed, r.total)}; ${r.failedAfter}/${r.after} after the change)`;

  beforeAll(async () => {
    const c1 = await startConsul({ datacenter: 'dc1', node: 'n1' });
    res.agents.push(c1);
    const c2 = await startConsul({ datacenter: 'dc2', node: 'n2', retryJoinWan: [c1.wanAddress] });
    res.agents.push(c2);
    // Each agent forwards ?dc= to the other: the WAN federation has formed.
    await waitFor(
      async () =>
        (await c1.api('GET', '/v1/catalog/services?dc=dc2')).status === 200 &&
        (await c2.api('GET', '/v1/catalog/services?dc=dc1')).status === 200,
      { what: 'dc1 and dc2 WAN-federated', timeoutMs: 30_000 },
    );
    // A service-router needs the service's protocol to be http (Consul refuses it otherwise).
    await writeEntry(c1, { Kind: 'proxy-defaults', Name: 'global', Config: { protocol: 'http' } });
    await writeEntry(c1, retryRouter);

    agents.dc1 = c1;
    agents.dc2 = c2;
    dc1 = await Promise.all([newApi('dc1', 'api-dc1-1'), newApi('dc1', 'api-dc1-2')]);
    dc2 = await Promise.all([newApi('dc2', 'api-dc2-1'), newApi('dc2', 'api-dc2-2')]);
    for (const a of [...dc1, ...dc2]) await register(a);
    const webApp = await startTrafficApp('web-1');
    res.apps.push(webApp);
    const [webSidecarPort, webAdminPort, webOutboundPort] = (await takePorts(3)) as [
      number,
      number,
      number,
    ];
    await c1.register({
      Name: 'web',
      ID: 'web-1',
      Address: '127.0.0.1',
      Port: webApp.port,
      Check: { CheckID: 'web-1-ttl', TTL: '10m', Status: 'passing' },
      Connect: {
        SidecarService: {
          Port: webSidecarPort,
          Checks: [{ TTL: '10m', Status: 'passing' }],
          Proxy: {
            Config: { lucid_admin_port: webAdminPort, lucid_outbound_port: webOutboundPort },
          },
        },
      },
    });

    const [cp1, cp2] = await Promise.all([
      startDcControlPlane(res, c1, ['dc2']),
      startDcControlPlane(res, c2, ['dc1']),
    ]);
    dcs.dc1 = { name: 'dc1', consul: c1, ...cp1 };
    dcs.dc2 = { name: 'dc2', consul: c2, ...cp2 };
    for (const dc of [dcs.dc1, dcs.dc2]) {
      await waitFor(() => dc.cp.store.ready && dc.cp.store.mesh?.settings.datacenter === dc.name, {
        what: `${dc.name}'s control plane ready, in ${dc.name}`,
        timeoutMs: 20_000,
        details: () => JSON.stringify(dc.source.stats()),
      });
    }
    // api's sidecars first, so that web's never sees a dc1 host that does not listen yet (its
    // outlier detection would eject it).
    await Promise.all([...dc1, ...dc2].map(startApiSidecar));
    const webEnvoy = await startConsulSidecar(res, c1, dcs.dc1.cp, 'web-1', webAdminPort);
    web = {
      envoy: webEnvoy,
      outboundPort: webOutboundPort,
      call: (service, path = '/') =>
        httpGet(`http://127.0.0.1:${webOutboundPort}${path}`, { host: service }, 3000),
    };
    await baseline();
  }, CONSUL_SETUP_TIMEOUT_MS);

  afterAll(async () => {
    await res.stopAll();
  });

  it('normal: each control plane takes its agent’s datacenter; web in dc1 gets dc1 at P0, dc2 at P1; every request served by dc1', async () => {
    await baseline();
    expect(dcs.dc1.cp.store.mesh?.settings.datacenter).toBe('dc1');
    expect(dcs.dc2.cp.store.mesh?.settings.datacenter).toBe('dc2');
    expect(dcs.dc1.source.stats().datacenters).toMatchObject({
      dc1: { local: true, synced: true },
      dc2: { local: false, synced: true, reachable: true, dropped: false },
    });
    // web's sidecar: its locality is dc1 (bootstrap --consul-service-id: the agent's datacenter).
    const proxies = JSON.parse(
      (await httpGet(`http://127.0.0.1:${dcs.dc1.cp.adminPort}/v1/proxies`)).body,
    ) as { proxies: Array<Record<string, unknown>> };
    const webRow = proxies.proxies.find((p) => p.nodeId === 'web-1-sidecar-proxy');
    expect(webRow?.locality).toEqual({ datacenter: 'dc1' });
    // Outlier detection on by default for api (two datacenters), host changes applied at once.
    const cluster = await envoyCluster(web.envoy, 'api');
    expect(cluster?.outlier_detection).toEqual({
      consecutive_5xx: 5,
      interval: '10s',
      base_ejection_time: '30s',
      max_ejection_percent: 100,
    });
    expect(cluster?.common_lb_config?.update_merge_window).toBe('0s');
    console.log(
      `[consul multi-dc] settings: dc1 control plane ${JSON.stringify(dcs.dc1.cp.store.mesh?.settings)}; ` +
        `dc2 control plane ${JSON.stringify(dcs.dc2.cp.store.mesh?.settings)}; web's proxy locality ${JSON.stringify(webRow?.locality)}`,
    );

    // A bounded 50 rps loop (3 s); the "change" is nothing: dc1 from start to end.
    const run = await loadAcross(web, 'api', {
      from: among(ids(dc1)),
      to: among(ids(dc1)),
      change: () => undefined,
      minAfterMs: 2_000,
      maxAfterMs: 2_000,
    });
    console.log(
      `[consul multi-dc] normal: ${run.total} requests at 50 rps, ${summary(run)}, served by ${JSON.stringify(run.apps)}`,
    );
    expect(run.failed, run.failures.join('\n')).toBe(0);
    expect(Object.keys(run.apps).sort()).toEqual(ids(dc1).sort());
    expect(dc1.map((a) => run.apps[a.id] ?? 0).reduce((x, y) => x + y, 0)).toBe(run.total);
  });

  it('every dc1 api check critical in Consul → dc2 with ≤ 1 % failed; checks passing again → back in dc1 within 10 s', async () => {
    await baseline();
    // The whole ~10 s at 50 rps: the failure share is over the loop, not a short one.
    const away = await loadAcross(web, 'api', {
      from: among(ids(dc1)),
      to: among(ids(dc2)),
      change: () => Promise.all(dc1.map((a) => agent('dc1').setCheck(`${a.id}-ttl`, 'fail'))),
      minAfterMs: 9_000,
      maxAfterMs: 9_000,
    });
    const critical = await consulHealth(agent('dc1'), 'api');
    await expectHosts(
      [
        ...dc1.map((api) => ({ api, priority: 0, healthy: false })),
        ...dc2.map((api) => ({ api, priority: 1 })),
      ],
      'dc1 sent as UNHEALTHY',
    );
    const back = await loadAcross(web, 'api', {
      from: among(ids(dc2)),
      to: among(ids(dc1)),
      change: () => Promise.all(dc1.map((a) => agent('dc1').setCheck(`${a.id}-ttl`, 'pass'))),
    });
    console.log(
      `[consul multi-dc] dc1 checks critical: all dc2 after ${ms(away.switchMs)}, ${summary(away)}, ` +
        `${away.toBeforeSwitch} dc2 answers before the last dc1 one, served ${JSON.stringify(away.apps)}; ` +
        `checks passing → all dc1 after ${ms(back.switchMs)}, ${summary(back)}` +
        (away.failures.length ? `\n  ${away.failures.join('\n  ')}` : ''),
    );
    expect(critical).toMatch(/api-dc1-1-ttl critical/);
    expectFailover(away);
    expectCleanReturn(back);
  });

  it('dc1 api processes (apps and sidecars) killed, Consul still passing → outlier detection moves traffic to dc2; restarted → back within 10 s', async () => {
    await baseline();
    const stat = async (name: string) => (await web.envoy.stat(`cluster.api.${name}`)) ?? 0;
    const ejectedBefore = await stat('outlier_detection.ejections_enforced_total');
    const RETRY_STATS = [
      'upstream_rq_retry',
      'upstream_rq_retry_success',
      'upstream_rq_retry_overflow',
      'upstream_rq_retry_limit_exceeded',
      'upstream_cx_connect_fail',
    ];
    const retryStats = async () =>
      Object.fromEntries(await Promise.all(RETRY_STATS.map(async (n) => [n, await stat(n)])));
    const retriesBefore = await retryStats();
    const dead = dc1;
    let run!: LoadRun;
    let after = '';
    let ejected = 0;
    let retries: Record<string, number> = {};
    let maxRetries: number | undefined;
    let flags: string[] = [];
    let catalogAfter = '';
    let meshAfter = '';
    // When web's Envoy had ejected both dead hosts (polled every ~25 ms from the kill on).
    let killedAt: number | undefined;
    let allEjectedAt: number | undefined;
    let watching = true;
    const watcher = (async () => {
      while (watching && allEjectedAt === undefined) {
        if (killedAt !== undefined) {
          const hosts = await envoyHosts(web.envoy, 'api').catch(() => undefined);
          if (
            hosts &&
            dead.every((a) => hosts.get(a.sidecarPort)?.flags.includes('failed_outlier_check'))
          )
            allEjectedAt = performance.now();
        }
        await sleep(25);
      }
    })();
    try {
      run = await loadAcross(web, 'api', {
        from: among(ids(dead)),
        to: among(ids(dc2)),
        // SIGKILL: no goodbye to anyone; the apps' sockets are destroyed.
        change: () => {
          killedAt = performance.now();
          return Promise.all(
            dead.map(async (a) => {
              if (a.envoy?.running()) process.kill(a.envoy.pid, 'SIGKILL');
              await Promise.all([a.envoy?.stop(), a.app.close()]);
            }),
          );
        },
        minAfterMs: 9_000,
        maxAfterMs: 9_000,
      });
      ejected = (await stat('outlier_detection.ejections_enforced_total')) - ejectedBefore;
      const retriesAfter = await retryStats();
      maxRetries = (await circuitBreakers(web.envoy, 'api')).max_retries;
      retries = Object.fromEntries(RETRY_STATS.map((n) => [n, retriesAfter[n] - retriesBefore[n]]));
      const hosts = await envoyHosts(web.envoy, 'api');
      flags = dead.map((a) => hosts.get(a.sidecarPort)?.flags ?? '(gone)');
      catalogAfter =
        (await consulHealth(agent('dc1'), 'api')) +
        '; ' +
        (await consulHealth(agent('dc1'), 'api-sidecar-proxy'));
      meshAfter = meshApi(dcs.dc1.cp);
      after = await state();
    } finally {
      watching = false;
      await watcher;
      // Restarted: new apps and sidecars on new ports (a host of the same address would stay
      // ejected for the 30 s base ejection time), registered again under the same ids with the
      // sidecar check critical until its Envoy listens, as Consul's own TCP check would have it.
      // Consul keeps a TTL check's status when a service is registered again (the Status given
      // applies to new checks only): fail it first.
      for (const a of dead) await agent('dc1').setCheck(`${a.id}-sidecar-ttl`, 'fail');
      dc1 = await Promise.all(dead.map((a) => newApi('dc1', a.id)));
      for (const a of dc1) await register(a, 'critical');
    }
    const ejectedAfter =
      allEjectedAt !== undefined && killedAt !== undefined ? allEjectedAt - killedAt : undefined;
    console.log(
      `[consul multi-dc] dc1 processes killed (Consul passing): all dc2 after ${ms(run.switchMs)}, ` +
        `both dc1 hosts ejected by outlier detection after ${ms(ejectedAfter)}, ${summary(run)}, ` +
        `${ejected} ejections, dc1 hosts ${flags.join(' ')}, cluster api stats ${JSON.stringify(retries)} (max_retries ${maxRetries}); ` +
        `served ${JSON.stringify(run.apps)}` +
        (run.failures.length ? `\n  ${run.failures.join('\n  ')}` : ''),
    );
    // Nothing changed in the catalog: Consul and the control plane still have dc1 passing.
    expect(catalogAfter).not.toContain('critical');
    for (const a of dead) {
      expect(catalogAfter).toContain(`${a.id}-ttl passing`);
      expect(catalogAfter).toContain(`${a.id}-sidecar-ttl passing`);
    }
    for (const a of dead)
      expect(meshAfter).toContain(`${a.id}-sidecar-proxy@${a.sidecarPort} dc1 passing`);
    expect(run.beforeOff).toBe(0);
    expect(run.switchMs, `${JSON.stringify(run.apps)}\n${after}`).toBeDefined();
    expect(run.switchMs!).toBeLessThan(10_000);
    expect(ejected, after).toBeGreaterThanOrEqual(dead.length);
    expect(ejectedAfter, after).toBeDefined();
    for (const f of flags) expect(f, after).toContain('failed_outlier_check');
    // The issue sets no bound here ("report how many failed"). Measured 0-5 of ~500: the
    // request in flight when its sidecar is SIGKILLed (reset, which connect-failure retries do
    // not cover), and requests whose retries ran out while dc1 was not yet ejected: Envoy's
    // previous_priorities retry priority (update_frequency 2) sends the first retry to dc1
    // again, so a rescued request takes two retries, and the default retry circuit breaker
    // (max_retries 3) overflows when a few fail at once (cluster stats above). What must hold:
    // once outlier detection has ejected both dc1 hosts, nothing fails.
    const late = run.failedAtMs.filter((t) => ejectedAfter === undefined || t >= ejectedAfter);
    expect(late, run.failures.join('\n')).toEqual([]);
    expect(run.failed / run.total, run.failures.join('\n')).toBeLessThanOrEqual(0.02);

    // Back: the new instances are at P0 but unhealthy (sidecar check critical) until their
    // Envoys listen; then their checks pass, and that is the moment measured.
    await expectHosts(
      [
        ...dc1.map((api) => ({ api, priority: 0, healthy: false })),
        ...dc2.map((api) => ({ api, priority: 1 })),
      ],
      'restarted dc1 instances at P0, not yet passing',
    );
    await Promise.all(dc1.map(startApiSidecar));
    const back = await loadAcross(web, 'api', {
      from: among(ids(dc2)),
      to: among(ids(dc1)),
      change: () =>
        Promise.all(dc1.map((a) => agent('dc1').setCheck(`${a.id}-sidecar-ttl`, 'pass'))),
    });
    console.log(
      `[consul multi-dc] dc1 restarted (new ports), sidecar checks passing → all dc1 after ${ms(back.switchMs)}, ${summary(back)}`,
    );
    expectCleanReturn(back);
    await baseline();
  });

  it('service-resolver Redirect{Datacenter: dc2} written to dc1’s Consul sends everything to dc2 at once; deleting it reverts', async () => {
    await baseline();
    const there = await loadAcross(web, 'api', {
      from: among(ids(dc1)),
      to: among(ids(dc2)),
      change: () => writeEntry(agent('dc1'), redirectToDc2),
    });
    let reverted: LoadRun;
    try {
      await expectHosts(
        dc2.map((api) => ({ api, priority: 0 })),
        'only dc2 instances while redirected',
      );
    } finally {
      reverted = await loadAcross(web, 'api', {
        from: among(ids(dc2)),
        to: among(ids(dc1)),
        change: () => deleteEntry(agent('dc1'), 'service-resolver', 'api'),
      });
    }
    console.log(
      `[consul multi-dc] Redirect dc2: all dc2 after ${ms(there.switchMs)} (${there.toBeforeSwitch} dc2 answers before the last dc1 one), ${summary(there)}; ` +
        `deleted → all dc1 after ${ms(reverted.switchMs)} (${reverted.toBeforeSwitch} dc1 answers before the last dc2 one), ${summary(reverted)}`,
    );
    expect(there.beforeOff).toBe(0);
    expect(there.switchMs, JSON.stringify(there.apps)).toBeDefined();
    // At once: no dc1 answer after the first dc2 one.
    expect(there.toBeforeSwitch).toBe(0);
    expect(there.failed, there.failures.join('\n')).toBe(0);
    expect(reverted.switchMs, JSON.stringify(reverted.apps)).toBeDefined();
    expect(reverted.toBeforeSwitch).toBe(0);
    expect(reverted.failed, reverted.failures.join('\n')).toBe(0);
    await baseline();
  });

  it('dc2’s agent stopped: dc1’s control plane keeps dc2 until --remote-stale-after (3 s), then drops it, dc1 traffic unaffected; a control plane started meanwhile is ready for dc1', async () => {
    await baseline();
    const dc2Ports = dc2.map((a) => a.sidecarPort);
    let stoppedAt: number | undefined;
    let lastSeenAt: number | undefined;
    let goneAt: number | undefined;
    let sourceDroppedAt: number | undefined;
    let unreachableAt: number | undefined;
    let presentPolls = 0;
    let keptHealthy = 0;
    let watching = true;
    // Polls web's Envoy (and dc1's source) every ~25 ms from the stop on.
    const watcher = (async () => {
      while (watching) {
        if (stoppedAt !== undefined) {
          const now = performance.now();
          const hosts = await envoyHosts(web.envoy, 'api').catch(() => undefined);
          if (hosts) {
            const present = dc2Ports.filter((p) => hosts.has(p));
            if (present.length > 0) {
              presentPolls++;
              lastSeenAt = now;
              if (present.every((p) => hosts.get(p)!.flags === 'healthy')) keptHealthy++;
            } else goneAt ??= now;
          }
          const stats = dcs.dc1.source.stats().datacenters.dc2;
          if (stats?.reachable === false) unreachableAt ??= now;
          if (stats?.dropped) sourceDroppedAt ??= now;
        }
        await sleep(25);
      }
    })();
    let run: LoadRun;
    try {
      run = await loadAcross(web, 'api', {
        from: among(ids(dc1)),
        to: among(ids(dc1)),
        change: async () => {
          stoppedAt = performance.now();
          await agent('dc2').stop();
        },
        minAfterMs: STALE_AFTER_MS + 4_000,
        maxAfterMs: STALE_AFTER_MS + 4_000,
      });
    } finally {
      watching = false;
      await watcher;
    }
    const since = (t: number | undefined) =>
      t === undefined || stoppedAt === undefined ? undefined : t - stoppedAt;
    const detail = await state();
    console.log(
      `[consul multi-dc] dc2 agent stopped: dc1 source saw dc2 unreachable after ${ms(since(unreachableAt))}, dropped it after ${ms(since(sourceDroppedAt))}; ` +
        `web's Envoy had dc2's hosts until ${ms(since(lastSeenAt))} (both healthy in ${keptHealthy} of the ${presentPolls} polls that saw them), none from ${ms(since(goneAt))}; ` +
        `dc1 traffic meanwhile: ${run.total} requests at 50 rps, ${summary(run)}, served ${JSON.stringify(run.apps)}`,
    );
    expect(run.failed, run.failures.join('\n')).toBe(0);
    expect(Object.keys(run.apps).sort()).toEqual(ids(dc1).sort());
    // Kept until --remote-stale-after (its clock starts at the first failed read, after the stop).
    expect(since(lastSeenAt), detail).toBeGreaterThanOrEqual(STALE_AFTER_MS - 100);
    expect(since(sourceDroppedAt), detail).toBeGreaterThanOrEqual(STALE_AFTER_MS - 100);
    expect(since(goneAt), detail).toBeDefined();
    expect(since(goneAt)!).toBeLessThan(STALE_AFTER_MS + 4_000);
    await expectHosts(
      dc1.map((api) => ({ api, priority: 0 })),
      'dc1 only',
    );
    expect(dcs.dc1.source.stats().datacenters.dc2).toMatchObject({
      reachable: false,
      dropped: true,
    });

    // A control plane started while dc2 is down: ready for dc1 at once.
    const t0 = performance.now();
    const late = await startDcControlPlane(res, agent('dc1'), ['dc2']);
    try {
      const readyAfter = await waitFor(
        () => (late.cp.store.ready ? performance.now() - t0 : undefined),
        { what: 'the late control plane ready', timeoutMs: 20_000, intervalMs: 10 },
      );
      const ready = await httpGet(`http://127.0.0.1:${late.cp.adminPort}/ready`);
      console.log(
        `[consul multi-dc] control plane started with dc2 down: ready after ${ms(readyAfter)}; api ${meshApi(late.cp)}`,
      );
      expect(ready.status, ready.body).toBe(200);
      expect(readyAfter).toBeLessThan(2_000);
      expect(late.cp.store.mesh?.settings.datacenter).toBe('dc1');
      expect(meshApi(late.cp)).toBe(
        dc1.map((a) => `${a.id}-sidecar-proxy@${a.sidecarPort} dc1 passing`).join(', '),
      );
      expect(late.source.stats().datacenters.dc2).toMatchObject({
        synced: false,
        reachable: false,
      });
    } finally {
      const i = res.cps.indexOf(late.cp);
      if (i >= 0) res.cps.splice(i, 1);
      await late.cp.stop();
    }
  });

  it('no sidecar ever rejected an update', async () => {
    // The killed ones cannot say; every Envoy still running can.
    const running = res.envoys.filter((e) => e.running());
    expect(running.length).toBeGreaterThanOrEqual(5);
    for (const envoy of running) expect(await rejectedUpdates(envoy), envoy.name).toBe(0);
    expect(dcs.dc1.cp.counters.nacks).toBe(0);
    expect(dcs.dc2.cp.counters.nacks).toBe(0);
  });
});
