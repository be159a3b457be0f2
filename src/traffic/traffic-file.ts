// The traffic configuration from a watched file (YAML or JSON: a list of Consul config entries),
// live-reloaded like the policy file. A bad edit (syntax, any invalid entry, a missing or
// unreadable file) keeps the last good configuration in force and logs every problem; the file
// is applied whole or not at all, so problems() is always empty and lastError() says why the
// file's content is not in force. Listeners hear only effective changes: an edit that changes
// no entry (a comment, key order) notifies no one.
import { LineCounter, parseDocument } from 'yaml';
import { DocumentError, findJsonErrorOffset, isJsonFile } from '../catalog/load-document.js';
import type { Logger } from '../telemetry/logger.js';
import { WatchedFile, type FileObservation } from '../sources/watched-file.js';
import type { ConfigProblem, TrafficProvider } from './provider.js';
import { TrafficDocumentError, parseTrafficDocument } from './schema.js';
import type { TrafficConfig, Unsupported } from './types.js';

/**
 * Parses and validates the text of a traffic file. `fileName` picks the syntax (`.json` → JSON,
 * anything else → YAML) and prefixes every error. Duplicate keys are errors in both.
 * `previous`: unchanged entries keep its objects (see assembleTraffic).
 * @throws TrafficDocumentError
 */
export function parseTrafficText(
  text: string,
  fileName: string,
  previous?: TrafficConfig,
): TrafficConfig {
  if (text.trim() === '') {
    // Far more likely a half-written file than an intent to drop every entry: say `[]`.
    throw new TrafficDocumentError(fileName, [
      'the document is empty (write `[]` for no traffic configuration)',
    ]);
  }
  const lineCounter = new LineCounter();
  // JSON is YAML: one parser finds duplicate keys in both (JSON.parse would keep the last).
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  let value: unknown;
  if (isJsonFile(fileName)) {
    try {
      value = JSON.parse(text);
    } catch (err) {
      const offset = findJsonErrorOffset(text);
      const where = offset === undefined ? '' : `${position(lineCounter, offset)}: `;
      const detail = (err as Error).message.replace(/ at position \d+.*$/, '');
      throw new TrafficDocumentError(fileName, [`${where}invalid JSON: ${detail}`], { cause: err });
    }
  }
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => `${position(lineCounter, e.pos[0])}: ${e.message}`);
    throw new TrafficDocumentError(fileName, problems, { cause: doc.errors[0] });
  }
  if (value === undefined) {
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      throw new TrafficDocumentError(fileName, [(err as Error).message], { cause: err });
    }
  }
  return parseTrafficDocument(value, { source: fileName, previous });
}

function position(lineCounter: LineCounter, offset: number): string {
  const { line, col } = lineCounter.linePos(offset);
  return `line ${line}, column ${col}`;
}

export interface TrafficFileOptions {
  /** Poll the file every this many ms instead of native file events (see WatchedFile). */
  readonly pollIntervalMs?: number;
}

export class TrafficFile implements TrafficProvider {
  readonly name = 'file';
  private readonly file: WatchedFile;
  private readonly changeListeners = new Set<(config: TrafficConfig) => void>();
  private readonly errorListeners = new Set<(err: Error) => void>();
  private config: TrafficConfig | undefined;
  private problem: Error | undefined;

  constructor(
    readonly path: string,
    private readonly log: Logger,
    opts: TrafficFileOptions = {},
  ) {
    this.file = new WatchedFile(
      path,
      {
        observed: (o) => this.observed(o),
        watchError: (err) => {
          this.log.warn({ err, file: path }, 'traffic file watcher error');
          this.report(new Error(`${path}: watcher error: ${err.message}`, { cause: err }));
        },
        event: (event, p) => this.log.debug({ event, path: p }, 'traffic file event'),
      },
      opts,
    );
  }

  /** Starts watching; resolves after the first read (which may have failed: see current()). */
  start(): Promise<void> {
    return this.file.start();
  }

  stop(): Promise<void> {
    return this.file.stop();
  }

  current(): TrafficConfig | undefined {
    return this.config;
  }

  /** Always empty: a file is applied whole or not at all (see lastError()). */
  problems(): readonly ConfigProblem[] {
    return [];
  }

  /**
   * Why the file's current content is not in force (syntax or entry problems, missing,
   * unreadable, watcher failure); undefined when the last read was applied.
   */
  lastError(): Error | undefined {
    return this.problem;
  }

  onChange(listener: (config: TrafficConfig) => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /** Calls `listener` with every problem (after it has been logged). */
  onError(listener: (err: Error) => void): () => void {
    this.errorListeners.add(listener);
    return () => this.errorListeners.delete(listener);
  }

  private observed(o: FileObservation): void {
    const keeping = this.config
      ? 'keeping the last good traffic configuration'
      : 'no traffic configuration loaded (default routing applies)';
    if (o.kind === 'missing') {
      this.log.warn({ file: this.path }, `traffic file missing; ${keeping}`);
      this.report(new Error(`${this.path}: file not found (${this.file.absPath})`));
      return;
    }
    if (o.kind === 'unreadable') {
      this.log.warn({ file: this.path, error: o.message }, `traffic file unreadable; ${keeping}`);
      this.report(new Error(`${this.path}: cannot read: ${o.message}`));
      return;
    }
    let config: TrafficConfig;
    try {
      config = parseTrafficText(o.text, this.path, this.config);
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      const problems = err instanceof DocumentError ? err.problems : [error.message];
      this.log.warn({ file: this.path, problems }, `traffic file rejected; ${keeping}`);
      this.report(error);
      return;
    }
    this.problem = undefined;
    // assembleTraffic returns the previous object itself when nothing changed.
    if (config === this.config) {
      this.log.debug({ file: this.path }, 'traffic file changed; the configuration did not');
      return;
    }
    const before = this.config?.unsupported;
    this.config = config;
    this.log.info({ file: this.path, ...counts(config) }, 'traffic file loaded');
    if (config.unsupported.length > 0 && config.unsupported !== before) {
      // Listed once per change of the list, not on every reload.
      this.log.warn(
        { file: this.path, unsupported: config.unsupported.map(describeUnsupported) },
        'traffic file uses Consul features lucid-mesh does not implement; they are not applied',
      );
    }
    for (const listener of [...this.changeListeners]) {
      try {
        listener(config);
      } catch (err) {
        this.log.error({ err }, 'traffic change listener failed');
      }
    }
  }

  private report(err: Error): void {
    this.problem = err;
    for (const listener of [...this.errorListeners]) {
      try {
        listener(err);
      } catch (e) {
        this.log.error({ err: e }, 'traffic error listener failed');
      }
    }
  }
}

/** Entries per kind, for logs and `config check`. */
export function counts(config: TrafficConfig): Record<string, number> {
  return {
    'proxy-defaults': config.proxyDefaults ? 1 : 0,
    'service-defaults': config.serviceDefaults.size,
    'service-router': config.routers.size,
    'service-splitter': config.splitters.size,
    'service-resolver': config.resolvers.size,
    'service-intentions': config.intentions.size,
  };
}

/** `service-defaults/web: MeshGateway`, or `mesh/mesh: (the whole entry kind)`. */
export function describeUnsupported(u: Unsupported): string {
  return `${u.kind}/${u.name}: ${u.field || '(the whole entry: lucid-mesh does not implement this kind)'}`;
}
