// The CLI from source (`node --import tsx src/cli/main.ts ARGS`) as a child process of a test:
// started in the repository root, its output kept, tied to the test process's life (reaper.ts).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { httpGet } from './http-app.js';
import { killWithTestProcess } from './reaper.js';
import { cliEntry } from './tools.js';
import { waitFor } from './wait.js';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

export interface CliProcess {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** stdout and stderr interleaved as they arrived. */
  output(): string;
  /** Resolves with the exit code (null after a signal) once the process is gone. */
  readonly exited: Promise<number | null>;
  /** SIGTERM, SIGKILL after `graceMs` (default 5 s); resolves once the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

/** Starts `lucid-mesh ARGS` with `env` over the test's environment. */
export function spawnCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): CliProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', cliEntry, ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  killWithTestProcess(child, `lucid-mesh ${args[0] ?? ''}`);
  let stdout = '';
  let stderr = '';
  let output = '';
  child.stdout!.on('data', (c: Buffer) => {
    stdout += c.toString();
    output += c.toString();
  });
  child.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString();
    output += c.toString();
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  const stop = async (graceMs = 5_000): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    output: () => output,
    exited,
    stop,
  };
}

/**
 * `serve --catalog CATALOG` on loopback ports with mTLS and proxy authentication off, the
 * start most CLI tests share; their own flags go after.
 */
export function plainServeArgs(catalog: string, ports: { admin: number; xds: number }): string[] {
  return [
    'serve',
    ...['--catalog', catalog, '--host', '127.0.0.1', '--mtls', 'off', '--auth', 'none'],
    ...['--admin-port', String(ports.admin), '--xds-port', String(ports.xds)],
  ];
}

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `lucid-mesh ARGS` to its exit (killed after `timeoutMs`): exit code and output. */
export function runCli(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 30_000,
): Promise<CliResult> {
  return new Promise((resolve) =>
    execFile(
      process.execPath,
      ['--import', 'tsx', cliEntry, ...args],
      { cwd: repoRoot, timeout: timeoutMs, env: { ...process.env, ...env } },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    ),
  );
}

/**
 * Waits until a spawned `serve` answers /ready with 200 on `adminPort`; fails at once if it
 * exits, with the tail of its output.
 */
export async function waitServeReady(
  serve: CliProcess,
  adminPort: number,
  what: string,
): Promise<void> {
  await waitFor(async () => (await httpGet(`http://127.0.0.1:${adminPort}/ready`)).status === 200, {
    timeoutMs: 30_000,
    what,
    failIf: () =>
      serve.child.exitCode !== null ? `serve exited ${serve.child.exitCode}` : undefined,
    details: () => serve.output().slice(-100_000),
  });
}
