// What the shared CA store needs from a key-value store (Consul KV, etcd): reads with a
// version, compare-and-set writes, a watch per key, and a leader election. Keys are full keys
// (the prefix included). Every request reports to a StateHealth, so `status` and metrics show
// whether the store is reachable.

export interface KvEntry {
  readonly value: string;
  /** Consul ModifyIndex, etcd mod_revision: what a compare-and-set compares. */
  readonly version: string;
}

/** Who leads the replicas sharing the store; scheduled store changes run on the leader only. */
export interface Leadership {
  isLeader(): boolean;
  /** Calls `listener` when this replica becomes or stops being the leader. */
  onChange(listener: (leader: boolean) => void): () => void;
  /** Resolves after the first attempt to lead (won or lost, or failed). */
  readonly settled: Promise<void>;
  /** Gives leadership up (another replica takes over at once) and stops campaigning. */
  stop(): Promise<void>;
}

export interface KvBackend {
  /** e.g. "consul http://127.0.0.1:8500 kv lucid-mesh/", for logs and `ca show`. */
  readonly location: string;
  get(key: string): Promise<KvEntry | undefined>;
  /** Writes when the key is still at `version` (undefined: still absent); false otherwise. */
  putIf(key: string, value: string, version: string | undefined): Promise<boolean>;
  put(key: string, value: string): Promise<void>;
  delete(key: string): Promise<void>;
  /**
   * Writes `key` tied to this process's liveness (Consul: a session with behavior delete;
   * etcd: a lease): the store deletes it by itself when the process dies or loses the store
   * for longer than the TTL. Kept wanted: written again when the liveness is re-established
   * and retried after a failed write (which still rejects, for the caller to report).
   */
  putLive(key: string, value: string): Promise<void>;
  /** Every key under `prefix` with its value. */
  list(prefix: string): Promise<Array<{ key: string; value: string }>>;
  /** Calls `listener` after `key` may have changed (spurious calls allowed). */
  watch(key: string, listener: () => void): () => void;
  /** Campaigns for leadership under `key`, announcing `id`. */
  campaign(key: string, id: string): Leadership;
  close(): Promise<void>;
}

/** Reachability of the store, from the outcome of every request and watch. */
export class StateHealth {
  private ok = true;
  private error: string | undefined;
  private failingSince: number | undefined;
  private readonly listeners = new Set<(healthy: boolean, error?: string) => void>();

  get healthy(): boolean {
    return this.ok;
  }

  get lastError(): string | undefined {
    return this.error;
  }

  /** When the store started failing (ms since epoch), while it fails. */
  get since(): number | undefined {
    return this.failingSince;
  }

  succeeded(): void {
    if (this.ok) return;
    this.ok = true;
    this.error = undefined;
    this.failingSince = undefined;
    for (const listener of [...this.listeners]) listener(true);
  }

  failed(err: unknown): void {
    this.error = err instanceof Error ? err.message : String(err);
    if (!this.ok) return;
    this.ok = false;
    this.failingSince = Date.now();
    for (const listener of [...this.listeners]) listener(false, this.error);
  }

  onChange(listener: (healthy: boolean, error?: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Runs `fn`, reporting its outcome. */
  async track<T>(fn: () => Promise<T>): Promise<T> {
    try {
      const result = await fn();
      this.succeeded();
      return result;
    } catch (err) {
      this.failed(err);
      throw err;
    }
  }
}
