// The authorization policy from a watched file (YAML or JSON), live-reloaded. A bad edit (syntax,
// schema, a missing or unreadable file) keeps the last good policy in force and logs why; the
// next good edit applies. Listeners hear about every change of the effective policy (an edit that
// changes nothing, e.g. a comment, notifies no one).
//
// Wiring (serve): `--policy FILE` / LUCID_POLICY → new PolicyFile(path, logger); await start();
// onChange → re-translate. If current() is undefined the first load failed (lastError() says
// why): serving config without the policy would fail open, so hold configuration back and report
// not ready until a valid policy arrives (docs/policy.md promises this, like the catalog).
import type { Logger } from '../telemetry/logger.js';
import { WatchedFile, type FileObservation } from '../sources/watched-file.js';
import { PolicyDocumentError, parsePolicyText, type Policy } from './schema.js';

/** Anything that supplies the current policy and announces changes (file, Consul KV, ...). */
export interface PolicyProvider {
  /** The policy in force; undefined until a first valid one has been loaded. */
  current(): Policy | undefined;
  /** Calls `listener` with every new effective policy. Returns an unsubscribe function. */
  onChange(listener: (policy: Policy) => void): () => void;
  /** Stops watching, if the provider watches anything. */
  stop?(): Promise<void>;
}

export interface PolicyFileOptions {
  /** Poll the file every this many ms instead of native file events (see WatchedFile). */
  readonly pollIntervalMs?: number;
}

export class PolicyFile implements PolicyProvider {
  private readonly file: WatchedFile;
  private readonly changeListeners = new Set<(policy: Policy) => void>();
  private readonly errorListeners = new Set<(err: Error) => void>();
  private policy: Policy | undefined;
  private fingerprint: string | undefined;
  private problem: Error | undefined;

  constructor(
    readonly path: string,
    private readonly log: Logger,
    opts: PolicyFileOptions = {},
  ) {
    this.file = new WatchedFile(
      path,
      {
        observed: (o) => this.observed(o),
        watchError: (err) => {
          this.log.warn({ err, file: path }, 'policy file watcher error');
          this.report(new Error(`${path}: watcher error: ${err.message}`, { cause: err }));
        },
        event: (event, p) => this.log.debug({ event, path: p }, 'policy file event'),
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

  current(): Policy | undefined {
    return this.policy;
  }

  /**
   * Why the file's current content is not in force (syntax/schema problems, missing, unreadable,
   * watcher failure); undefined when the last read was applied.
   */
  lastError(): Error | undefined {
    return this.problem;
  }

  onChange(listener: (policy: Policy) => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /** Calls `listener` with every problem (after it has been logged). */
  onError(listener: (err: Error) => void): () => void {
    this.errorListeners.add(listener);
    return () => this.errorListeners.delete(listener);
  }

  private observed(o: FileObservation): void {
    const keeping = this.policy
      ? 'keeping the last good policy'
      : 'no policy loaded (nothing is authorised by it yet)';
    if (o.kind === 'missing') {
      this.log.warn({ file: this.path }, `policy file missing; ${keeping}`);
      this.report(new Error(`${this.path}: file not found (${this.file.absPath})`));
      return;
    }
    if (o.kind === 'unreadable') {
      this.log.warn({ file: this.path, error: o.message }, `policy file unreadable; ${keeping}`);
      this.report(new Error(`${this.path}: cannot read: ${o.message}`));
      return;
    }
    let policy: Policy;
    try {
      policy = parsePolicyText(o.text, this.path);
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      const problems = err instanceof PolicyDocumentError ? err.problems : [error.message];
      this.log.warn({ file: this.path, problems }, `policy file rejected; ${keeping}`);
      this.report(error);
      return;
    }
    this.problem = undefined;
    const fingerprint = JSON.stringify(policy);
    if (fingerprint === this.fingerprint) {
      this.log.debug({ file: this.path }, 'policy file changed; the policy did not');
      return;
    }
    this.policy = policy;
    this.fingerprint = fingerprint;
    this.log.info(
      {
        file: this.path,
        planes: Object.keys(policy.planes).length,
        rules: policy.rules.length,
        defaultAction: policy.defaults.action,
      },
      'policy file loaded',
    );
    for (const listener of [...this.changeListeners]) {
      try {
        listener(policy);
      } catch (err) {
        this.log.error({ err }, 'policy change listener failed');
      }
    }
  }

  private report(err: Error): void {
    this.problem = err;
    for (const listener of [...this.errorListeners]) {
      try {
        listener(err);
      } catch (e) {
        this.log.error({ err: e }, 'policy error listener failed');
      }
    }
  }
}
