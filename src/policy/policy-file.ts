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
import { WatchedDocument, type WatchedDocumentSpec } from '../sources/watched-document.js';
import { parsePolicyText, type Policy } from './schema.js';

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

const POLICY_DOCUMENT: WatchedDocumentSpec<Policy> = {
  kind: 'policy',
  kept: 'policy',
  none: 'no policy loaded (nothing is authorised by it yet)',
  unchanged: 'the policy did not',
  parse: (text, path) => parsePolicyText(text, path),
  fingerprint: (policy) => JSON.stringify(policy),
  summary: (policy) => ({
    planes: Object.keys(policy.planes).length,
    rules: policy.rules.length,
    defaultAction: policy.defaults.action,
  }),
};

export class PolicyFile extends WatchedDocument<Policy> implements PolicyProvider {
  constructor(path: string, log: Logger, opts: PolicyFileOptions = {}) {
    super(path, log, POLICY_DOCUMENT, opts);
  }
}
