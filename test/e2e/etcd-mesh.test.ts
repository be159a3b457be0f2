// The etcd backend end to end: real etcd, the control plane on an EtcdSource, real Envoy
// sidecars (A in SotW mode, B in delta mode), instances registered with the `lucid-mesh
// register` command run as processes. Leases, an etcd restart, compaction while the control
// plane's watcher is cut off (a TCP proxy between it and etcd), and the put → Envoy latency.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/app.js';
import type { EtcdSource } from '../../src/sources/etcd/etcd-source.js';
import { spawnCli, type CliProcess } from '../support/cli-process.js';
import { startEtcd, startTcpProxy, type EtcdHandle, type TcpProxy } from '../support/etcd.js';
import { startHttpApp, type HttpApp } from '../support/http-app.js';
import {
  clusterHosts,
  hasCluster,
  rejectedUpdates,
  startSidecar,
  type Sidecar,
  waitReaches,
} from '../support/mesh.js';
import { freePort } from '../support/ports.js';
import {
  etcdTestSource,
  QUICK_DEBOUNCE,
  startSourceControlPlane,
} from '../support/source-control-plane.js';
import { waitFor } from '../support/wait.js';

const PREFIX = '/e2e-mesh/';

const processes: CliProcess[] = [];

/** `lucid-mesh <args>` as a process, stopped after the file at the latest. */
function cli(args: string[]): CliProcess {
  const p = spawnCli(args);
  processes.push(p);
  return p;
}

/** `--service S --id ID --address 127.0.0.1 --port <app's port>`: an instance of `register`. */
const instance = (service: string, id: string, app: HttpApp): string[] => [
  ...['--service', service, '--id', id],
  ...['--address', '127.0.0.1', '--port', String(app.port)],
];

/** Runs a command that should finish, and expects exit code 0. */
async function cliOk(args: string[]): Promise<string> {
  const p = cli(args);
  const code = await p.exited;
  expect(code, p.output()).toBe(0);
  return p.output();
}

/** Starts a `register --ttl` heartbeat and waits until it has registered. */
async function heartbeat(args: string[]): Promise<CliProcess> {
  const p = cli(['register', ...args]);
  await waitFor(() => p.output().includes('keeping it alive until stopped'), {
    what: `register ${args.join(' ')}`,
    timeoutMs: 20_000,
    details: p.output,
    failIf: () => (p.child.exitCode !== null ? `exited with ${p.child.exitCode}` : undefined),
  });
  return p;
}

