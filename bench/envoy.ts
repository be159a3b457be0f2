// The real-Envoy convergence run: the control plane (own process, as `lucid-mesh serve`), N
// real Envoys bootstrapped by our own renderer, and a series of endpoint changes. A change is
// applied when every Envoy's admin shows the cluster with the expected number of endpoints
// (`cluster.<name>.membership_total`); at the end every Envoy's /clusters must list exactly the
// catalog's endpoints. With `--source consul` the changes are registrations in a real Consul
// agent (register / deregister an instance) and the control plane reads Consul.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { renderBootstrap } from '../src/bootstrap/render.js';
import { GeneratedCatalog, serviceName } from './catalog.js';
import { consulDevAgentArgs } from './consul-dev-agent.js';
import { startBenchControlPlane, type BenchControlPlane } from './control-plane.js';
import { REPO_ROOT } from './ipc.js';
import { nowMs } from './load/protocol.js';
import { summarize } from './stats.js';
import type { CpSettings, EnvoyRunResult, Mode } from './types.js';

export interface EnvoyRunOptions {
  readonly mode: Mode;
  readonly source: 'file' | 'consul';
  readonly envoys: number;
  readonly changes: number;
  readonly cp: CpSettings;
  readonly log: (line: string) => void;
  readonly keepTemp?: boolean;
}

/** What the control plane says when this build has no Consul source (bench/cp-child.ts). */
const CONSUL_UNAVAILABLE = 'consul source not available in this build';
const SERVICES = 20;
const INSTANCES = 3;
const POLL_MS = 10;
const APPLY_TIMEOUT_MS = 30_000;

const agent = new Agent({ keepAlive: true, maxSockets: 4 });

