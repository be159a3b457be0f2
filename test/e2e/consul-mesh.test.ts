// The Consul source end to end: a real Consul agent (-dev), the control plane as `lucid-mesh
// serve --source consul` runs it, real Envoy sidecars (one SotW, one delta) bootstrapped with
// the node ids Consul's sidecar registrations give them, and tiny apps. Registrations use
// Consul's standard agent API, exactly as `consul services register` / an app would.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/app.js';
import { renderBootstrap } from '../../src/bootstrap/render.js';
import { bootstrapCommand } from '../../src/cli/bootstrap-command.js';
import type { ConsulSource } from '../../src/sources/consul/consul-source.js';
import { runCommand } from '../support/run-command.js';
import { CONSUL_SETUP_TIMEOUT_MS, startConsul, type ConsulAgent } from '../support/consul.js';
import { startEnvoy } from '../support/envoy.js';
import { httpGet, startHttpApp, type HttpApp } from '../support/http-app.js';
import {
  clusterHosts,
  hasCluster,
  rejectedUpdates,
  startSidecar,
  type Sidecar,
  waitReaches,
} from '../support/mesh.js';
import { freePorts } from '../support/ports.js';
import { consulTestSource, startSourceControlPlane } from '../support/source-control-plane.js';
import { waitFor } from '../support/wait.js';

/** `lucid-mesh bootstrap ARGS` in-process: exit code and output. */
const runBootstrap = (args: string[]) => runCommand(bootstrapCommand, args);

