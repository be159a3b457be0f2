// Where the traffic configuration comes from (a watched file, Consul's config entries, etcd),
// as the control plane sees it: the configuration in force and a signal when it changes.
import type { TrafficConfig, Unsupported } from './types.js';

/** An entry that could not be applied, and why (shown in status and /v1/config/errors). */
export interface ConfigProblem {
  /** Entry kind, e.g. "service-router". */
  readonly kind: string;
  /**
   * Entry name (the service it configures); for a whole input (kind source, policy,
   * traffic-file) where it comes from: a file path, "consul", "etcd".
   */
  readonly name: string;
  /** What is wrong, naming the field path and the value. */
  readonly message: string;
}

/** Kinds whose problem names a whole input (a file path, a backend), not an entry. */
const INPUT_KINDS: ReadonlySet<string> = new Set(['source', 'policy', 'traffic-file', 'etcd-key']);

/**
 * How status, events and config check name a problem: `service-router/api` for an entry (as
 * Consul writes Kind/Name), `policy /etc/lucid/policy.yaml` for an input, whose name may be a
 * path (`policy//etc/...` read as a path; a relative `policy.yaml` too).
 */
export function problemLabel(p: Pick<ConfigProblem, 'kind' | 'name'>): string {
  return INPUT_KINDS.has(p.kind) ? `${p.kind} ${p.name}` : `${p.kind}/${p.name}`;
}

export interface TrafficProvider {
  /** Short name for logs: "file", "consul", "etcd". */
  readonly name: string;
  /** The configuration in force; undefined until a first valid one has been loaded. */
  current(): TrafficConfig | undefined;
  /** Entries that were rejected while the rest applies (Consul, etcd: per entry). */
  problems(): readonly ConfigProblem[];
  /**
   * Why the backend cannot be read now (etcd unreachable, permission denied), until it can be
   * again; undefined while it is read. A file's rejected content is not this (TrafficFile).
   */
  failure?(): string | undefined;
  /** Calls `listener` after every change of the effective configuration. */
  onChange(listener: (config: TrafficConfig) => void): () => void;
  /** Starts watching; resolves after the first read (which may have failed: see current()). */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export type { Unsupported };