function httpText(
  url: string,
  method = 'GET',
  body?: unknown,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(url, { method, agent, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const s = createServer();
          s.once('error', reject);
          s.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

function toolPath(tool: 'envoy' | 'consul'): string {
  return execFileSync('bash', [join(REPO_ROOT, 'scripts', 'install-tools.sh'), tool], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
    .trim()
    .split('\n')
    .pop()!;
}

const children = new Set<ChildProcess>();
let exitHook = false;
function spawnTracked(bin: string, args: string[], logPath: string): ChildProcess {
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => {
      for (const c of children) c.kill('SIGKILL');
    });
  }
  const fd = openSync(logPath, 'a');
  const child = spawn(bin, args, { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await gone;
  clearTimeout(timer);
}

interface EnvoyProc {
  readonly name: string;
  readonly adminPort: number;
  readonly proc: ChildProcess;
}

async function stat(e: EnvoyProc, name: string): Promise<number | undefined> {
  const filter = encodeURIComponent(`^${name.replace(/[.|]/g, (c) => `\\${c}`)}$`);
  const res = await httpText(`http://127.0.0.1:${e.adminPort}/stats?filter=${filter}`);
  const m = /: (\d+)\s*$/m.exec(res.body);
  return m ? Number(m[1]) : undefined;
}

async function sumStats(e: EnvoyProc, suffix: string): Promise<number> {
  const res = await httpText(
    `http://127.0.0.1:${e.adminPort}/stats?filter=${encodeURIComponent(`${suffix.replace(/\./g, '\\.')}$`)}`,
  );
  let total = 0;
  for (const line of res.body.split('\n')) {
    const m = /: (\d+)\s*$/.exec(line);
    if (m) total += Number(m[1]);
  }
  return total;
}

/** cluster → sorted host:port list, from /clusters. */
async function clusterHosts(e: EnvoyProc): Promise<Map<string, string[]>> {
  const res = await httpText(`http://127.0.0.1:${e.adminPort}/clusters`);
  const hosts = new Map<string, Set<string>>();
  for (const line of res.body.split('\n')) {
    const parts = line.split('::');
    if (parts.length < 3 || !/:\d+$/.test(parts[1]!)) continue;
    const set = hosts.get(parts[0]!) ?? new Set<string>();
    set.add(parts[1]!);
    hosts.set(parts[0]!, set);
  }
  return new Map([...hosts].map(([k, v]) => [k, [...v].sort()]));
}

async function waitUntil(
  check: () => Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = nowMs() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (nowMs() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(50);
  }
}

interface ConsulAgent {
  readonly address: string;
  readonly proc: ChildProcess;
  api(method: string, path: string, body?: unknown): Promise<{ status: number; body: string }>;
}

async function startConsul(dir: string): Promise<ConsulAgent> {
  const bin = toolPath('consul');
  const [http, serfLan, serfWan, server] = (await freePorts(4)) as [number, number, number, number];
  const proc = spawnTracked(
    bin,
    consulDevAgentArgs('bench', { http, serfLan, serfWan, server }),
    join(dir, 'consul.log'),
  );
  const address = `127.0.0.1:${http}`;
  const api = (method: string, path: string, body?: unknown) =>
    httpText(`http://${address}${path}`, method, body);
  await waitUntil(
    async () => {
      const r = await api('GET', '/v1/status/leader');
      return r.status === 200 && r.body.length > 4;
    },
    60_000,
    'consul leader',
  );
  return { address, proc, api };
}

export async function runEnvoy(opts: EnvoyRunOptions): Promise<EnvoyRunResult> {
  const { mode, source, log } = opts;
  const tag = `envoy ${source} ${mode}`;
  const errors: string[] = [];
  const base = {
    mode,
    source,
    envoys: opts.envoys,
    services: SERVICES,
    instances: INSTANCES,
    changes: opts.changes,
    pollIntervalMs: POLL_MS,
  };
  const dir = mkdtempSync(join(tmpdir(), 'lucid-bench-envoy-'));
  // Logs and bootstraps are written beside it: the catalog's directory (watched) is its own.
  mkdirSync(join(dir, 'catalog'));
  const envoyBin = toolPath('envoy');
  const envoyVersion =
    /version: [0-9a-f]+\/([\d.]+)/.exec(
      execFileSync(envoyBin, ['--version'], { encoding: 'utf8' }),
    )?.[1] ?? 'unknown';
  const ports = await freePorts(opts.envoys * 3);
  const adminPorts = ports.slice(0, opts.envoys);
  const outboundPorts = ports.slice(opts.envoys, 2 * opts.envoys);
  const sidecarPorts = ports.slice(2 * opts.envoys);
  // File source: the Envoys are meshed instances of the catalog (their own inbound listeners).
  const catalog = new GeneratedCatalog(
    { services: SERVICES, instances: INSTANCES },
    join(dir, 'catalog', 'catalog.json'),
    (s, i, doc) =>
      source === 'file' && i === 0 && s < opts.envoys
        ? { ...doc, address: '127.0.0.1', sidecarPort: sidecarPorts[s]! }
        : doc,
  );
  catalog.write();
  let consul: ConsulAgent | undefined;
  let cp: BenchControlPlane | undefined;
  const envoys: EnvoyProc[] = [];
  const applied: number[] = [];
  const fromSnapshot: number[] = [];
  const first: number[] = [];
  let complete = 0;
  let updateRejected = 0;
  let nacks = 0;
  let agree = false;
  let skipped: string | undefined;
  /** Expected endpoint count per cluster. */
  const expected = new Map<string, number>();
  for (const s of catalog.services) expected.set(s.name, s.instances.length);

  try {
    if (source === 'consul') {
      consul = await startConsul(dir);
      for (const svc of catalog.services) {
        for (const inst of svc.instances) {
          const r = await consul.api('PUT', '/v1/agent/service/register', {
            ID: inst.id,
            Name: svc.name,
            Address: inst.address,
            Port: inst.port,
          });
          if (r.status !== 200)
            throw new Error(`consul register ${inst.id}: HTTP ${r.status} ${r.body}`);
        }
      }
    }
    cp = await startBenchControlPlane(
      {
        source,
        catalogPath: catalog.path,
        consulAddr: consul?.address,
        logLevel: opts.cp.logLevel as never,
        debounceMs: opts.cp.debounceMs,
        maxDebounceMs: opts.cp.maxDebounceMs,
      },
      join(dir, 'cp.log'),
    );
    const control = cp;
    await waitUntil(
      async () => (await control.resource('clusters', serviceName(SERVICES - 1))) !== undefined,
      60_000,
      'control plane has the catalog',
    );

    for (let k = 0; k < opts.envoys; k++) {
      const nodeId = source === 'file' ? catalog.services[k]!.instances[0]!.id : `bench-envoy-${k}`;
      const service = source === 'file' ? catalog.services[k]!.name : 'bench';
      const bootstrap = join(dir, `envoy-${k}.yaml`);
      writeFileSync(
        bootstrap,
        renderBootstrap({
          nodeId,
          service,
          xds: `127.0.0.1:${cp.xdsPort}`,
          mode,
          adminPort: adminPorts[k]!,
          outboundPort: outboundPorts[k]!,
        }),
      );
      const proc = spawnTracked(
        envoyBin,
        [
          '-c',
          bootstrap,
          '--disable-hot-restart',
          '--concurrency',
          '1',
          '-l',
          'warning',
          '--drain-time-s',
          '1',
          '--parent-shutdown-time-s',
          '2',
        ],
        join(dir, `envoy-${k}.log`),
      );
      envoys.push({ name: nodeId, adminPort: adminPorts[k]!, proc });
    }
    const ownClusters = source === 'file' ? 1 : 0; // local_app|<node>
    await Promise.all(
      envoys.map((e) =>
        waitUntil(
          async () =>
            (await stat(e, 'cluster_manager.active_clusters')) === SERVICES + 1 + ownClusters &&
            (await stat(e, 'cluster_manager.warming_clusters')) === 0 &&
            ((await stat(e, 'listener_manager.total_listeners_active')) ?? 0) >= 1 &&
            (await stat(e, 'listener_manager.total_listeners_warming')) === 0,
          60_000,
          `envoy ${e.name} configured`,
        ),
      ),
    );
    log(`[${tag}] ${envoys.length} Envoys ${envoyVersion} configured; ${opts.changes} changes`);

    for (let n = 0; n < opts.changes; n++) {
      let cluster: string;
      let change: () => Promise<void>;
      if (source === 'file') {
        const [flip] = catalog.planFlips(1);
        cluster = flip!.service;
        expected.set(cluster, expected.get(cluster)! + (flip!.health === 'critical' ? -1 : 1));
        change = async () => {
          catalog.apply(flip!);
          catalog.write();
        };
      } else {
        // Register an extra instance, or deregister it if it is there.
        cluster = serviceName(n % SERVICES);
        const id = `${cluster}-extra`;
        const registered = expected.get(cluster)! > INSTANCES;
        expected.set(cluster, expected.get(cluster)! + (registered ? -1 : 1));
        const agentApi = consul!;
        change = async () => {
          const r = registered
            ? await agentApi.api('PUT', `/v1/agent/service/deregister/${id}`)
            : await agentApi.api('PUT', '/v1/agent/service/register', {
                ID: id,
                Name: cluster,
                Address: `10.200.0.${(n % 250) + 1}`,
                Port: 8080,
              });
          if (r.status !== 200) throw new Error(`consul ${id}: HTTP ${r.status} ${r.body}`);
        };
      }
      const want = expected.get(cluster)!;
      const snapIndex = cp.snapshots.length - 1;
      const t0 = nowMs();
      await change();
      const times = await Promise.all(
        envoys.map(async (e) => {
          const deadline = t0 + APPLY_TIMEOUT_MS;
          while (nowMs() < deadline) {
            const v = await stat(e, `cluster.${cluster}.membership_total`).catch(() => undefined);
            if (v === want) return nowMs();
            await sleep(POLL_MS);
          }
          return NaN;
        }),
      );
      const snap = cp.snapshots[snapIndex + 1];
      if (times.every(Number.isFinite)) {
        complete++;
        const last = Math.max(...times);
        applied.push(last - t0);
        first.push(Math.min(...times) - t0);
        if (snap) fromSnapshot.push(last - snap.builtAt);
      } else {
        errors.push(`change ${n} (${cluster} → ${want} endpoints): not applied by every Envoy`);
      }
      await sleep(50);
    }

    // Final state: every Envoy lists exactly the same endpoints for every service cluster.
    const views = await Promise.all(envoys.map((e) => clusterHosts(e)));
    const norm = views.map((v) =>
      JSON.stringify(
        [...v].filter(([c]) => expected.has(c)).sort(([a], [b]) => a.localeCompare(b)),
      ),
    );
    agree = norm.every((x) => x === norm[0]);
    const counts = views[0]
      ? [...expected].every(([c, n]) => (views[0]!.get(c)?.length ?? 0) === n)
      : false;
    if (!counts) errors.push('final /clusters: endpoint counts differ from the catalog');
    agree = agree && counts;
    updateRejected = (await Promise.all(envoys.map((e) => sumStats(e, '.update_rejected')))).reduce(
      (a, b) => a + b,
      0,
    );
    nacks = (await cp.stats()).nacks;
    log(
      `[${tag}] ${complete}/${opts.changes} applied by all; p50 ${summarize(applied).p50} / p99 ${summarize(applied).p99} ms; ` +
        `update_rejected ${updateRejected}`,
    );
  } catch (err) {
    const message = (err as Error).message;
    if (message.includes(CONSUL_UNAVAILABLE)) skipped = CONSUL_UNAVAILABLE;
    else errors.push(message);
    log(`[${tag}] ${skipped ?? `error: ${message}`}`);
  } finally {
    await Promise.all(envoys.map((e) => stopChild(e.proc)));
    await cp?.stop().catch(() => undefined);
    if (consul) await stopChild(consul.proc);
    if (!opts.keepTemp) rmSync(dir, { recursive: true, force: true });
    else log(`[${tag}] kept ${dir}`);
  }
  return {
    ...base,
    envoyVersion,
    complete,
    appliedMs: summarize(applied),
    firstEnvoyMs: summarize(first),
    snapshotToAllMs: summarize(fromSnapshot),
    updateRejected,
    nacks,
    agree,
    errors,
    ...(skipped ? { skipped } : {}),
  };
}
