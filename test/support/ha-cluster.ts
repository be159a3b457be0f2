// The HA test bed shared by test/e2e/ha-replicas*.test.ts: three `lucid-mesh serve` replicas on
// one real Consul (their catalog) with the CA state in Consul KV or etcd (--state), each on an
// empty local --data-dir at every start (all it needs comes from the store), three real Envoy
// sidecars bootstrapped with all three addresses, mTLS and proxy tokens on. The first replica
// starts alone, so every sidecar connects to it; the other two join afterwards. Also the kill -9
// test both state stores run (itKillsTheReplicaInUse).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { renderBootstrap, type XdsMode } from '../../src/bootstrap/render.js';
import { openCa } from '../../src/ca/index.js';
import { stateStoreFromFlags } from '../../src/cli/state-flags.js';
import { repoRoot } from './cli-process.js';
import { CONSUL_SETUP_TIMEOUT_MS, startConsul, type ConsulAgent } from './consul.js';
import { startEnvoy } from './envoy.js';
import { startEtcd, type EtcdHandle } from './etcd.js';
import { httpGet } from './http-app.js';
import { startLoadLoop, type LoadLoop } from './load-loop.js';
import { hasCluster, type Sidecar } from './mesh.js';
import { freePort, freePorts } from './ports.js';
import { killWithTestProcess } from './reaper.js';
import { cliEntry } from './tools.js';
import { callThrough, startTrafficApp, type TrafficApp } from './traffic-app.js';
import { waitFor } from './wait.js';

export const DRAIN_SECONDS = 5;
/** TTL checks that pass from the start (no wait for a TCP check to see Envoy listen). */
export const TTL = { TTL: '10m', Status: 'passing' };

export interface Replica {
  readonly name: string;
  readonly xdsPort: number;
  readonly adminPort: number;
  child?: ChildProcess;
  exited?: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output: string;
}

/** Envoy admin /certs: the trust bundle (ca_cert) and leaf (cert_chain) of each TLS context. */
interface EnvoyCerts {
  certificates: Array<{
    ca_cert?: Array<{ serial_number: string }>;
    cert_chain?: Array<{ serial_number: string }>;
  }>;
}

/** Serials as Envoy prints them (hex, maybe zero-padded) and as `ca rotate` prints them. */
export const serialKey = (s: string) => s.toLowerCase().replace(/^0+/, '');

interface ProxyRow {
  nodeId: string;
  types: Record<string, { status: string }>;
}

export type HaSidecar = Sidecar & { nodeId: string };

export interface HaCluster {
  readonly state: 'consul' | 'etcd';
  /** Set once beforeAll ran. */
  readonly consul: ConsulAgent;
  /** With state etcd, once beforeAll ran. */
  readonly etcd: EtcdHandle | undefined;
  readonly keyFile: string;
  readonly replicas: Replica[];
  readonly apps: TrafficApp[];
  readonly sidecars: HaSidecar[];
  startReplica(r: Replica): void;
  alive(r: Replica): boolean;
  waitReady(r: Replica): Promise<void>;
  /** Node id → the replica whose /v1/proxies lists it with every type SYNCED. */
  placement(): Promise<Map<string, string>>;
  /** placement() once every sidecar is placed, else undefined. */
  allPlaced(): Promise<Map<string, string> | undefined>;
  /** Per Envoy: clusters and listeners modified by xDS (a resend of the same config is not). */
  churn(): Promise<Record<string, number>>;
  /** The root serials a sidecar trusts and the serials of its leaves. */
  certsOf(s: Sidecar): Promise<{ roots: Set<string>; leaves: Set<string> }>;
  /** Registers `name` in Consul on the app at `apps[app]` and waits until every Envoy has it. */
  registerEverywhere(name: string, app: number): Promise<void>;
  /**
   * What to print when the request loop saw failures: `events` (ms on the loop's clock), every
   * sidecar's placement, roots, leaves and non-zero TLS/upstream failure counters, and the
   * replicas' CA and leadership log lines on the same clock.
   */
  failureContext(loop: LoadLoop, events: Readonly<Record<string, number>>): Promise<string>;
}

