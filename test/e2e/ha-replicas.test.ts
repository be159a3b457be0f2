// Three control plane replicas (`lucid-mesh serve` processes) on one real Consul: its catalog,
// and the shared CA state in its KV (--state consul, keys sealed with --state-encryption-key).
// Every replica starts on an empty local --data-dir (a fresh one at every start): all it
// needs comes from Consul. Three real Envoy sidecars are bootstrapped with all three
// addresses (--xds ×3), mTLS and proxy tokens on.
// A 100 rps loop runs web → api through two sidecars while:
// - the replica every sidecar is connected to is killed with -9: no request fails, every Envoy
//   is connected again within 5 s, no cluster or listener is modified, and a catalog change
//   made after the kill reaches every Envoy;
// - all three replicas are restarted one after the other with SIGTERM (graceful drain), each
//   on a new empty --data-dir: no request fails (the sidecars moved onto replicas with empty
//   disks are served leaves of the same root), each exits within --drain-seconds, still no
//   config churn;
// - `lucid-mesh ca rotate` (the CLI, on the same Consul store, no replica involved) starts a new
//   root: every Envoy, on whichever replica, trusts the new root next to the old one (the old
//   root is still in the bundle right after the rotation: its leaves are still in use), then
//   every leaf is re-issued (10 s delay + 20 s spread, docs/ca.md), and only then the old root
//   leaves every bundle; no request fails. Waiting for the drop keeps it out of the next test.
// - Consul is frozen (SIGSTOP: connections open, no answers) for 30 s: no request fails, every
//   replica's /ready answers 200 throughout, no config churn, and after SIGCONT a new
//   registration reaches every Envoy. That leaves falling due during a store outage are still
//   renewed is tested on the store directly, with short leaf lifetimes, in
//   test/ca/state/shared-store-suite.ts ("with the store down, a replica keeps issuing and
//   renewing leaves"), for Consul and etcd.
// Measured (2 shared cores, a CI run alongside): re-established 0.2-0.5 s after the kill;
// SIGTERM to exit 49-95 ms; after `ca rotate` the new root is in every bundle in 2-3.4 s, every
// leaf re-issued in 27-32 s, the old root dropped at 52 s; a registration after Consul's
// 30 s freeze reaches every Envoy in 2.7 s. The file runs in ~110 s.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderBootstrap, type XdsMode } from '../../src/bootstrap/render.js';
import { openCa } from '../../src/ca/index.js';
import { stateStoreFromFlags } from '../../src/cli/state-flags.js';
import { CONSUL_SETUP_TIMEOUT_MS, startConsul, type ConsulAgent } from '../support/consul.js';
import { startEnvoy } from '../support/envoy.js';
import { httpGet } from '../support/http-app.js';
import { runCli } from '../support/cli-process.js';
import { startLoadLoop, startProbe } from '../support/load-loop.js';
import { hasCluster, type Sidecar } from '../support/mesh.js';
import { freePort, freePorts } from '../support/ports.js';
import { killWithTestProcess } from '../support/reaper.js';
import { cliEntry } from '../support/tools.js';
import { callThrough, startTrafficApp, type TrafficApp } from '../support/traffic-app.js';
import { waitFor } from '../support/wait.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const DRAIN_SECONDS = 5;
/** TTL checks that pass from the start (no wait for a TCP check to see Envoy listen). */
const TTL = { TTL: '10m', Status: 'passing' };

