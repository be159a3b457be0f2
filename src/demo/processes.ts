// The demo's moving parts besides the control plane: tiny HTTP apps and Envoy processes.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
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
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  return { name, logFile, child };
}