describe('Consul + real Envoy mesh', () => {
  let consul: ConsulAgent;
  let cp: RunningControlPlane;
  let source: ConsulSource;
  let web1: HttpApp, web2: HttpApp, clientApp: HttpApp;
  /** The client's sidecar (SotW); calls go through it. */
  let client: Sidecar;
  /** web-1's sidecar (delta); it receives web's mesh traffic on webSidecarPort. */
  let webSidecar: Sidecar;
  let webSidecarPort: number, clientSidecarPort: number, xdsPort: number;
  let webAdminPort: number, webOutboundPort: number;

  const ttl = (id: string, status = 'passing') => ({ CheckID: id, TTL: '10m', Status: status });
  const registerWeb1 = () =>
    consul.register({
      Name: 'web',
      ID: 'web-1',
      Address: '127.0.0.1',
      Port: web1.port,
      Check: ttl('web-1-ttl'),
      // Consul's own sidecar registration: creates "web-1-sidecar-proxy" (Kind connect-proxy)
      // with Consul's default checks (TCP "Connect Sidecar Listening" on the sidecar port).
      // Proxy.Config carries the sidecar's Envoy ports for `lucid-mesh bootstrap`.
      Connect: {
        SidecarService: {
          Port: webSidecarPort,
          Proxy: {
            Config: { lucid_admin_port: webAdminPort, lucid_outbound_port: webOutboundPort },
          },
        },
      },
    });
  const registerWeb2 = () =>
    // Not meshed: peers reach it directly.
    consul.register({
      Name: 'web',
      ID: 'web-2',
      Address: '127.0.0.1',
      Port: web2.port,
      Check: ttl('web-2-ttl'),
    });
  const registerClient = () =>
    consul.register({
      Name: 'client',
      ID: 'client-1',
      Address: '127.0.0.1',
      Port: clientApp.port,
      Connect: { SidecarService: { Port: clientSidecarPort } },
    });

  const webHosts = () => clusterHosts(client.envoy, 'web');
  const callWeb = async (): Promise<string> => {
    const res = await client.call('web');
    expect(res.status, res.body).toBe(200);
    return (JSON.parse(res.body) as { app: string }).app;
  };

  beforeAll(async () => {
    [web1, web2, clientApp] = await Promise.all([
      startHttpApp('web-1'),
      startHttpApp('web-2'),
      startHttpApp('client-1'),
    ]);
    [webSidecarPort, clientSidecarPort, xdsPort, webAdminPort, webOutboundPort] = (await freePorts(
      5,
    )) as [number, number, number, number, number];
    consul = await startConsul();
    await registerWeb1();
    await registerClient();
    source = consulTestSource(consul, 30_000);
    // Default debounce (100 ms), as `lucid-mesh serve` runs.
    cp = await startSourceControlPlane(source, { xdsPort });
    // web's sidecar is bootstrapped the Consul way: `lucid-mesh bootstrap --consul-service-id`
    // reads node id, service and ports from the sidecar registration.
    const webBootstrap = await runBootstrap([
      '--consul-service-id',
      'web-1',
      '--consul',
      consul.address,
      '--xds',
      `127.0.0.1:${xdsPort}`,
      '--mode',
      'delta',
    ]);
    expect(webBootstrap.code, webBootstrap.stderr).toBe(0);
    expect(webBootstrap.stdout).toBe(
      renderBootstrap({
        nodeId: 'web-1-sidecar-proxy',
        service: 'web',
        xds: `127.0.0.1:${xdsPort}`,
        mode: 'delta',
        adminPort: webAdminPort,
        outboundPort: webOutboundPort,
        datacenter: 'dc1',
      }),
    );
    const [clientSidecar, webEnvoy] = await Promise.all([
      startSidecar({ nodeId: 'client-1-sidecar-proxy', service: 'client', xdsPort, mode: 'sotw' }),
      startEnvoy({
        name: 'web-1-sidecar-proxy',
        adminPort: webAdminPort,
        bootstrapYaml: webBootstrap.stdout,
      }),
    ]);
    client = clientSidecar;
    webSidecar = {
      envoy: webEnvoy,
      outboundPort: webOutboundPort,
      call: (service, path = '/') =>
        httpGet(`http://127.0.0.1:${webOutboundPort}${path}`, { host: service }, 3000),
    };
  }, CONSUL_SETUP_TIMEOUT_MS);

  afterAll(async () => {
    await Promise.all([client?.envoy.stop(), webSidecar?.envoy.stop()]);
    await cp?.stop();
    await consul?.stop();
    await Promise.all([web1?.close(), web2?.close(), clientApp?.close()]);
  });

  it('a request through the client sidecar reaches web through its sidecar', async () => {
    // web-1 is critical until Consul's TCP check sees web's Envoy listening on the sidecar
    // port (Consul runs it every 10 s, first at a random point in that interval).
    await waitReaches(client, 'web', 'client → web', 30_000);
    const res = await client.call('web', '/hello');
    expect(JSON.parse(res.body)).toMatchObject({ app: 'web-1', path: '/hello' });
    // The endpoint is web-1's sidecar, not the app: traffic went through both sidecars.
    expect(await webHosts()).toEqual([`127.0.0.1:${webSidecarPort}`]);
    expect(await webSidecar.envoy.stat('control_plane.connected_state')).toBe(1);
    // The sidecar registrations are not services of their own.
    expect(await hasCluster(client.envoy, 'web-sidecar-proxy')).toBe(false);
  });

  it("failing web's check stops traffic to it within a second", async () => {
    await registerWeb2();
    await client.envoy.waitFor(
      async () => (await webHosts()).includes(`127.0.0.1:${web2.port}`),
      'web-2 in the client /clusters',
    );
    const t0 = Date.now();
    await consul.setCheck('web-1-ttl', 'fail');
    await waitFor(async () => !(await webHosts()).includes(`127.0.0.1:${webSidecarPort}`), {
      what: 'web-1 gone from the client /clusters',
      timeoutMs: 5_000,
      intervalMs: 10,
    });
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeLessThan(1000);
    const before = web1.hits;
    const answered = [];
    for (let i = 0; i < 10; i++) answered.push(await callWeb());
    expect(new Set(answered)).toEqual(new Set(['web-2']));
    expect(web1.hits).toBe(before);

    await consul.setCheck('web-1-ttl', 'pass');
    await client.envoy.waitFor(
      async () => (await webHosts()).includes(`127.0.0.1:${webSidecarPort}`),
      'web-1 back in the client /clusters',
    );
  });

  it('a deregistered service loses its cluster', async () => {
    await consul.register({ Name: 'extra', ID: 'extra-1', Address: '127.0.0.1', Port: web2.port });
    await client.envoy.waitFor(
      async () => (await clusterHosts(client.envoy, 'extra')).length > 0,
      'cluster extra with its endpoint',
    );
    expect((await client.call('extra')).status).toBe(200);
    await consul.deregister('extra-1');
    await client.envoy.waitFor(
      async () => !(await hasCluster(client.envoy, 'extra')),
      'cluster extra removed',
    );
    expect((await client.call('extra')).status).toBe(404);
  });

  it('Consul down for 10 s: zero failed requests; changes after it returns still propagate', async () => {
    await sleep(500); // let earlier changes settle
    const version = cp.store.snapshot?.version;
    let ok = 0;
    const failures: string[] = [];
    let running = true;
    const loop = (async () => {
      while (running) {
        try {
          const res = await client.call('web');
          if (res.status === 200) ok++;
          else failures.push(`HTTP ${res.status}: ${res.body.slice(0, 100)}`);
        } catch (err) {
          failures.push((err as Error).message);
        }
        await sleep(50);
      }
    })();
    await consul.stop();
    await sleep(10_000);
    running = false;
    await loop;
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(50);
    // The control plane kept the last good catalog and stayed ready.
    expect(cp.store.ready).toBe(true);
    expect(cp.store.snapshot?.version).toBe(version);
    expect(source.stats().failingWatches).toBeGreaterThan(0);

    // A restarted -dev agent has an empty catalog: the apps register again (as agents do).
    await consul.start();
    await Promise.all([registerWeb1(), registerWeb2(), registerClient()]);
    await consul.register({ Name: 'after', ID: 'after-1', Address: '127.0.0.1', Port: web2.port });
    await client.envoy.waitFor(
      async () => hasCluster(client.envoy, 'after'),
      'a service registered after the restart',
      15_000,
    );
    expect((await client.call('after')).status).toBe(200);
    await client.envoy.waitFor(
      async () => (await webHosts()).includes(`127.0.0.1:${web2.port}`),
      'web-2 back',
    );
    await consul.setCheck('web-2-ttl', 'fail');
    await client.envoy.waitFor(
      async () => !(await webHosts()).includes(`127.0.0.1:${web2.port}`),
      'a check failure after the restart',
      5_000,
    );
    await consul.setCheck('web-2-ttl', 'pass');
    // Every watch recovers by itself; each on its own backoff (at most 1 s here), so not
    // necessarily all by the time the changes above have propagated.
    await waitFor(() => source.stats().failingWatches === 0, {
      what: 'every Consul watch recovered',
      timeoutMs: 10_000,
      details: () => JSON.stringify(source.stats()),
    });
  });

  it('measures registration → endpoint in Envoy (/clusters), 20 tries each', async () => {
    const measure = async (meshed: boolean): Promise<number[]> => {
      const times: number[] = [];
      for (let i = 0; i < 20; i++) {
        const name = `lat-${meshed ? 'm' : 'p'}-${i}`;
        const sidecarPort = 30000 + i;
        const t0 = performance.now();
        await consul.register({
          Name: name,
          ID: `${name}-1`,
          Address: '127.0.0.1',
          Port: web2.port,
          ...(meshed
            ? {
                Connect: {
                  // A TTL check that starts passing instead of Consul's default TCP check,
                  // which would wait for an Envoy to listen there.
                  SidecarService: {
                    Port: sidecarPort,
                    Checks: [{ TTL: '10m', Status: 'passing' }],
                  },
                },
              }
            : {}),
        });
        const want = `127.0.0.1:${meshed ? sidecarPort : web2.port}`;
        await waitFor(async () => (await clusterHosts(client.envoy, name)).includes(want), {
          what: `${name} in the client /clusters`,
          timeoutMs: 10_000,
          intervalMs: 5,
        });
        times.push(performance.now() - t0);
        await consul.deregister(`${name}-1`);
        await waitFor(async () => !(await hasCluster(client.envoy, name)), {
          what: `${name} removed`,
          intervalMs: 20,
        });
      }
      return times;
    };
    const stats = (times: number[]) => {
      const sorted = [...times].sort((a, b) => a - b);
      const at = (q: number) =>
        sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
      return {
        median: Math.round((sorted[9]! + sorted[10]!) / 2),
        p90: Math.round(at(0.9)),
        min: Math.round(sorted[0]!),
        max: Math.round(sorted[sorted.length - 1]!),
      };
    };
    const meshed = stats(await measure(true));
    const plain = stats(await measure(false));
    console.log(
      `[consul latency] registration → Envoy /clusters endpoint, 20 tries, debounce 100 ms: ` +
        `with sidecar median ${meshed.median} ms, p90 ${meshed.p90} ms (min ${meshed.min}, max ${meshed.max}); ` +
        `plain (incl. 250 ms sidecar grace) median ${plain.median} ms, p90 ${plain.p90} ms (min ${plain.min}, max ${plain.max})`,
    );
    expect(meshed.median).toBeLessThan(1000);
    expect(plain.median).toBeLessThan(1500);
  });

  it('never had an update rejected', async () => {
    expect(await rejectedUpdates(client.envoy)).toBe(0);
    expect(await rejectedUpdates(webSidecar.envoy)).toBe(0);
    expect(cp.counters.nacks).toBe(0);
  });
});
