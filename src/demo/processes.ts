// The demo's moving parts besides the control plane: tiny HTTP apps and Envoy processes. Every
// Envoy started here is tracked until it exits, so the demo can stop all of them on any way out.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../bootstrap/render.js';

/** An app that answers every request with who it is, so a curl shows which instance it reached. */
export function startApp(instanceId: string, service: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      `${JSON.stringify({ service, instance: instanceId, path: req.url, host: req.headers.host })}\n`,
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err) =>
      reject(new Error(`app ${instanceId} cannot listen on 127.0.0.1:${port}: ${err.message}`)),
    );
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

/** The pinned Envoy, installed into the tool cache on first use by the project's own script. */
export function envoyBinary(): string {
  const script = join(packageRoot(), 'scripts', 'install-tools.sh');
  return execFileSync('bash', [script, 'envoy'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
}

export interface EnvoyProcess {
  readonly name: string;
  readonly logFile: string;
  readonly child: ChildProcess;
}

const logDir = mkdtempSync(join(tmpdir(), 'lucid-mesh-demo-'));

/** Envoys started and not yet exited. */
const alive = new Set<ChildProcess>();

export function startEnvoyProcess(
  binary: string,
  name: string,
  bootstrapYaml: string,
): EnvoyProcess {
  const config = join(logDir, `${name}.yaml`);
  const logFile = join(logDir, `${name}.log`);
  writeFileSync(config, bootstrapYaml);
  const log = createWriteStream(logFile);
  const child = spawn(
    binary,
    ['-c', config, '--disable-hot-restart', '--concurrency', '1', '-l', 'warning'],
    // Its own process group: Ctrl-C reaches the demo only, which stops its Envoys itself
    // (were they hit too, an Envoy exiting first would look like a crash).
    { stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  alive.add(child);
  child.once('exit', () => alive.delete(child));
  // A binary that cannot start at all reports here, not through 'exit'.
  child.once('error', () => alive.delete(child));
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  return { name, logFile, child };
}

/** Stops every Envoy still running: SIGTERM, then SIGKILL for any left after `graceMs`. */
export async function stopEnvoys(graceMs = 3000): Promise<void> {
  const children = [...alive];
  const exited = children.map(
    (c) => new Promise<void>((resolve) => c.once('exit', () => resolve())),
  );
  for (const c of children) c.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all(exited),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs))),
  ]);
  clearTimeout(timer);
  killEnvoysNow();
}

/** Removes the Envoys' bootstrap and log files (after they stopped; kept when something failed). */
export function removeEnvoyFiles(): void {
  rmSync(logDir, { recursive: true, force: true });
}

/** SIGKILL to every Envoy still running (synchronous: usable in a process 'exit' handler). */
export function killEnvoysNow(): void {
  for (const c of alive) c.kill('SIGKILL');
}

/**
 * `n` distinct free ports on 127.0.0.1, picked by the system (all probes are held open
 * together, so they cannot repeat).
 */
export async function freeLocalPorts(n: number): Promise<number[]> {
  const servers: TcpServer[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < n; i++) {
      const server = createTcpServer();
      servers.push(server);
      ports.push(
        await new Promise<number>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
            const address = server.address();
            if (address === null || typeof address === 'string') reject(new Error('no TCP port'));
            else resolve(address.port);
          });
        }),
      );
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((done) => s.close(() => done()))));
  }
}