describe('etcd + real Envoy mesh', () => {
  let etcd: EtcdHandle;
  let proxy: TcpProxy;
  let cp: RunningControlPlane;
  let source: EtcdSource;
  let hello: HttpApp, world: HttpApp, world2: HttpApp;
  let a: Sidecar, b: Sidecar;
  let helloSidecarPort: number, worldSidecarPort: number;
  let world1Heartbeat: CliProcess;
  let etcdFlags: string[];

  const hostOf = (app: HttpApp) => `127.0.0.1:${app.port}`;
  const sourceErrors = async () => {
    const text = await cp.metrics.registry.getSingleMetricAsString(
      'lucid_mesh_source_errors_total',
    );
    return Number(/\{source="etcd"\} (\d+)/.exec(text)?.[1] ?? 0);
  };

  beforeAll(async () => {
    [etcd, hello, world, world2] = await Promise.all([
      startEtcd('e2e'),
      startHttpApp('hello'),
      startHttpApp('world'),
      startHttpApp('world-2'),
    ]);
    proxy = await startTcpProxy(etcd.clientPort);
    [helloSidecarPort, worldSidecarPort] = [await freePort(), await freePort()];
    const xdsPort = await freePort();
    etcdFlags = ['--etcd', etcd.endpoint, '--etcd-prefix', PREFIX];

    // hello-1: written once; world-1: kept alive on a 5 s lease by a running `register --ttl`.
    const [, hb] = await Promise.all([
      cliOk([
        'register',
        ...instance('hello', 'hello-1', hello),
        '--sidecar-port',
        String(helloSidecarPort),
        ...etcdFlags,
      ]),
      heartbeat([
        ...instance('world', 'world-1', world),
        '--sidecar-port',
        String(worldSidecarPort),
        '--protocol',
        'http',
        '--ttl',
        '5',
        ...etcdFlags,
      ]),
    ]);
    world1Heartbeat = hb;

    // The control plane reaches etcd through the proxy, so a test can cut it off.
    source = etcdTestSource(proxy.endpoint, PREFIX);
    cp = await startSourceControlPlane(source, { xdsPort, ...QUICK_DEBOUNCE });
    expect(cp.store.ready).toBe(true);
    [a, b] = await Promise.all([
      startSidecar({ nodeId: 'hello-1', service: 'hello', xdsPort, mode: 'sotw' }),
      startSidecar({ nodeId: 'world-1', service: 'world', xdsPort, mode: 'delta' }),
    ]);
  });

  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop(0)));
    await Promise.all([a?.envoy.stop(), b?.envoy.stop()]);
    await cp?.stop();
    await Promise.all([hello?.close(), world?.close(), world2?.close(), proxy?.close()]);
    await etcd?.remove();
  });

  it('instances registered with `lucid-mesh register`: A reaches world through B, B reaches hello', async () => {
    await waitReaches(a, 'world', 'A → world', 20_000);
    expect(JSON.parse((await a.call('world', '/x')).body)).toMatchObject({
      app: 'world',
      path: '/x',
    });
    expect(await clusterHosts(a.envoy, 'world')).toEqual([`127.0.0.1:${worldSidecarPort}`]);
    await waitReaches(b, 'hello', 'B → hello', 20_000);
    expect(JSON.parse((await b.call('hello')).body)).toMatchObject({ app: 'hello' });
  });

  it('lease expiry removes an instance whose register process was killed (SIGKILL, no revoke)', async () => {
    const p = await heartbeat([
      ...instance('world', 'world-2', world2),
      '--ttl',
      '2',
      ...etcdFlags,
    ]);
    await a.envoy.waitFor(
      async () => (await clusterHosts(a.envoy, 'world')).includes(hostOf(world2)),
      'world-2 in A /clusters',
    );
    // Alive well past its TTL while the heartbeat runs.
    await new Promise((r) => setTimeout(r, 3_000));
    expect(await clusterHosts(a.envoy, 'world')).toContain(hostOf(world2));

    p.child.kill('SIGKILL');
    const killedAt = Date.now();
    await a.envoy.waitFor(
      async () => !(await clusterHosts(a.envoy, 'world')).includes(hostOf(world2)),
      'world-2 gone from A /clusters after its lease expired',
      15_000,
    );
    const took = Date.now() - killedAt;
    console.log(`[etcd e2e] lease TTL 2 s: SIGKILLed registrant gone from Envoy after ${took} ms`);
    expect(took).toBeLessThan(8_000);
    const before = world2.hits;
    for (let i = 0; i < 6; i++) expect((await a.call('world')).status).toBe(200);
    expect(world2.hits).toBe(before);
  });

  it('SIGTERM to a register process revokes its lease: the instance goes at once', async () => {
    const p = await heartbeat([
      ...instance('world', 'world-3', world2),
      '--ttl',
      '60',
      ...etcdFlags,
    ]);
    await a.envoy.waitFor(
      async () => (await clusterHosts(a.envoy, 'world')).includes(hostOf(world2)),
      'world-3 in A /clusters',
    );
    p.child.kill('SIGTERM');
    const stoppedAt = Date.now();
    expect(await p.exited).toBe(0);
    expect(p.output()).toContain('lease revoked');
    await a.envoy.waitFor(
      async () => !(await clusterHosts(a.envoy, 'world')).includes(hostOf(world2)),
      'world-3 gone from A /clusters',
      5_000,
    );
    expect(Date.now() - stoppedAt).toBeLessThan(5_000); // far below the 60 s TTL
  });

  it('a register heartbeat cut off from etcd past its TTL registers again when etcd is back', async () => {
    const hbProxy = await startTcpProxy(etcd.clientPort);
    try {
      const p = await heartbeat([
        ...instance('world', 'world-4', world2),
        '--ttl',
        '2',
        '--etcd',
        hbProxy.endpoint,
        '--etcd-prefix',
        PREFIX,
      ]);
      const present = async () => (await clusterHosts(a.envoy, 'world')).includes(hostOf(world2));
      await a.envoy.waitFor(present, 'world-4 in A /clusters');
      await hbProxy.cut();
      await a.envoy.waitFor(async () => !(await present()), 'world-4 expired', 15_000);
      await waitFor(() => p.output().includes('lease lost'), {
        what: 'the heartbeat notices the lost lease',
        details: p.output,
      });
      await hbProxy.restore();
      await a.envoy.waitFor(present, 'world-4 registered again', 15_000);
      // The command says so once its write is acknowledged, which can trail Envoy by a moment.
      await waitFor(() => p.output().includes('registered again'), {
        what: 'the heartbeat reports re-registering',
        details: p.output,
      });
      p.child.kill('SIGTERM');
      expect(await p.exited).toBe(0);
      await a.envoy.waitFor(async () => !(await present()), 'world-4 deregistered');
    } finally {
      await hbProxy.close();
    }
  });

  it('survives an etcd restart: traffic flows, the catalog is kept, later registrations propagate', async () => {
    const version = cp.store.snapshot?.version;
    const errorsBefore = await sourceErrors();
    await etcd.stop();
    await waitFor(async () => (await sourceErrors()) > errorsBefore, {
      what: 'the control plane reports etcd down',
    });
    for (let i = 0; i < 5; i++) expect((await a.call('world')).status).toBe(200);
    expect(cp.store.ready).toBe(true);
    expect(cp.store.snapshot?.version).toBe(version);

    await etcd.restart();
    await cliOk(['register', ...instance('world', 'world-2', world2), ...etcdFlags]);
    await a.envoy.waitFor(
      async () => (await clusterHosts(a.envoy, 'world')).includes(hostOf(world2)),
      'world-2 (registered after the restart) in A /clusters',
      15_000,
    );
    expect(await clusterHosts(a.envoy, 'world')).toContain(`127.0.0.1:${worldSidecarPort}`);
  });

  it('catches up after compaction while the watcher was cut off from etcd', async () => {
    const errorsBefore = await sourceErrors();
    await proxy.cut();
    await waitFor(async () => (await sourceErrors()) > errorsBefore, {
      what: 'the control plane reports the cut',
    });
    await cliOk(['deregister', '--service', 'world', '--id', 'world-2', ...etcdFlags]);
    await cliOk(['register', ...instance('extra', 'extra-1', world2), ...etcdFlags]);
    await etcd.compact();
    // Nothing changed in Envoy meanwhile.
    expect(await clusterHosts(a.envoy, 'world')).toContain(hostOf(world2));
    expect(await hasCluster(a.envoy, 'extra')).toBe(false);

    await proxy.restore();
    await a.envoy.waitFor(
      async () =>
        (await hasCluster(a.envoy, 'extra')) &&
        !(await clusterHosts(a.envoy, 'world')).includes(hostOf(world2)),
      'extra added and world-2 removed after the re-list',
      15_000,
    );
    expect(JSON.parse((await a.call('extra')).body)).toMatchObject({ app: 'world-2' });
    expect(source.status().lists).toBeGreaterThanOrEqual(3);
  });

  it('measures etcd put → endpoint in Envoy /clusters (median of 10)', async () => {
    const samples: number[] = [];
    for (let i = 0; i < 10; i++) {
      const port = 40_000 + i;
      const key = `${PREFIX}services/world/lat-${i}`;
      const started = performance.now();
      await etcd.client.put(key).value(JSON.stringify({ address: '127.0.0.1', port }));
      await waitFor(
        async () => (await clusterHosts(a.envoy, 'world')).includes(`127.0.0.1:${port}`),
        { what: `lat-${i} in A /clusters`, intervalMs: 5 },
      );
      samples.push(performance.now() - started);
      await etcd.client.delete().key(key);
      await a.envoy.waitFor(
        async () => !(await clusterHosts(a.envoy, 'world')).includes(`127.0.0.1:${port}`),
        `lat-${i} gone`,
      );
    }
    const sorted = [...samples].sort((x, y) => x - y);
    const median = (sorted[4]! + sorted[5]!) / 2;
    console.log(
      `[etcd e2e] etcd put → Envoy /clusters: median ${median.toFixed(0)} ms, ` +
        `min ${sorted[0]!.toFixed(0)} ms, max ${sorted[9]!.toFixed(0)} ms ` +
        `(debounce 20 ms, /clusters polled every 5 ms)`,
    );
    expect(median).toBeLessThan(1_000);
  });

  it('kept world-1 alive across the restart, and Envoy never rejected an update', async () => {
    expect(world1Heartbeat.child.exitCode).toBe(null);
    expect(await clusterHosts(a.envoy, 'world')).toEqual([`127.0.0.1:${worldSidecarPort}`]);
    expect((await a.call('world')).status).toBe(200);
    expect(await rejectedUpdates(a.envoy)).toBe(0);
    expect(await rejectedUpdates(b.envoy)).toBe(0);
    expect(cp.counters.nacks).toBe(0);
  });
});