/** Envoy counters that tell one kind of failed request from another. */
const FAILURE_STATS =
  /ssl\.(connection_error|fail_verify|handshake_error)|connect_fail|upstream_rq_5\d\d|cx_destroy_remote_with_active_rq|upstream_rq_pending_failure|no_healthy|update_rejected|upstream_reset|protocol_error/;
/** Replica log lines about the CA and leadership. */
const CA_LOG = /CA roots|retired CA root|retiring CA root|leaf certificate|leader|CA state/;

/** Registers the beforeAll/afterAll that start and stop the test bed; call inside describe. */
export function haCluster(opts: { readonly state: 'consul' | 'etcd' }): HaCluster {
  let consul: ConsulAgent | undefined;
  let etcd: EtcdHandle | undefined;
  let tmp: string;
  let keyFile: string;
  let operatorToken: string;
  const replicas: Replica[] = [];
  const apps: TrafficApp[] = [];
  const sidecars: HaSidecar[] = [];

  function startReplica(r: Replica): void {
    const child = spawn(
      process.execPath,
      [
        ...['--import', 'tsx', cliEntry, 'serve'],
        ...['--source', 'consul', '--consul', consul!.address, '--consul-backoff-max', '1s'],
        ...['--state', opts.state, '--state-encryption-key', keyFile],
        ...(etcd ? ['--etcd', etcd.endpoint] : []),
        // An empty local disk at every start: the CA comes from Consul.
        ...['--data-dir', mkdtempSync(join(tmp, `${r.name}-`))],
        ...['--host', '127.0.0.1', '--mtls', 'on', '--auth', 'token'],
        ...['--xds-port', String(r.xdsPort), '--admin-port', String(r.adminPort)],
        ...['--drain-seconds', String(DRAIN_SECONDS)],
      ],
      { cwd: repoRoot, env: { ...process.env, LOG_LEVEL: 'info' }, stdio: 'pipe' },
    );
    killWithTestProcess(child, `lucid-mesh serve ${r.name}`);
    r.child = child;
    r.output = '';
    const append = (c: Buffer) => {
      r.output += c.toString();
      if (r.output.length > 200_000) r.output = r.output.slice(-100_000);
    };
    child.stdout!.on('data', append);
    child.stderr!.on('data', append);
    r.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
  }

  const alive = (r: Replica) =>
    r.child !== undefined && r.child.exitCode === null && !r.child.signalCode;

  async function waitReady(r: Replica): Promise<void> {
    await waitFor(
      async () =>
        (await httpGet(`http://127.0.0.1:${r.adminPort}/ready`).catch(() => undefined))?.status ===
        200,
      {
        what: `${r.name} /ready`,
        timeoutMs: 60_000,
        details: () => r.output.slice(-4000),
        failIf: () => (alive(r) ? undefined : `${r.name} exited`),
      },
    );
  }

  async function proxiesOn(r: Replica): Promise<ProxyRow[]> {
    const res = await httpGet(`http://127.0.0.1:${r.adminPort}/v1/proxies`, {
      authorization: `Bearer ${operatorToken}`,
    });
    if (res.status !== 200) throw new Error(`${r.name} /v1/proxies: ${res.status}`);
    return (JSON.parse(res.body) as { proxies: ProxyRow[] }).proxies;
  }

  async function placement(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const r of replicas.filter(alive))
      for (const p of await proxiesOn(r).catch(() => []))
        if (Object.values(p.types).every((t) => t.status === 'SYNCED')) out.set(p.nodeId, r.name);
    return out;
  }

  const allPlaced = async () => {
    const placed = await placement();
    return sidecars.every((s) => placed.has(s.nodeId)) ? placed : undefined;
  };

  async function churn(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const s of sidecars) {
      out[`${s.nodeId}:cluster_modified`] =
        (await s.envoy.stat('cluster_manager.cluster_modified')) ?? -1;
      out[`${s.nodeId}:listener_modified`] =
        (await s.envoy.stat('listener_manager.listener_modified')) ?? -1;
    }
    return out;
  }

  async function registerEverywhere(name: string, app: number): Promise<void> {
    await consul!.register({
      Name: name,
      ID: `${name}-1`,
      Address: '127.0.0.1',
      Port: apps[app]!.port,
      Check: TTL,
    });
    for (const s of sidecars)
      await s.envoy.waitFor(() => hasCluster(s.envoy, name), `${s.nodeId} gets ${name}`);
  }

  async function certsOf(s: Sidecar): Promise<{ roots: Set<string>; leaves: Set<string> }> {
    const certs = JSON.parse(await s.envoy.admin('/certs')) as EnvoyCerts;
    const roots = new Set<string>();
    const leaves = new Set<string>();
    for (const c of certs.certificates) {
      for (const ca of c.ca_cert ?? []) roots.add(serialKey(ca.serial_number));
      for (const leaf of c.cert_chain ?? []) leaves.add(serialKey(leaf.serial_number));
    }
    return { roots, leaves };
  }

  async function failureContext(
    loop: LoadLoop,
    events: Readonly<Record<string, number>>,
  ): Promise<string> {
    const loopStart = Date.now() - loop.now(); // the loop's clock, in epoch ms
    const rounded = Object.entries(events).map(([k, v]) => `${k} ${v.toFixed(0)}`);
    const lines = [`events (loop ms): ${rounded.join(', ')}`];
    const placed = await placement().catch(() => new Map<string, string>());
    for (const s of sidecars) {
      const certs = await certsOf(s).catch(() => undefined);
      const stats = await s.envoy.stats().catch(() => new Map<string, string>());
      const bad = [...stats].filter(([k, v]) => FAILURE_STATS.test(k) && v !== '0');
      lines.push(
        `${s.nodeId} on ${placed.get(s.nodeId) ?? '?'}: roots ${[...(certs?.roots ?? [])].join(',')}; leaves ${[...(certs?.leaves ?? [])].join(',')}`,
        ...bad.map(([k, v]) => `  ${k}: ${v}`),
      );
    }
    for (const r of replicas) {
      for (const line of r.output.split('\n')) {
        if (!CA_LOG.test(line)) continue;
        const time = /"time":(\d+)/.exec(line)?.[1];
        const at = time ? `${(Number(time) - loopStart).toFixed(0)} ms` : '?';
        lines.push(`${r.name} @${at}: ${line.slice(0, 400)}`);
      }
    }
    return lines.join('\n');
  }

  beforeAll(async () => {
    apps.push(...(await Promise.all(['web-1', 'api-1', 'api-2'].map((n) => startTrafficApp(n)))));
    consul = await startConsul();
    if (opts.state === 'etcd') etcd = await startEtcd('ha-state');
    const sidecarPorts = await freePorts(3);
    const ids = [
      ['web', 'web-1'],
      ['api', 'api-1'],
      ['api', 'api-2'],
    ] as const;
    for (const [i, [name, id]] of ids.entries())
      await consul.register({
        Name: name,
        ID: id,
        Address: '127.0.0.1',
        Port: apps[i]!.port,
        Check: TTL,
        Connect: { SidecarService: { Port: sidecarPorts[i], Checks: [TTL] } },
      });

    tmp = mkdtempSync(join(tmpdir(), 'lucid-ha-'));
    keyFile = join(tmp, 'state.key');
    writeFileSync(keyFile, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
    // Tokens from the shared store, as `lucid-mesh token issue --state consul` would.
    const ca = await openCa({
      store: stateStoreFromFlags({
        consul: consul.address,
        ...(etcd ? { etcd: etcd.endpoint } : {}),
        state: opts.state,
        stateEncryptionKey: keyFile,
      }),
      dataDir: mkdtempSync(join(tmp, 'operator-')),
      env: {},
    });
    const tokens = { web: await ca.tokens.issue('web'), api: await ca.tokens.issue('api') };
    operatorToken = await ca.tokens.issueOperator({ name: 'ha-test' });
    await ca.close();

    const ports = await freePorts(6);
    for (let i = 0; i < 3; i++)
      replicas.push({
        name: `replica-${i}`,
        xdsPort: ports[2 * i]!,
        adminPort: ports[2 * i + 1]!,
        output: '',
      });
    // Only the first replica at first: every sidecar connects to it (the others refuse).
    startReplica(replicas[0]!);
    await waitReady(replicas[0]!);

    const xds = replicas.map((r) => `127.0.0.1:${r.xdsPort}`);
    const sidecarDefs: Array<[string, 'web' | 'api', XdsMode]> = [
      ['web-1-sidecar-proxy', 'web', 'sotw'],
      ['api-1-sidecar-proxy', 'api', 'delta'],
      ['api-2-sidecar-proxy', 'api', 'sotw'],
    ];
    for (const [nodeId, service, mode] of sidecarDefs) {
      const adminPort = await freePort();
      const outboundPort = await freePort();
      const envoy = await startEnvoy({
        name: nodeId,
        adminPort,
        bootstrapYaml: renderBootstrap({
          nodeId,
          service,
          xds,
          mode,
          adminPort,
          outboundPort,
          token: tokens[service],
        }),
      });
      const sidecar: Sidecar = {
        envoy,
        outboundPort,
        call: (host, path = '/') =>
          httpGet(`http://127.0.0.1:${outboundPort}${path}`, { host }, 3000),
      };
      sidecars.push({ ...sidecar, nodeId });
    }
    const web = sidecars[0]!;
    await waitFor(
      async () => (await callThrough(web, 'api').catch(() => undefined))?.status === 200,
      { what: 'web → api through the sidecars (mTLS)', timeoutMs: 60_000 },
    );
    for (const r of replicas.slice(1)) startReplica(r);
    await Promise.all(replicas.slice(1).map(waitReady));
  }, CONSUL_SETUP_TIMEOUT_MS);

  afterAll(async () => {
    await Promise.all(sidecars.map((s) => s.envoy.stop()));
    for (const r of replicas) if (alive(r)) r.child!.kill('SIGKILL');
    await Promise.all(replicas.map((r) => r.exited));
    await consul?.stop();
    await etcd?.remove();
    await Promise.all(apps.map((a) => a.close()));
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  return {
    state: opts.state,
    get consul() {
      return consul!;
    },
    get etcd() {
      return etcd;
    },
    get keyFile() {
      return keyFile;
    },
    replicas,
    apps,
    sidecars,
    startReplica,
    alive,
    waitReady,
    placement,
    allPlaced,
    churn,
    certsOf,
    registerEverywhere,
    failureContext,
  };
}

/** The kill -9 test: call inside the describe that made `c`. */
export function itKillsTheReplicaInUse(c: HaCluster): void {
  it(`kill -9 of the replica the sidecars use (--state ${c.state}): 0 failed requests, reconnected within 5 s, no config churn, later changes arrive`, async () => {
    const { replicas, sidecars, churn, allPlaced, startReplica, waitReady } = c;
    const before = await waitFor(allPlaced, { what: 'every sidecar SYNCED', timeoutMs: 30_000 });
    const victim = replicas.find((r) => r.name === before.get(sidecars[0]!.nodeId))!;
    // Started alone first, so every sidecar is on it.
    expect([...before.values()]).toEqual(sidecars.map(() => victim.name));
    const churnBefore = await churn();
    // The counters exist (a missing one would read -1 before and after, hiding churn).
    expect(Object.values(churnBefore).every((n) => n >= 0)).toBe(true);

    const loop = startLoadLoop(sidecars[0]!, 'api', { rps: 100, maxMs: 60_000 });
    try {
      await sleep(2_000);
      const killedAt = performance.now();
      victim.child!.kill('SIGKILL');
      await victim.exited;
      // Every Envoy connected (to a survivor) and SYNCED there.
      const after = await waitFor(
        async () => {
          const placed = await allPlaced();
          if (!placed) return undefined;
          for (const s of sidecars)
            if ((await s.envoy.stat('control_plane.connected_state')) !== 1) return undefined;
          return placed;
        },
        { what: 'every sidecar on a surviving replica', timeoutMs: 15_000, intervalMs: 50 },
      );
      const reconnectMs = performance.now() - killedAt;
      console.log(
        `ha (${c.state}): all ${sidecars.length} sidecars re-established in ${reconnectMs.toFixed(0)} ms`,
      );
      expect(reconnectMs).toBeLessThanOrEqual(5_000);
      for (const name of after.values()) expect(name).not.toBe(victim.name);
      await sleep(1_000);
      expect(await churn()).toEqual(churnBefore);

      // A change made after the kill reaches every Envoy through the survivors.
      await c.registerEverywhere('billing', 2);
    } finally {
      const count = await loop.stop();
      expect(count.failures).toEqual([]);
      expect(count.failed).toBe(0);
      expect(count.total).toBeGreaterThan(300);
    }
    // Back to three for the next test.
    startReplica(victim);
    await waitReady(victim);
  });
}
