// One home for what the real components' starters (etcd, RabbitMQ, Consul, Jaeger) share: spawn
// a server with its output kept (the tail goes into failure messages), tie it to the test
// process's life (reaper.ts), wait until it is ready (failing at once if it exits), and stop it
// with SIGTERM, then SIGKILL after a grace period. A handle can be started again after a stop
// (an outage on the same ports and data).
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { killWithTestProcess } from './reaper.js';
import { waitFor } from './wait.js';

export interface ServerProcessOptions {
  /** Short name for the reaper, logs and errors ("etcd", "rabbitmq", …). */
  readonly name: string;
  /** Names this instance in failure messages (e.g. "etcd e1 on http://127.0.0.1:2379"). */
  readonly label: string;
  readonly bin: string;
  readonly args: readonly string[];
  /** env, cwd; stdio is always ignore/pipe/pipe. */
  readonly spawn?: Omit<SpawnOptions, 'stdio'>;
  /** Bytes of output kept (at least; trimmed in steps). */
  readonly logKeep: number;
  /** Polled until it returns true (a throw counts as "not yet"). */
  readonly ready: () => Promise<boolean>;
  /** What `ready` waits for, for the timeout error. */
  readonly readyWhat: string;
  readonly readyTimeoutMs: number;
  readonly readyIntervalMs: number;
  /** SIGKILL this long after a SIGTERM the process has not obeyed. */
  readonly killGraceMs: number;
}

export interface ServerProcess {
  /** Spawns a run and resolves once it is ready; on failure the run is stopped and it throws. */
  start(): Promise<void>;
  /** Sends `sig` (SIGKILL after the grace period); resolves once the run is gone. Idempotent. */
  signal(sig: NodeJS.Signals): Promise<void>;
  running(): boolean;
  /** SIGSTOP / SIGCONT: the process hangs with its sockets open (an unresponsive server). */
  pause(): void;
  resume(): void;
  /** The output of all runs (the last `logKeep` bytes or more). */
  logs(): string;
  /** The output's tail under a header naming the instance and how its run ended. */
  tail(): string;
}

export function serverProcess(opts: ServerProcessOptions): ServerProcess {
  let output = '';
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let exitInfo: string | undefined;

  const running = (): boolean => child !== undefined && exitInfo === undefined;
  const tail = (): string =>
    `--- ${opts.label} (${exitInfo ?? 'running'}) log tail ---\n${output.slice(-8192)}`;

  const signal = async (sig: NodeJS.Signals): Promise<void> => {
    const proc = child;
    if (!proc || !running()) return;
    proc.kill(sig);
    const timer = setTimeout(() => proc.kill('SIGKILL'), opts.killGraceMs);
    await exited;
    clearTimeout(timer);
  };

  const start = async (): Promise<void> => {
    exitInfo = undefined;
    const proc = spawn(opts.bin, opts.args, { ...opts.spawn, stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    const append = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      if (output.length > opts.logKeep * 1.25) output = output.slice(-opts.logKeep);
    };
    proc.stdout?.on('data', append);
    proc.stderr?.on('data', append);
    exited = new Promise<void>((resolve) => {
      proc.once('exit', (code, sig) => {
        exitInfo = sig ? `signal ${sig}` : `code ${code}`;
        resolve();
      });
    });
    proc.once('error', (err) => {
      exitInfo ??= `spawn failed: ${err.message}`;
    });
    killWithTestProcess(proc, opts.name);
    try {
      await waitFor(opts.ready, {
        what: opts.readyWhat,
        timeoutMs: opts.readyTimeoutMs,
        intervalMs: opts.readyIntervalMs,
        details: tail,
        failIf: () => (exitInfo === undefined ? undefined : `${opts.name} exited (${exitInfo})`),
      });
    } catch (err) {
      await signal('SIGTERM');
      throw err;
    }
  };

  const pause = (): void => void (running() && child!.kill('SIGSTOP'));
  const resume = (): void => void (running() && child!.kill('SIGCONT'));

  return { start, signal, running, pause, resume, logs: () => output, tail };
}
