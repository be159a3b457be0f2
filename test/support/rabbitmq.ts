// A real RabbitMQ for tests (Debian's rabbitmq-server, unpacked by scripts/tools/rabbitmq.sh):
// one broker per call on free loopback ports with its own node name, data and log directories,
// HOME (Erlang cookie) and its own epmd on its own port, so brokers of parallel test files share
// nothing. stop()/start() keep the ports and data (an outage); remove() also ends epmd and
// deletes the directories. Every process started here dies with the test process.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import amqp from 'amqplib';
import { freePorts } from './ports.js';
import { serverProcess } from './process.js';
import { killWithTestProcess } from './reaper.js';
import { toolPath } from './tools.js';

const LOG_KEEP = 64 * 1024;

export interface RabbitMqHandle {
  readonly port: number;
  /** amqp://guest:guest@127.0.0.1:<port>/ (guest may log in from loopback). */
  readonly url: string;
  readonly nodename: string;
  /** With `tls`: the AMQPS port and amqps://guest:guest@localhost:<tlsPort>/. */
  readonly tlsPort?: number;
  readonly tlsUrl?: string;
  running(): boolean;
  /** The broker's stdout/stderr (its log goes there too). */
  logs(): string;
  /** SIGTERM (a clean shutdown); resolves once the VM is gone. */
  stop(): Promise<void>;
  /** Starts the broker again on the same ports and data; resolves when it takes connections. */
  start(): Promise<void>;
  /** Stops the broker and its epmd, deletes its directories. */
  remove(): Promise<void>;
}

export const rabbitmqWrapper = (): string => toolPath('rabbitmq');

/** The broker takes a few seconds to boot (on 2 busy cores, up to ~30 s). */
export const RABBITMQ_START_TIMEOUT_MS = 90_000;

export interface StartRabbitMqOptions {
  /** Also an AMQPS listener with this certificate chain and key (PEM files). */
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
}

export async function startRabbitMq(
  name = 'rmq',
  opts: StartRabbitMqOptions = {},
): Promise<RabbitMqHandle> {
  const wrapper = rabbitmqWrapper();
  const epmdBin = join(dirname(wrapper), 'root/usr/lib/erlang/bin/epmd');
  const [port, distPort, epmdPort, tlsPort] = (await freePorts(4)) as [
    number,
    number,
    number,
    number,
  ];
  const base = mkdtempSync(join(tmpdir(), `lucid-rabbitmq-${name}-`));
  const home = join(base, 'home');
  mkdirSync(home);
  const configFile = join(base, 'rabbitmq.conf');
  writeFileSync(
    configFile,
    [
      `listeners.tcp.default = 127.0.0.1:${port}`,
      // Test machines have small disks: the default 50 MB free-space alarm would block publishers.
      'disk_free_limit.absolute = 1MB',
      'log.console = true',
      'log.console.level = warning',
      'log.file = false',
      ...(opts.tls
        ? [
            `listeners.ssl.default = 127.0.0.1:${tlsPort}`,
            `ssl_options.certfile = ${opts.tls.certFile}`,
            `ssl_options.keyfile = ${opts.tls.keyFile}`,
            'ssl_options.verify = verify_none',
            'ssl_options.fail_if_no_peer_cert = false',
          ]
        : []),
      '',
    ].join('\n'),
  );
  const nodename = `lucid-${name}-${process.pid}-${port}@localhost`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    RABBITMQ_NODENAME: nodename,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_MNESIA_BASE: join(base, 'mnesia'),
    RABBITMQ_LOG_BASE: join(base, 'log'),
    RABBITMQ_CONFIG_FILE: configFile,
    // No plugins: management and the rest stay off.
    RABBITMQ_ENABLED_PLUGINS_FILE: join(base, 'enabled_plugins'),
    ERL_EPMD_PORT: String(epmdPort),
    ERL_EPMD_ADDRESS: '127.0.0.1',
  };
  writeFileSync(join(base, 'enabled_plugins'), '[].\n');

  // Our own epmd in the foreground, so it is ours to stop (Erlang would start a daemon).
  const epmd = spawn(epmdBin, ['-port', String(epmdPort), '-address', '127.0.0.1'], {
    env,
    stdio: 'ignore',
  });
  killWithTestProcess(epmd, 'epmd');

  const url = `amqp://guest:guest@127.0.0.1:${port}/`;
  const proc = serverProcess({
    name: 'rabbitmq',
    label: `rabbitmq ${nodename}`,
    bin: wrapper,
    args: ['server'],
    spawn: { env, cwd: base },
    logKeep: LOG_KEEP,
    ready: async () => {
      const conn = await amqp.connect(url, { timeout: 2_000 });
      await conn.close();
      return true;
    },
    readyWhat: `RabbitMQ ${nodename} taking AMQP connections on 127.0.0.1:${port}`,
    readyTimeoutMs: RABBITMQ_START_TIMEOUT_MS,
    readyIntervalMs: 250,
    killGraceMs: 20_000,
  });
  const { start, running } = proc;
  const stop = (): Promise<void> => proc.signal('SIGTERM');

  try {
    await start();
  } catch (err) {
    await stop();
    epmd.kill('SIGKILL');
    rmSync(base, { recursive: true, force: true });
    throw err;
  }
  return {
    port,
    url,
    nodename,
    ...(opts.tls ? { tlsPort, tlsUrl: `amqps://guest:guest@localhost:${tlsPort}/` } : {}),
    running,
    logs: proc.logs,
    stop,
    start,
    async remove() {
      await stop();
      epmd.kill('SIGKILL');
      rmSync(base, { recursive: true, force: true });
    },
  };
}
