// Request/response over a child process's IPC channel (structured-clone serialisation), plus
// the events the child sends on its own. Used for the control plane and the load workers.
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../src/package-root.js';

// Found by walking up: this module also runs compiled, from bench/out/js/bench/.
export const REPO_ROOT = packageRoot(import.meta.url);

interface Pending {
  resolve(body: unknown): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

type Listener = (event: Record<string, unknown>) => void;

export class IpcChild {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Set<Listener>();
  private exitInfo: string | undefined;
  readonly exited: Promise<string>;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    child.on('message', (raw: unknown) => {
      const msg = raw as Record<string, unknown>;
      if (msg.ev === 'reply' && typeof msg.id === 'number') {
        const p = this.pending.get(msg.id);
        if (!p) return;
        this.pending.delete(msg.id);
        clearTimeout(p.timer);
        const body = msg.body as { error?: string } | undefined;
        if (body && typeof body === 'object' && typeof body.error === 'string') {
          p.reject(new Error(`${name}: ${body.error}`));
        } else p.resolve(body);
        return;
      }
      for (const l of this.listeners) l(msg);
    });
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = signal ? `signal ${signal}` : `code ${code}`;
        for (const [, p] of this.pending) {
          clearTimeout(p.timer);
          p.reject(new Error(`${name} exited (${this.exitInfo})`));
        }
        this.pending.clear();
        resolve(this.exitInfo);
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get alive(): boolean {
    return this.exitInfo === undefined;
  }

  request<T>(message: Record<string, unknown>, timeoutMs = 30_000): Promise<T> {
    if (!this.alive) return Promise.reject(new Error(`${this.name} exited (${this.exitInfo})`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: no reply to ${String(message.op)} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (b: unknown) => void, reject, timer });
      this.child.send({ ...message, id });
    });
  }

  on(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves with the first event for which `match` returns something other than undefined. */
  waitFor<T>(
    match: (e: Record<string, unknown>) => T | undefined,
    timeoutMs: number,
    what: string,
  ): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`${this.name}: ${what} did not happen within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.on((e) => {
        const v = match(e);
        if (v === undefined) return;
        clearTimeout(timer);
        off();
        resolve(v);
      });
      void this.exited.then((info) => {
        clearTimeout(timer);
        off();
        reject(new Error(`${this.name} exited (${info}) while waiting for ${what}`));
      });
    });
  }

  /** SIGTERM, then SIGKILL after `graceMs`. Resolves once gone. */
  async kill(graceMs = 3000): Promise<void> {
    if (!this.alive) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Forks a bench/ entry (given as its .ts path) from its compiled build (build.ts), with IPC. */
export function forkCompiled(
  name: string,
  entry: string,
  opts: {
    env?: Record<string, string>;
    execArgv?: string[];
    stdio?: Array<'ignore' | 'inherit' | number>;
  } = {},
): IpcChild {
  // The compiled twin of `entry` (build.ts): plain Node, as the product runs.
  const compiled = join(REPO_ROOT, 'bench', 'out', 'js', 'bench', entry.replace(/\.ts$/, '.js'));
  const child = fork(compiled, [], {
    cwd: REPO_ROOT,
    execArgv: opts.execArgv ?? [],
    env: { ...process.env, ...opts.env },
    serialization: 'advanced',
    stdio: [...(opts.stdio ?? ['ignore', 'inherit', 'inherit']), 'ipc'],
  });
  return new IpcChild(name, child);
}

/** Every child forked by the harness, killed if the harness dies first. */
const live = new Set<IpcChild>();
let hooked = false;
export function track(child: IpcChild): IpcChild {
  live.add(child);
  void child.exited.then(() => live.delete(child));
  if (!hooked) {
    hooked = true;
    process.on('exit', () => {
      for (const c of live) {
        try {
          c.child.kill('SIGKILL');
        } catch {
          // gone
        }
      }
    });
  }
  return child;
}
