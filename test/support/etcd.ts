// A real etcd for tests (Debian's etcd-server, installed by scripts/install-tools.sh): one
// member on free loopback ports with a temp data dir; stop/kill/restart on the same ports and
// data dir; compaction; etcdctl. Every etcd started here is killed when the test process exits,
// however it exits (a reaper shell per etcd handles SIGKILL of the worker).
// Also a TCP proxy, to cut a client (the control plane's source) off from a running etcd.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Etcd3 } from 'etcd3';
import { createEtcdClient } from '../../src/sources/etcd/client.js';
import { httpGet } from './http-app.js';
import { freePorts } from './ports.js';
import { serverProcess } from './process.js';
import { toolPath } from './tools.js';

const LOG_KEEP = 100 * 1024;

export interface EtcdHandle {
  readonly clientPort: number;
  readonly peerPort: number;
  /** http://127.0.0.1:<clientPort> */
  readonly endpoint: string;
  readonly dataDir: string;
  /** A client for the test itself (closed by remove()). */
  readonly client: Etcd3;
  running(): boolean;
  logs(): string;
  /** SIGTERM (graceful), resolves once the process is gone. */
  stop(): Promise<void>;
  /** SIGKILL, resolves once the process is gone. */
  kill(): Promise<void>;
  /** Starts etcd again on the same ports and data dir; resolves when healthy. */
  restart(): Promise<void>;
  /** Current revision of the store. */
  revision(): Promise<number>;
  /** Compacts (physically) up to `revision` (default: the current revision); returns it. */
  compact(revision?: number): Promise<number>;
  /** Runs etcdctl against this etcd; resolves with stdout, rejects with stderr. */
  etcdctl(args: string[]): Promise<string>;
  /** Stops etcd and deletes the data dir. */
  remove(): Promise<void>;
}

export const etcdPath = (): string => toolPath('etcd');
export const etcdctlPath = (): string => join(dirname(etcdPath()), 'etcdctl');

export async function startEtcd(name = 'etcd'): Promise<EtcdHandle> {
  const bin = etcdPath();
  const [clientPort, peerPort] = (await freePorts(2)) as [number, number];
  const dataDir = mkdtempSync(join(tmpdir(), `lucid-etcd-${name}-`));
  const endpoint = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const args = [
    '--name',
    name,
    '--data-dir',
    join(dataDir, 'data'),
    '--listen-client-urls',
    endpoint,
    '--advertise-client-urls',
    endpoint,
    '--listen-peer-urls',
    peer,
    '--initial-advertise-peer-urls',
    peer,
    '--initial-cluster',
    `${name}=${peer}`,
    '--initial-cluster-state',
    'new',
    '--logger',
    'zap',
    '--log-outputs',
    'stderr',
    '--log-level',
    'warn',
  ];

  const proc = serverProcess({
    name: 'etcd',
    label: `etcd ${name}`,
    bin,
    args,
    logKeep: LOG_KEEP,
    ready: async () => {
      const res = await httpGet(`${endpoint}/health`, {}, 2_000);
      return res.status === 200 && (JSON.parse(res.body) as { health?: string }).health === 'true';
    },
    readyWhat: `etcd ${name} healthy on ${endpoint}`,
    readyTimeoutMs: 20_000,
    readyIntervalMs: 50,
    killGraceMs: 5_000,
  });
  const { running, signal } = proc;
  const launch = proc.start;

  await launch();
  const client = createEtcdClient({ endpoints: [endpoint] });

  const handle: EtcdHandle = {
    clientPort,
    peerPort,
    endpoint,
    dataDir,
    client,
    running,
    logs: proc.logs,
    stop: () => signal('SIGTERM'),
    kill: () => signal('SIGKILL'),
    async restart() {
      await signal('SIGTERM');
      await launch();
    },
    async revision() {
      const res = await client.kv.range({ key: Buffer.from('\0'), limit: 1 });
      return Number(res.header.revision);
    },
    async compact(revision) {
      const rev = revision ?? (await handle.revision());
      await client.kv.compact({ revision: rev, physical: true });
      return rev;
    },
    etcdctl(extra) {
      return new Promise((resolve, reject) => {
        execFile(
          etcdctlPath(),
          [`--endpoints=${endpoint}`, ...extra],
          { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 15_000 },
          (err, stdout, stderr) =>
            err
              ? reject(new Error(`etcdctl ${extra.join(' ')}: ${stderr || err.message}`))
              : resolve(stdout),
        );
      });
    },
    async remove() {
      client.close();
      await signal('SIGTERM');
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return handle;
}

export interface TcpProxy {
  readonly port: number;
  /** http://127.0.0.1:<port> */
  readonly endpoint: string;
  /** Drops every connection and refuses new ones (a network partition). */
  cut(): Promise<void>;
  /** Accepts connections again, on the same port. */
  restore(): Promise<void>;
  close(): Promise<void>;
}

/** A TCP forwarder 127.0.0.1:<free port> → 127.0.0.1:`targetPort` that a test can cut. */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  const [port] = (await freePorts(1)) as [number];

  const listen = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const s = createServer((downstream) => {
        const upstream = connect(targetPort, '127.0.0.1');
        for (const sock of [downstream, upstream]) {
          sockets.add(sock);
          sock.on('close', () => sockets.delete(sock));
          sock.on('error', () => {
            downstream.destroy();
            upstream.destroy();
          });
        }
        downstream.pipe(upstream);
        upstream.pipe(downstream);
      });
      s.once('error', reject);
      s.listen({ host: '127.0.0.1', port }, () => {
        s.off('error', reject);
        server = s;
        resolve();
      });
    });

  const cut = async (): Promise<void> => {
    const s = server;
    server = undefined;
    for (const sock of sockets) sock.destroy();
    sockets.clear();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  };

  await listen();
  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    cut,
    restore: async () => {
      if (!server) await listen();
    },
    close: cut,
  };
}