interface Replica {
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
const serialKey = (s: string) => s.toLowerCase().replace(/^0+/, '');

interface ProxyRow {
  nodeId: string;
  types: Record<string, { status: string }>;
}

describe('three replicas on one Consul, sidecars failing over under a 100 rps loop', () => {
  let consul: ConsulAgent | undefined;
  let tmp: string;
  let keyFile: string;
  let operatorToken: string;
  const replicas: Replica[] = [];
  const apps: TrafficApp[] = [];
  const sidecars: Array<Sidecar & { nodeId: string }> = [];

  function startReplica(r: Replica): void {
    const child = spawn(
      process.execPath,
      [
        ...['--import', 'tsx', cliEntry, 'serve'],
        ...['--source', 'consul', '--consul', consul!.address, '--consul-backoff-max', '1s'],
        ...['--state', 'consul', '--state-encryption-key', keyFile],
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

  /** Node id → the replica whose /v1/proxies lists it with every type SYNCED. */
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

  /** Per Envoy: clusters and listeners modified by xDS (a resend of the same config is not). */
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

  /** Per sidecar: the root serials it trusts and the serials of its leaves. */
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

  beforeAll(async () => {
    apps.push(...(await Promise.all(['web-1', 'api-1', 'api-2'].map((n) => startTrafficApp(n)))));
    consul = await startConsul();
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
        state: 'consul',
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
    await Promise.all(apps.map((a) => a.close()));
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('kill -9 of the replica the sidecars use: 0 failed requests, reconnected within 5 s, no config churn, later changes arrive', async () => {
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
        `ha: all ${sidecars.length} sidecars re-established in ${reconnectMs.toFixed(0)} ms`,
      );
      expect(reconnectMs).toBeLessThanOrEqual(5_000);
      for (const name of after.values()) expect(name).not.toBe(victim.name);
      await sleep(1_000);
      expect(await churn()).toEqual(churnBefore);

      // A change made after the kill reaches every Envoy through the survivors.
      await consul!.register({
        Name: 'billing',
        ID: 'billing-1',
        Address: '127.0.0.1',
        Port: apps[2]!.port,
        Check: TTL,
      });
      for (const s of sidecars)
        await s.envoy.waitFor(() => hasCluster(s.envoy, 'billing'), `${s.nodeId} gets billing`);
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

  it('rolling restart of all three replicas with SIGTERM, each on an empty disk: 0 failed requests, no config churn, one root', async () => {
    await waitFor(allPlaced, { what: 'every sidecar SYNCED', timeoutMs: 30_000 });
    const churnBefore = await churn();
    const loop = startLoadLoop(sidecars[0]!, 'api', { rps: 100, maxMs: 120_000 });
    const drains: number[] = [];
    const moved: number[] = [];
    try {
      await sleep(1_000);
      for (const r of replicas) {
        const hadStreams = [...(await placement()).values()].filter((n) => n === r.name).length;
        moved.push(hadStreams);
        const signalledAt = performance.now();
        r.child!.kill('SIGTERM');
        const exit = await r.exited!;
        drains.push(performance.now() - signalledAt);
        expect(
          exit,
          `${r.name} exit; sidecars on it: ${hadStreams}\n${r.output.slice(-3000)}`,
        ).toEqual({
          code: 0,
          signal: null,
        });
        expect(r.output).toMatch(/xds drained/);
        startReplica(r);
        await waitReady(r);
        await waitFor(allPlaced, {
          what: `every sidecar SYNCED after ${r.name}`,
          timeoutMs: 15_000,
        });
      }
    } finally {
      const count = await loop.stop();
      expect(count.failures).toEqual([]);
      expect(count.failed).toBe(0);
    }
    console.log(
      `ha: SIGTERM to exit per replica: ${drains.map((d) => d.toFixed(0)).join(', ')} ms; sidecars drained off each: ${moved.join(', ')}`,
    );
    // The restarts did move sidecars (those on the replicas drained after the first).
    expect(moved.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(sidecars.length);
    for (const ms of drains) expect(ms).toBeLessThan(DRAIN_SECONDS * 1000 + 1_000);
    for (const s of sidecars) expect(await s.envoy.stat('control_plane.connected_state')).toBe(1);
    expect(await churn()).toEqual(churnBefore);
    // Every sidecar trusts one root, wherever it is now: the one in Consul.
    const roots = new Set<string>();
    for (const sc of sidecars) {
      const certs = JSON.parse(await sc.envoy.admin('/certs')) as {
        certificates: Array<{ ca_cert?: Array<{ serial_number: string }> }>;
      };
      for (const c of certs.certificates)
        for (const ca of c.ca_cert ?? []) roots.add(ca.serial_number);
    }
    expect(roots.size).toBe(1);
  });
  it('ca rotate (the CLI, on the Consul store) under the loop: every Envoy gets the new root next to the old one, then new leaves, then loses the old root; 0 failed requests', async () => {
    await waitFor(allPlaced, { what: 'every sidecar SYNCED', timeoutMs: 30_000 });
    const before = await Promise.all(sidecars.map(certsOf));
    const oldRoots = new Set(before.flatMap((c) => [...c.roots]));
    expect(oldRoots.size).toBe(1);
    const oldRoot = [...oldRoots][0]!;
    const loop = startLoadLoop(sidecars[0]!, 'api', { rps: 100, maxMs: 180_000 });
    let bundleMs = 0;
    let leavesMs = 0;
    let droppedMs = 0;
    try {
      await sleep(1_000);
      const rotatedAt = performance.now();
      const rotated = await runCli([
        ...['ca', 'rotate', '--state', 'consul', '--state-encryption-key', keyFile],
        ...['--consul', consul!.address],
      ]);
      expect(rotated.code, rotated.stderr).toBe(0);
      const newRoot = serialKey(/New active root: ([0-9a-f]+)/.exec(rotated.stdout)![1]!);
      expect(newRoot).not.toBe(oldRoot);
      // The bundle grows first: new root next to the old one (the old root still signs leaves).
      for (const [i, s] of sidecars.entries())
        await waitFor(
          async () => {
            const { roots } = await certsOf(s);
            return roots.has(newRoot) ? roots : undefined;
          },
          { what: `${s.nodeId} trusts ${newRoot}`, timeoutMs: 30_000 },
        ).then((roots) => {
          expect([...roots].sort(), s.nodeId).toEqual([newRoot, oldRoot].sort());
          expect(before[i]!.leaves.size).toBeGreaterThan(0);
        });
      bundleMs = performance.now() - rotatedAt;
      // Then every leaf is re-issued (within the 10 s delay + 20 s spread of docs/ca.md).
      for (const [i, s] of sidecars.entries())
        await waitFor(
          async () => {
            const { leaves } = await certsOf(s);
            return leaves.size > 0 && [...leaves].every((l) => !before[i]!.leaves.has(l));
          },
          { what: `${s.nodeId} has new leaves`, timeoutMs: 90_000, intervalMs: 250 },
        );
      leavesMs = performance.now() - rotatedAt;
      // Last, with no leaf of it left, the old root leaves every bundle (20 s later, docs/ca.md).
      for (const s of sidecars)
        await waitFor(
          async () => {
            const { roots } = await certsOf(s);
            return roots.size === 1 && roots.has(newRoot);
          },
          { what: `${s.nodeId} trusts only ${newRoot}`, timeoutMs: 90_000, intervalMs: 250 },
        );
      droppedMs = performance.now() - rotatedAt;
      // Still mTLS web → api with the new leaves.
      expect((await callThrough(sidecars[0]!, 'api')).status).toBe(200);
    } finally {
      const count = await loop.stop();
      expect(count.failures).toEqual([]);
      expect(count.failed).toBe(0);
    }
    const placed = await placement();
    console.log(
      `ha: ca rotate → new root in every Envoy's bundle ${bundleMs.toFixed(0)} ms, all leaves re-issued ${leavesMs.toFixed(0)} ms, old root dropped ${droppedMs.toFixed(0)} ms; sidecars on ${[...new Set(placed.values())].join(', ')}`,
    );
  });

  it('Consul stopped (SIGSTOP) for 30 s under the loop: 0 failed requests, every replica ready throughout, a later catalog change arrives', async () => {
    await waitFor(allPlaced, { what: 'every sidecar SYNCED', timeoutMs: 30_000 });
    const churnBefore = await churn();
    const probes = replicas.map((r) =>
      startProbe(`http://127.0.0.1:${r.adminPort}/ready`, 500, 120_000),
    );
    const loop = startLoadLoop(sidecars[0]!, 'api', { rps: 100, maxMs: 120_000 });
    let resumedAt = 0;
    try {
      await sleep(1_000);
      consul!.pause();
      try {
        await sleep(30_000);
      } finally {
        consul!.resume();
        resumedAt = performance.now();
      }
      await sleep(2_000);
    } finally {
      const count = await loop.stop();
      await Promise.all(probes.map((p) => p.stop()));
      expect(count.failures).toEqual([]);
      expect(count.failed).toBe(0);
      expect(count.total).toBeGreaterThan(1_500);
      for (const [i, p] of probes.entries()) {
        expect(p.badReasons, replicas[i]!.name).toEqual([]);
        expect(p.bad).toBe(0);
        // Answered all along (a probe that hung for 30 s would have few answers).
        expect(p.total, replicas[i]!.name).toBeGreaterThan(40);
      }
    }
    for (const r of replicas) expect(alive(r), `${r.name}\n${r.output.slice(-3000)}`).toBe(true);
    expect(await churn()).toEqual(churnBefore);
    // The replicas' catalog watches come back: a registration after the outage reaches Envoy.
    await consul!.register({
      Name: 'ledger',
      ID: 'ledger-1',
      Address: '127.0.0.1',
      Port: apps[1]!.port,
      Check: TTL,
    });
    for (const s of sidecars)
      await s.envoy.waitFor(() => hasCluster(s.envoy, 'ledger'), `${s.nodeId} gets ledger`);
    console.log(
      `ha: Consul paused 30 s: ledger reached every Envoy ${(performance.now() - resumedAt).toFixed(0)} ms after resume`,
    );
  });
});
