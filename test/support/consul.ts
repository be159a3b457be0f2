// A real Consul agent for tests: `consul agent -dev` on free loopback ports (built from the Go
// module proxy by scripts/install-tools.sh consul, cached). It can be stopped and started again
// on the SAME ports (a restarted -dev agent has an empty catalog: tests re-register), and is
// killed when the test process exits, however it exits (a reaper process per agent).
// Several can form a WAN federation (one datacenter each): `datacenter`, `node` and
// `retryJoinWan` (another agent's `wanAddress`), or `joinWan` once both run.
// `persistent: true` starts a one-server agent with a data dir instead: its catalog and its
// registrations survive a kill and a start (an outage of a real Consul).
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { consulDevAgentArgs } from '../../bench/consul-dev-agent.js';
import { freePorts } from './ports.js';
import { serverProcess } from './process.js';
import { toolPath } from './tools.js';
import { waitFor } from './wait.js';

export interface ConsulAgent {
  /** HTTP API port on 127.0.0.1. */
  readonly httpPort: number;
  /** "127.0.0.1:<httpPort>", as for CONSUL_HTTP_ADDR. */
  readonly address: string;
  /** "127.0.0.1:<grpc port>" with `grpc: true` (CONSUL_GRPC_ADDR), else undefined. */
  readonly grpcAddress?: string;
  /** Its datacenter (`-datacenter`, default dc1) and node name (default t). */
  readonly datacenter: string;
  readonly node: string;
  /** "127.0.0.1:<serf WAN port>": what another datacenter's agent joins over the WAN. */
  readonly wanAddress: string;
  /** PUT /v1/agent/join/<addr>?wan=1 (`consul join -wan`); throws unless 200. */
  joinWan(address: string): Promise<void>;
  /** Any HTTP API call; `path` starts with /v1. Resolves for every status. */
  api(method: string, path: string, body?: unknown): Promise<TextResponse>;
  /** PUT /v1/agent/service/register; throws unless 200. */
  register(service: Record<string, unknown>): Promise<void>;
  /** PUT /v1/agent/service/deregister/:id; throws unless 200. */
  deregister(serviceId: string): Promise<void>;
  /** PUT /v1/agent/check/{pass,warn,fail}/:id (TTL checks); throws unless 200. */
  setCheck(checkId: string, status: 'pass' | 'warn' | 'fail'): Promise<void>;
  /** Stops the agent (SIGTERM, SIGKILL after 5 s). Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL (also of a paused agent): gone without a goodbye; resolves once it is. */
  kill(): Promise<void>;
  /** stop(), and deletes the data dir of a persistent agent. */
  remove(): Promise<void>;
  /** Starts it again on the same ports (after stop); resolves once it has a leader. */
  start(): Promise<void>;
  running(): boolean;
  /** SIGSTOP: the agent hangs, connections open, no answers (a stuck Consul); resume() ends it. */
  pause(): void;
  resume(): void;
  /** The last ~100 KB of the agent's output. */
  logs(): string;
}

/**
 * For beforeAll hooks that start Consul: on a cold cache the first toolPath('consul') builds
 * Consul from the Go module proxy (minutes on 2 cores); afterwards a start takes seconds.
 */
export const CONSUL_SETUP_TIMEOUT_MS = 15 * 60_000;

export interface StartConsulOptions {
  /** limits.http_max_conns_per_client (Consul's default is 200). */
  maxConnsPerClient?: number;
  /** Agent log level, default "warn". */
  logLevel?: string;
  /** `-datacenter`, default dc1 (a -dev agent's own). */
  datacenter?: string;
  /** `-node`, default t. Nodes are named <node>.<datacenter> on the WAN. */
  node?: string;
  /**
   * `-retry-join-wan` addresses (other agents' `wanAddress`): joined at every start, so a
   * restarted agent (a -dev one forgets its WAN peers) is federated again by itself.
   */
  retryJoinWan?: readonly string[];
  /** `-node-meta key:value` of the agent's node (e.g. region, zone). */
  nodeMeta?: Readonly<Record<string, string>>;
  /** More agent configuration, one `-hcl` argument each (e.g. an `acl { ... }` block). */
  hcl?: readonly string[];
  /** Serve Consul's own xDS (gRPC, plaintext) on a free port, for `consul connect envoy`. */
  grpc?: boolean;
  /**
   * A one-server agent (`-server -bootstrap-expect 1`) on a data dir of its own instead of a -dev
   * agent, which keeps nothing: a restarted one has its catalog (raft) and agent registrations.
   */
  persistent?: boolean;
}

