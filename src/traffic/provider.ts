// Where the traffic configuration comes from (a watched file, Consul's config entries, etcd),
// as the control plane sees it: the configuration in force and a signal when it changes.
import type { TrafficConfig, Unsupported } from './types.js';

/** An entry that could not be applied, and why (shown in status and /v1/config/errors). */
export interface ConfigProblem {
  /** Entry kind, e.g. "service-router". */
  readonly kind: string;
  /** Entry name (the service it configures). */
  readonly name: string;
  /** What is wrong, naming the field path and the value. */
  readonly message: string;
}

export interface TrafficProvider {
  /** Short name for logs: "file", "consul", "etcd". */
  readonly name: string;
  /** The configuration in force; undefined until a first valid one has been loaded. */
  current(): TrafficConfig | undefined;
  /** Entries that were rejected while the rest applies (Consul, etcd: per entry). */
  problems(): readonly ConfigProblem[];
  /** Calls `listener` after every change of the effective configuration. */
  onChange(listener: (config: TrafficConfig) => void): () => void;
  /** Starts watching; resolves after the first read (which may have failed: see current()). */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export type { Unsupported };
