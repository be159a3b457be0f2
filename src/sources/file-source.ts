// The embedded default discovery source: a catalog file (YAML or JSON) watched for changes.
// Following the file through editors' renames, ConfigMap symlink swaps and re-creation is
// WatchedFile's job; this turns what it observes into catalogs (or errors that keep the last
// good catalog in force).
import { IncrementalCatalogParser } from '../catalog/incremental-parse.js';
import { CatalogDocumentError } from '../catalog/load-document.js';
import type { Catalog } from '../catalog/model.js';
import type { Logger } from '../telemetry/logger.js';
import type { CatalogSink, DiscoverySource } from './source.js';
import { WatchedFile, type FileObservation, type WatchedFileOptions } from './watched-file.js';

export type FileSourceOptions = WatchedFileOptions;

export class FileSource implements DiscoverySource {
  readonly name = 'file';

  private readonly file: WatchedFile;
  /** Validates only the service entries that changed since the last good read. */
  private readonly parser = new IncrementalCatalogParser();
  private sink: CatalogSink | undefined;
  private stopped = false;
  /** Whether a catalog from this file has been applied (only affects log wording). */
  private applied = false;

  constructor(
    private readonly path: string,
    private readonly log: Logger,
    opts: FileSourceOptions = {},
  ) {
    this.file = new WatchedFile(
      path,
      {
        observed: (o) => this.observed(o),
        watchError: (err) => {
          this.log.warn({ err }, 'catalog file watcher error');
          this.report(new Error(`${this.path}: watcher error: ${err.message}`, { cause: err }));
        },
        event: (event, p) => this.log.debug({ event, path: p }, 'catalog file event'),
      },
      opts,
    );
  }

  /** Resolves once the watch is in place and the first read reached the sink. */
  async start(sink: CatalogSink): Promise<void> {
    if (this.sink) throw new Error('FileSource already started');
    if (this.stopped) throw new Error('FileSource was stopped; create a new one');
    this.sink = sink;
    await this.file.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.file.stop();
    this.sink = undefined;
  }

  private observed(observation: FileObservation): void {
    if (this.stopped) return;
    const keeping = this.applied ? 'keeping the last good catalog' : 'no catalog loaded';
    switch (observation.kind) {
      case 'missing':
        this.log.warn({ file: this.path }, `catalog file missing; ${keeping}`);
        this.report(new Error(`${this.path}: file not found (${this.file.absPath})`));
        return;
      case 'unreadable':
        this.log.warn(
          { file: this.path, error: observation.message },
          `catalog file unreadable; ${keeping}`,
        );
        this.report(new Error(`${this.path}: cannot read: ${observation.message}`));
        return;
      case 'text':
        break;
    }
    let catalog: Catalog;
    try {
      catalog = this.parser.parse(observation.text, this.path);
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      const problems = err instanceof CatalogDocumentError ? err.problems : [error.message];
      this.log.warn({ file: this.path, problems }, `catalog file rejected; ${keeping}`);
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
