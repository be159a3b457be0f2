// A file watched for changes, reporting what it holds after every change: its text, that it is
// missing, or that it cannot be read. Used by the catalog file source and the policy file;
// parsing and last-good handling are the caller's.
//
// Editors and tools rarely write a file in place (vim and `sed -i` rename a temp file over it,
// Kubernetes swaps a `..data` symlink under a ConfigMap mount), so the *directory* is watched
// (depth 0) for events on the file and on `..`-prefixed atomic-writer entries. Events only
// schedule a re-read; re-reads are serialised and an observation equal to the previous one is
// not reported, so spurious or duplicate events cost one small read.
import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';

export type FileObservation =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'missing' }
  | { readonly kind: 'unreadable'; readonly message: string };

export interface WatchedFileHandlers {
  /**
   * What the file holds now; only called when it differs from the previous observation.
   * Should not throw (a throw is reported to watchError).
   */
  observed(observation: FileObservation): void;
  /** The watcher itself failed (the file may no longer be followed). */
  watchError(err: Error): void;
  /** Every raw file system event (for debug logs). */
  event?(event: string, path: string): void;
}

export interface WatchedFileOptions {
  /**
   * Poll every this many milliseconds instead of using native file events (network mounts,
   * Docker Desktop bind mounts). Default: native events.
   */
  readonly pollIntervalMs?: number;
}

export class WatchedFile {
  readonly absPath: string;
  private readonly dir: string;
  private readonly base: string;
  private watcher: FSWatcher | undefined;
  private started = false;
  private stopped = false;
  private running: Promise<void> | undefined;
  private pending = false;
  private last: FileObservation | undefined;
  private settleTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly path: string,
    private readonly handlers: WatchedFileHandlers,
    private readonly opts: WatchedFileOptions = {},
  ) {
    this.absPath = resolve(path);
    this.dir = dirname(this.absPath);
    this.base = basename(this.absPath);
  }

  /** Starts watching; resolves once the watcher is ready and the first read was reported. */
  async start(): Promise<void> {
    if (this.started) throw new Error('WatchedFile already started');
    if (this.stopped) throw new Error('WatchedFile was stopped; create a new one');
    this.started = true;
    const polling = this.opts.pollIntervalMs !== undefined;
    const watcher = watch(this.dir, {
      depth: 0,
      ignoreInitial: true,
      persistent: true,
      atomic: !polling,
      awaitWriteFinish: { stabilityThreshold: 50, pollInterval: 10 },
      usePolling: polling,
      ...(polling
        ? { interval: this.opts.pollIntervalMs, binaryInterval: this.opts.pollIntervalMs }
        : {}),
      ignored: (p: string) => !this.isRelevant(p),
    });
    this.watcher = watcher;
    watcher.on('all', (event, p) => {
      this.handlers.event?.(event, p);
      this.schedule();
    });
    watcher.on('error', (err) => {
      if (this.stopped) return;
      this.handlers.watchError(err instanceof Error ? err : new Error(String(err)));
    });
    const ready = new Promise<void>((res) => watcher.once('ready', () => res()));
    // Read at once, concurrently with the watcher setting up; a change in between is caught by
    // the pending flag (events) or by this read (before the watch is in place).
    this.schedule();
    await ready;
    await this.running;
    // A poller takes its baseline stat asynchronously, after 'ready' when the thread pool is
    // busy; a change made between our first read and that baseline is never reported as a
    // change. One more read two intervals on closes that window (a no-op when nothing changed).
    if (polling) {
      this.settleTimer = setTimeout(() => this.schedule(), 2 * (this.opts.pollIntervalMs ?? 0));
      this.settleTimer.unref();
    }
  }

  /** Stops watching; no handler is called after this resolves. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.settleTimer);
    const watcher = this.watcher;
    this.watcher = undefined;
    if (watcher) await watcher.close();
    await this.running;
  }

  /** Re-reads the file now (as if an event had arrived); resolves when the read is done. */
  async refresh(): Promise<void> {
    this.schedule();
    await this.running;
  }

  private isRelevant(p: string): boolean {
    const abs = resolve(p);
    if (abs === this.dir) return true;
    if (dirname(abs) !== this.dir) return false;
    const name = basename(abs);
    return name === this.base || name.startsWith('..');
  }

  private schedule(): void {
    if (this.stopped) return;
    if (this.running) {
      this.pending = true;
      return;
    }
    this.running = (async () => {
      try {
        do {
          this.pending = false;
          await this.read();
        } while (this.pending && !this.stopped);
      } finally {
        this.running = undefined;
      }
    })();
  }

  private async read(): Promise<void> {
    let observation: FileObservation;
    try {
      observation = { kind: 'text', text: await readFile(this.absPath, 'utf8') };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      observation =
        code === 'ENOENT' || code === 'ENOTDIR'
          ? { kind: 'missing' }
          : { kind: 'unreadable', message: err instanceof Error ? err.message : String(err) };
    }
    if (this.stopped) return;
    if (this.last && sameObservation(this.last, observation)) return;
    this.last = observation;
    try {
      this.handlers.observed(observation);
    } catch (err) {
      // A throwing handler must not turn into an unhandled rejection of the reload loop.
      const error = err instanceof Error ? err : new Error(String(err));
      this.handlers.watchError(new Error(`handler failed: ${error.message}`, { cause: error }));
    }
  }
}

function sameObservation(a: FileObservation, b: FileObservation): boolean {
  if (a.kind === 'text' && b.kind === 'text') return a.text === b.text;
  if (a.kind === 'unreadable' && b.kind === 'unreadable') return a.message === b.message;
  return a.kind === b.kind;
}
