// Real Envoy processes for end-to-end tests: start one on a bootstrap, talk to its admin
// endpoint, wait for conditions, stop it. Every Envoy started here is killed when the test
// process exits, however it exits (a reaper process per Envoy handles SIGKILL of the worker).
import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killWithTestProcess } from './reaper.js';
import { envoyPath } from './tools.js';
import { httpGet } from './http-app.js';
import { waitFor as poll } from './wait.js';

export interface EnvoyHandle {
  readonly name: string;
  readonly adminPort: number;
  readonly pid: number;
  /** Path of the bootstrap file Envoy was started with. */
  readonly bootstrapPath: string;
  /** GET http://127.0.0.1:<adminPort><path>; the body as text. Throws on non-2xx. */
  admin(path: string): Promise<string>;
  /** /clusters text. */
  clusters(): Promise<string>;
  /** /config_dump?include_eds parsed. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  configDump(): Promise<any>;
  /** /stats parsed as name -> value text. */
  stats(): Promise<Map<string, string>>;
  /** One counter/gauge as a number; undefined if absent or not numeric. */
  stat(name: string): Promise<number | undefined>;
  /** The last ~200 KB of Envoy's stdout+stderr. */
  logs(): string;
  /** true until the process has exited. */
  running(): boolean;
  /**
   * Polls `check` (~100 ms) until it returns something other than undefined/false. Throws
   * with `what` and the tail of the logs on timeout (default 15 s) or if Envoy exits.
   */
  waitFor<T>(
    check: () => Promise<T | undefined | false>,
    what: string,
    timeoutMs?: number,
  ): Promise<T>;
  /** SIGTERM, SIGKILL after 3 s; resolves once the process is gone. Idempotent. */
  stop(): Promise<void>;
}

export interface StartEnvoyOptions {
  /** Used in messages and the temp dir name. */
  name: string;
  bootstrapYaml: string;
  /** Must match the admin port in the bootstrap. */
  adminPort: number;
  /** Envoy -l level, default "warning". */
  logLevel?: string;
  /** How long to wait for the admin endpoint, default 20 s. */
  startTimeoutMs?: number;
  /** Extra Envoy command line arguments. */
  extraArgs?: string[];
}

const LOG_KEEP = 200 * 1024;
const DEFAULT_WAIT_MS = 15_000;

function tail(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  const cut = text.slice(text.length - maxChars);
  const nl = cut.indexOf('\n');
  return nl >= 0 ? cut.slice(nl + 1) : cut;
}

async function adminGet(port: number, path: string): Promise<{ status: number; body: string }> {
  const url = `http://127.0.0.1:${port}${path.startsWith('/') ? path : `/${path}`}`;
  return httpGet(url, {}, 5_000);
}

export async function startEnvoy(opts: StartEnvoyOptions): Promise<EnvoyHandle> {
  const bin = envoyPath();
  const dir = mkdtempSync(join(tmpdir(), `lucid-envoy-${opts.name.replace(/[^\w.-]/g, '_')}-`));
  const bootstrapPath = join(dir, 'bootstrap.yaml');
  writeFileSync(bootstrapPath, opts.bootstrapYaml);
  const args = [
    '-c',
    bootstrapPath,
    '--disable-hot-restart',
    '--concurrency',
    '1',
    '-l',
    opts.logLevel ?? 'warning',
    '--drain-time-s',
    '1',
    '--parent-shutdown-time-s',
    '2',
    ...(opts.extraArgs ?? []),
  ];
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const append = (chunk: Buffer): void => {
    output += chunk.toString('utf8');
    if (output.length > LOG_KEEP * 1.25) output = tail(output, LOG_KEEP);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);

  let exitInfo: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = signal ? `signal ${signal}` : `code ${code}`;
      resolve();
    });
  });
  let spawnError: Error | undefined;
  child.once('error', (err) => {
    spawnError = err;
    exitInfo ??= `spawn failed: ${err.message}`;
  });
  killWithTestProcess(child, 'envoy');

  const logs = (): string => output;
  const logTail = (): string =>
    `--- envoy ${opts.name} (pid ${child.pid}, ${exitInfo ?? 'running'}) log tail ---\n` +
    tail(output, 8 * 1024);
  const running = (): boolean => exitInfo === undefined && spawnError === undefined;

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (running()) {
        child.kill('SIGTERM');
        const killTimer = setTimeout(() => child.kill('SIGKILL'), 3_000);
        await exited;
        clearTimeout(killTimer);
      }
      rmSync(dir, { recursive: true, force: true });
    })();
    return stopping;
  };

  const admin = async (path: string): Promise<string> => {
    const res = await adminGet(opts.adminPort, path);
    if (res.status < 200 || res.status > 299) {
      throw new Error(
        `envoy ${opts.name} admin GET ${path}: HTTP ${res.status}: ${res.body.slice(0, 500)}`,
      );
    }
    return res.body;
  };

  const stats = async (): Promise<Map<string, string>> => {
    const map = new Map<string, string>();
    for (const line of (await admin('/stats')).split('\n')) {
      const i = line.indexOf(': ');
      if (i > 0) map.set(line.slice(0, i), line.slice(i + 2).trim());
    }
    return map;
  };

  const handle: EnvoyHandle = {
    name: opts.name,
    adminPort: opts.adminPort,
    pid: child.pid ?? -1,
    bootstrapPath,
    admin,
    clusters: () => admin('/clusters'),
    configDump: async () => JSON.parse(await admin('/config_dump?include_eds')),
    stats,
    async stat(name) {
      const value = (await stats()).get(name);
      if (value === undefined || !/^-?\d+(\.\d+)?$/.test(value)) return undefined;
      return Number(value);
    },
    logs,
    running,
    waitFor: (check, what, timeoutMs = DEFAULT_WAIT_MS) =>
      poll(check, {
        what: `${what} (envoy ${opts.name})`,
        timeoutMs,
        details: logTail,
        failIf: () => (running() ? undefined : `envoy ${opts.name} exited (${exitInfo})`),
      }),
    stop,
  };

  // Up = the admin endpoint answers, and it is *this* Envoy's (another process may hold the
  // port, in which case ours exits with a bind error and we report that).
  try {
    await poll(
      async () => {
        const info = JSON.parse((await adminGet(opts.adminPort, '/server_info')).body) as {
          command_line_options?: { config_path?: string };
        };
        return info.command_line_options?.config_path === bootstrapPath;
      },
      {
        what: `envoy ${opts.name} admin on 127.0.0.1:${opts.adminPort}`,
        timeoutMs: opts.startTimeoutMs ?? 20_000,
        intervalMs: 50,
        details: logTail,
        failIf: () => (running() ? undefined : `envoy exited (${exitInfo})`),
      },
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return handle;
}

/** Runs `envoy --mode validate` on a bootstrap; ok is true when Envoy accepts it. */
export async function validateBootstrap(yaml: string): Promise<{ ok: boolean; output: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'lucid-envoy-validate-'));
  const file = join(dir, 'bootstrap.yaml');
  writeFileSync(file, yaml);
  try {
    return await new Promise((resolve) => {
      execFile(
        envoyPath(),
        ['--mode', 'validate', '-c', file, '-l', 'warning', '--disable-hot-restart'],
        { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
        (err, stdout, stderr) => {
          const output = `${stdout}${stderr}`;
          resolve({ ok: err === null && /\bOK\b/.test(output), output });
        },
      );
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
