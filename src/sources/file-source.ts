// The embedded default discovery source: a catalog file (YAML or JSON) watched for changes.
//
// Editors and tools rarely write a file in place: vim and `sed -i` write a temporary file and
// rename it over the original, Kubernetes swaps a `..data` symlink under a ConfigMap mount, and
// people delete and re-create files. Watching the file's inode alone loses track after the first
// such replacement, so this source watches the file's *directory* (depth 0) and reacts to events
// for the file itself and for Kubernetes' `..`-prefixed atomic-writer entries. Every event only
// schedules a re-read; reloads are serialised and compared against what was last seen, so spurious
// or duplicate events cost one small read and nothing else.
import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { CatalogDocumentError, parseCatalogText } from '../catalog/load-document.js';
import type { Catalog } from '../catalog/model.js';
import type { Logger } from '../telemetry/logger.js';
import type { CatalogSink, DiscoverySource } from './source.js';

export interface FileSourceOptions {
  /**
   * Poll the file system every this many milliseconds instead of using native file events.
   * For file systems where events do not arrive (some network mounts, Docker Desktop bind
   * mounts). Default: native events.
   */
  readonly pollIntervalMs?: number;
}

/** What the last reload observed; a reload that observes the same thing does nothing. */
type Observation =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'missing' }
  | { readonly kind: 'unreadable'; readonly message: string };

export class FileSource implements DiscoverySource {
  readonly name = 'file';

  private readonly absPath: string;
  private readonly dir: string;
  private readonly base: string;
  private readonly log: Logger;

  private sink: CatalogSink | undefined;
  private watcher: FSWatcher | undefined;
  private stopped = false;
  /** The reload loop currently running, if any. */
  private running: Promise<void> | undefined;
  /** A change arrived while a reload was running: read once more afterwards. */
  private pending = false;
  private last: Observation | undefined;
  /** Whether a catalog from this file has been applied (only affects log wording). */
  private applied = false;

  constructor(
    private readonly path: string,
    logger: Logger,
    private readonly opts: FileSourceOptions = {},
  ) {
    this.absPath = resolve(path);
    this.dir = dirname(this.absPath);
    this.base = basename(this.absPath);
    this.log = logger;
  }

  async start(sink: CatalogSink): Promise<void> {
    if (this.sink) throw new Error('FileSource already started');
    if (this.stopped) throw new Error('FileSource was stopped; create a new one');
    this.sink = sink;

    const polling = this.opts.pollIntervalMs !== undefined;
    const watcher = watch(this.dir, {
      depth: 0,
      ignoreInitial: true,
      persistent: true,
      // Tolerate the unlink+add pair of a rename-replace (reported as one change).
      atomic: !polling,
      // Do not read a file that is still being written.
      awaitWriteFinish: { stabilityThreshold: 50, pollInterval: 10 },
      usePolling: polling,
      ...(polling
        ? { interval: this.opts.pollIntervalMs, binaryInterval: this.opts.pollIntervalMs }
        : {}),
      ignored: (p: string) => !this.isRelevant(p),
    });
    this.watcher = watcher;
    watcher.on('all', (event, p) => {
      this.log.debug({ event, path: p }, 'catalog file event');
      this.schedule();
    });
    watcher.on('error', (err) => {
      if (this.stopped) return;
      const error = err instanceof Error ? err : new Error(String(err));
      this.log.warn({ err: error }, 'catalog file watcher error');
      this.report(new Error(`${this.path}: watcher error: ${error.message}`, { cause: error }));
    });
    const ready = new Promise<void>((res) => watcher.once('ready', () => res()));

    // Read right away, concurrently with the watcher setting up: a change that lands in between
    // is seen by the pending flag (events) or by this read (before the watch is in place).
    this.schedule();
    await ready;
    await this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const watcher = this.watcher;
    this.watcher = undefined;
    if (watcher) await watcher.close();
    // Let an in-flight read finish; it checks `stopped` before touching the sink.
    await this.running;
    this.sink = undefined;
  }

  /** Events for the catalog file itself, and for Kubernetes' `..data` symlink swaps. */
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
          await this.reload();
        } while (this.pending && !this.stopped);
      } finally {
        this.running = undefined;
      }
    })();
  }

  private async reload(): Promise<void> {
    let observation: Observation;
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

    switch (observation.kind) {
      case 'missing':
        this.log.warn(
          { file: this.path },
          this.applied
            ? 'catalog file missing; keeping the last good catalog'
            : 'catalog file missing; no catalog loaded',
        );
        this.report(new Error(`${this.path}: file not found (${this.absPath})`));
        return;
      case 'unreadable':
        this.log.warn(
          { file: this.path, error: observation.message },
          'catalog file unreadable; keeping the last good catalog',
        );
        this.report(new Error(`${this.path}: cannot read: ${observation.message}`));
        return;
      case 'text':
        break;
    }

    let catalog: Catalog;
    try {
      catalog = parseCatalogText(observation.text, this.path);
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      const problems = err instanceof CatalogDocumentError ? err.problems : [error.message];
      this.log.warn(
        { file: this.path, problems },
        this.applied
          ? 'catalog file rejected; keeping the last good catalog'
          : 'catalog file rejected; no catalog loaded',
      );
      this.report(error);
      return;
    }
    this.applied = true;
    this.log.info(
      {
        file: this.path,
        services: catalog.services.length,
        instances: catalog.services.reduce((n, s) => n + s.instances.length, 0),
      },
      'catalog file loaded',
    );
    try {
      this.sink?.update(catalog);
    } catch (err) {
      this.log.error({ err }, 'catalog sink failed to apply an update');
    }
  }

  private report(err: Error): void {
    if (this.stopped) return;
    try {
      this.sink?.error(err);
    } catch (e) {
      this.log.error({ err: e }, 'catalog sink failed to handle an error');
    }
  }
}

function sameObservation(a: Observation, b: Observation): boolean {
  if (a.kind === 'text' && b.kind === 'text') return a.text === b.text;
  if (a.kind === 'unreadable' && b.kind === 'unreadable') return a.message === b.message;
  return a.kind === b.kind;
}
