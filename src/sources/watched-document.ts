// A document from a watched file (the policy, the traffic configuration), live-reloaded: each
// new text is parsed; a bad edit (syntax, schema, a missing or unreadable file) keeps the last
// good value in force, logs why and reports it (lastError(), onError); the next good edit
// applies. Listeners hear only effective changes: an edit whose value has the same fingerprint
// (a comment, key order) notifies no one. The document types differ only in the spec below.
import { DocumentError } from '../catalog/load-document.js';
import type { Logger } from '../telemetry/logger.js';
import { WatchedFile, type FileObservation, type WatchedFileOptions } from './watched-file.js';

export interface WatchedDocumentSpec<T> {
  /** Starts every log message: "policy" → "policy file loaded", "policy change listener failed". */
  readonly kind: string;
  /** While a value is in force, a rejected edit is logged "…; keeping the last good <kept>". */
  readonly kept: string;
  /** While none is: "…; <none>", e.g. "no policy loaded (nothing is authorised by it yet)". */
  readonly none: string;
  /** An edit that changes no value is logged "<kind> file changed; <unchanged>". */
  readonly unchanged: string;
  /**
   * Parses and validates the text (`path` names the file in errors; `previous` is the value in
   * force). A DocumentError's problems are logged one by one.
   */
  parse(text: string, path: string, previous: T | undefined): T;
  /** Values with the same fingerprint (`===`) are the same effective value. */
  fingerprint(value: T): unknown;
  /** Log fields of "<kind> file loaded". */
  summary(value: T): Record<string, unknown>;
  /** After "<kind> file loaded" is logged, before listeners hear of `value`. */
  loaded?(value: T, previous: T | undefined, log: Logger, path: string): void;
}

export class WatchedDocument<T> {
  private readonly file: WatchedFile;
  private readonly changeListeners = new Set<(value: T) => void>();
  private readonly errorListeners = new Set<(err: Error) => void>();
  private value: T | undefined;
  private print: unknown;
  private problem: Error | undefined;

  constructor(
    readonly path: string,
    private readonly log: Logger,
    private readonly spec: WatchedDocumentSpec<T>,
    opts: WatchedFileOptions = {},
  ) {
    this.file = new WatchedFile(
      path,
      {
        observed: (o) => this.observed(o),
        watchError: (err) => {
          this.log.warn({ err, file: path }, `${spec.kind} file watcher error`);
          this.report(new Error(`${path}: watcher error: ${err.message}`, { cause: err }));
        },
        event: (event, p) => this.log.debug({ event, path: p }, `${spec.kind} file event`),
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

  current(): T | undefined {
    return this.value;
  }

  /**
   * Why the file's current content is not in force (syntax or schema problems, missing,
   * unreadable, watcher failure); undefined when the last read was applied.
   */
  lastError(): Error | undefined {
    return this.problem;
  }

  onChange(listener: (value: T) => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /** Calls `listener` with every problem (after it has been logged). */
  onError(listener: (err: Error) => void): () => void {
    this.errorListeners.add(listener);
    return () => this.errorListeners.delete(listener);
  }

  private observed(o: FileObservation): void {
    const { kind } = this.spec;
    const keeping =
      this.value !== undefined ? `keeping the last good ${this.spec.kept}` : this.spec.none;
    if (o.kind === 'missing') {
      this.log.warn({ file: this.path }, `${kind} file missing; ${keeping}`);
      this.report(new Error(`${this.path}: file not found (${this.file.absPath})`));
      return;
    }
    if (o.kind === 'unreadable') {
      this.log.warn({ file: this.path, error: o.message }, `${kind} file unreadable; ${keeping}`);
      this.report(new Error(`${this.path}: cannot read: ${o.message}`));
      return;
    }
    let value: T;
    try {
      value = this.spec.parse(o.text, this.path, this.value);
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      const problems = err instanceof DocumentError ? err.problems : [error.message];
      this.log.warn({ file: this.path, problems }, `${kind} file rejected; ${keeping}`);
      this.report(error);
      return;
    }
    this.problem = undefined;
    const print = this.spec.fingerprint(value);
    if (print === this.print) {
      this.log.debug({ file: this.path }, `${kind} file changed; ${this.spec.unchanged}`);
      return;
    }
    const previous = this.value;
    this.value = value;
    this.print = print;
    this.log.info({ file: this.path, ...this.spec.summary(value) }, `${kind} file loaded`);
    this.spec.loaded?.(value, previous, this.log, this.path);
    for (const listener of [...this.changeListeners]) {
      try {
        listener(value);
      } catch (err) {
        this.log.error({ err }, `${kind} change listener failed`);
      }
    }
  }

  private report(err: Error): void {
    this.problem = err;
    for (const listener of [...this.errorListeners]) {
      try {
        listener(err);
      } catch (e) {
        this.log.error({ err: e }, `${this.spec.kind} error listener failed`);
      }
    }
  }
}