export interface TextResponse {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

/** One HTTP request with a fresh connection; resolves for any status (10 s timeout). */
export function httpRequestText(
  method: string,
  url: string,
  body?: unknown,
  timeoutMs = 10_000,
): Promise<TextResponse> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      url,
      {
        method,
        agent: false,
        timeout: timeoutMs,
        headers: payload ? { 'content-type': 'application/json' } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
            headers: res.headers,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: timed out`)));
    req.on('error', (e) => reject(new Error(`${method} ${url}: ${e.message}`)));
    req.end(payload);
  });
}

const LOG_KEEP = 100 * 1024;

export async function startConsul(opts: StartConsulOptions = {}): Promise<ConsulAgent> {
  const bin = toolPath('consul');
  const [httpPort, serfLan, serfWan, serverPort, grpcPort] = (await freePorts(5)) as [
    number,
    number,
    number,
    number,
    number,
  ];
  const base = `http://127.0.0.1:${httpPort}`;
  const hcl =
    opts.maxConnsPerClient !== undefined
      ? ['-hcl', `limits { http_max_conns_per_client = ${opts.maxConnsPerClient} }`]
      : [];
  const node = opts.node ?? 't';
  const datacenter = opts.datacenter ?? 'dc1';
  const devArgs = consulDevAgentArgs(
    node,
    { http: httpPort, serfLan, serfWan, server: serverPort },
    opts.logLevel ?? 'warn',
  );
  if (opts.grpc) devArgs[devArgs.indexOf('-grpc-port') + 1] = String(grpcPort);
  const dataDir = opts.persistent ? mkdtempSync(join(tmpdir(), 'lucid-consul-')) : undefined;
  if (dataDir) {
    devArgs.splice(devArgs.indexOf('-dev'), 1, ...persistentServerArgs(dataDir));
  }
  const args = [
    ...devArgs,
    ...hcl,
    ...(opts.datacenter !== undefined ? ['-datacenter', opts.datacenter] : []),
    ...(opts.retryJoinWan ?? []).flatMap((addr) => ['-retry-join-wan', addr]),
    ...Object.entries(opts.nodeMeta ?? {}).flatMap(([k, v]) => ['-node-meta', `${k}:${v}`]),
    ...(opts.hcl ?? []).flatMap((h) => ['-hcl', h]),
  ];

  const api = (method: string, path: string, body?: unknown): Promise<TextResponse> =>
    httpRequestText(method, `${base}${path}`, body);

  const proc = serverProcess({
    name: 'consul',
    label: `consul ${datacenter} (http ${httpPort})`,
    bin,
    args,
    logKeep: LOG_KEEP,
    ready: async () => {
      const res = await api('GET', '/v1/status/leader');
      return res.status === 200 && /^"[^"]+"$/.test(res.body.trim());
    },
    readyWhat: `consul leader on 127.0.0.1:${httpPort}`,
    readyTimeoutMs: 30_000,
    readyIntervalMs: 100,
    killGraceMs: 5_000,
  });
  const { running } = proc;
  const stop = (): Promise<void> => proc.signal('SIGTERM');
  const remove = async (): Promise<void> => {
    await stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  };

  const start = async (): Promise<void> => {
    if (running()) return;
    await proc.start();
    try {
      // The agent registers its own node shortly after the election; wait for it so that
      // service registrations sync to the catalog at once.
      await waitFor(async () => (await api('GET', `/v1/catalog/node/${node}`)).status === 200, {
        what: `consul node ${node} in the catalog`,
        timeoutMs: 15_000,
        details: proc.tail,
      });
    } catch (err) {
      await stop();
      throw err;
    }
  };

  const expectOk = async (what: string, res: Promise<TextResponse>): Promise<void> => {
    const r = await res;
    if (r.status !== 200)
      throw new Error(`consul ${what}: HTTP ${r.status}: ${r.body.slice(0, 500)}`);
  };

  try {
    await start();
  } catch (err) {
    await remove();
    throw err;
  }
  return {
    httpPort,
    address: `127.0.0.1:${httpPort}`,
    ...(opts.grpc ? { grpcAddress: `127.0.0.1:${grpcPort}` } : {}),
    datacenter,
    node,
    wanAddress: `127.0.0.1:${serfWan}`,
    joinWan: (address) =>
      expectOk(
        `join -wan ${address}`,
        api('PUT', `/v1/agent/join/${encodeURIComponent(address)}?wan=1`),
      ),
    api,
    register: (service) =>
      expectOk(
        `register ${String(service.ID ?? service.Name)}`,
        api('PUT', '/v1/agent/service/register', service),
      ),
    deregister: (id) =>
      expectOk(
        `deregister ${id}`,
        api('PUT', `/v1/agent/service/deregister/${encodeURIComponent(id)}`),
      ),
    setCheck: (id, status) =>
      expectOk(
        `check ${status} ${id}`,
        api('PUT', `/v1/agent/check/${status}/${encodeURIComponent(id)}`),
      ),
    stop,
    kill: () => proc.signal('SIGKILL'),
    remove,
    start,
    running,
    pause: proc.pause,
    resume: proc.resume,
    logs: proc.logs,
  };
}

/** In place of -dev: one server with a data dir, and the -dev agent's raft timings and Connect. */
function persistentServerArgs(dataDir: string): string[] {
  return [
    '-server',
    '-bootstrap-expect',
    '1',
    '-data-dir',
    dataDir,
    // The default multiplier 5 makes elections 5 times slower than a -dev agent's.
    '-hcl',
    'performance { raft_multiplier = 1 }',
    '-hcl',
    'connect { enabled = true }',
  ];
}
