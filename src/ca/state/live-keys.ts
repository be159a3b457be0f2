// Keys a replica keeps alive in the store while it lives (Consul: under a session with
// behavior delete; etcd: on a lease): the wanted value of each, written again when the
// session or lease had to be made anew (the store deleted the keys with the old one) and
// retried after a failed write, until it lands. The backend supplies the write.

import { CoalescedPasses } from './coalesced-passes.js';

export class LiveKeys {
  private readonly wanted = new Map<string, string>();
  private readonly dirty = new Set<string>();
  private readonly errors = new Map<string, Error>();
  private readonly passes = new CoalescedPasses(
    () => this.writeDirty(),
    () => this.stopped,
    () => {
      if (this.dirty.size > 0) this.scheduleRetry();
    },
  );
  private retry: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    /** Writes one key under the current session / lease; false: not written, try later. */
    private readonly write: (key: string, value: string) => Promise<boolean>,
    private readonly retryMs = 1_000,
  ) {}

  /** Wants `key` = `value`; resolves once written, rejects with why if this attempt failed. */
  async put(key: string, value: string): Promise<void> {
    this.wanted.set(key, value);
    this.dirty.add(key);
    this.errors.delete(key);
    await this.flush();
    if (this.dirty.has(key) && this.wanted.get(key) === value) {
      throw this.errors.get(key) ?? new Error(`${key}: not written yet; retrying`);
    }
  }

  /**
   * The session or lease is gone (the store dropped its keys): write every wanted key again
   * under a new one, after the retry delay (not at once: while the store is down, a lease
   * that cannot be granted is lost again at once, and that must not spin).
   */
  invalidate(): void {
    for (const key of this.wanted.keys()) this.dirty.add(key);
    this.scheduleRetry();
  }

  get keys(): string[] {
    return [...this.wanted.keys()];
  }

  stop(): void {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
  }

  private flush(): Promise<void> {
    return this.passes.run();
  }

  /** Writes each dirty key once; a stop ends the pass between keys. */
  private async writeDirty(): Promise<void> {
    for (const key of [...this.dirty]) {
      if (this.stopped) return;
      const value = this.wanted.get(key)!;
      try {
        if (await this.write(key, value)) {
          if (this.wanted.get(key) === value) this.dirty.delete(key);
          this.errors.delete(key);
        }
      } catch (err) {
        this.errors.set(key, err as Error);
      }
    }
  }

  private scheduleRetry(): void {
    if (this.stopped || this.retry) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      void this.flush();
    }, this.retryMs);
    this.retry.unref();
  }
}
