// Where the CA keeps its state. One interface, two implementations here (file, memory); the HA
// issue adds Consul KV. The contract is shaped for a shared store written by more than one
// process (`lucid-mesh ca rotate` next to a running server): the root set only changes through
// an atomic read-modify-write, and readers learn about changes from `watchRoots`. The token log
// (issued tokens, revocations) follows the same rules: `updateTokens`, `watchTokens`.
import type { TokenRecord, TokensMutation } from './revocations.js';
import type { LeafRecord, StoredRoot } from './types.js';

export type RootsMutation = (
  current: readonly StoredRoot[],
) => Promise<readonly StoredRoot[] | undefined> | readonly StoredRoot[] | undefined;

export interface CaStore {
  /** Where the state lives, for logs and `ca show` (a directory, a KV prefix, ...). */
  readonly location: string;

  loadRoots(): Promise<StoredRoot[]>;
  /**
   * Atomically replaces the root set with `mutate(current)`; `undefined` keeps it. No other
   * writer's update can interleave (a lock file here, compare-and-set in a KV store). Returns
   * the root set after the update.
   */
  updateRoots(mutate: RootsMutation): Promise<StoredRoot[]>;
  /**
   * Calls `listener` after the root set may have changed, including by another process.
   * Spurious calls are allowed; readers reload and compare. Returns an unsubscribe function.
   */
  watchRoots(listener: () => void): () => void;

  /** The current leaf per service, as last saved by the serving process. */
  loadLeaves(): Promise<LeafRecord[]>;
  saveLeaves(leaves: readonly LeafRecord[]): Promise<void>;

  /**
   * The proxy-token signing key (PKCS#8 PEM). When there is none yet, stores `create()`'s
   * result unless another process stored one first; either way returns the stored key.
   */
  loadOrCreateTokenKey(create: () => Promise<string>): Promise<string>;

  /** The token log: issued tokens and revocations (`token list`). */
  loadTokens(): Promise<TokenRecord[]>;
  /**
   * Atomically replaces the token log with `mutate(current)`; `undefined` keeps it. Serialised
   * with every other writer, as `updateRoots` is. Returns the log after the update.
   */
  updateTokens(mutate: TokensMutation): Promise<TokenRecord[]>;
  /**
   * Calls `listener` after the token log may have changed, including by another process
   * (`lucid-mesh token revoke`). Spurious calls are allowed. Returns an unsubscribe function.
   */
  watchTokens(listener: () => void): () => void;
}

/** In-memory store: tests, and several CA instances in one process sharing "a store". */
export class MemoryCaStore implements CaStore {
  readonly location = 'memory';
  private roots: StoredRoot[] = [];
  private leaves: LeafRecord[] = [];
  private tokenKey: string | undefined;
  private tokens: TokenRecord[] = [];
  private readonly listeners = new Set<() => void>();
  private readonly tokenListeners = new Set<() => void>();
  private queue: Promise<unknown> = Promise.resolve();

  async loadRoots(): Promise<StoredRoot[]> {
    return [...this.roots];
  }

  updateRoots(mutate: RootsMutation): Promise<StoredRoot[]> {
    // Serialised like the file store's lock: an async mutation cannot interleave with another.
    const run = this.queue.then(async () => {
      const next = await mutate([...this.roots]);
      if (next) {
        this.roots = [...next];
        for (const listener of [...this.listeners]) queueMicrotask(listener);
      }
      return [...this.roots];
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  watchRoots(listener: () => void): () => void {
    const wrapped = () => listener();
    this.listeners.add(wrapped);
    return () => this.listeners.delete(wrapped);
  }

  async loadLeaves(): Promise<LeafRecord[]> {
    return [...this.leaves];
  }

  async saveLeaves(leaves: readonly LeafRecord[]): Promise<void> {
    this.leaves = [...leaves];
  }

  async loadOrCreateTokenKey(create: () => Promise<string>): Promise<string> {
    if (this.tokenKey === undefined) {
      const key = await create();
      this.tokenKey ??= key;
    }
    return this.tokenKey;
  }

  async loadTokens(): Promise<TokenRecord[]> {
    return [...this.tokens];
  }

  updateTokens(mutate: TokensMutation): Promise<TokenRecord[]> {
    const run = this.queue.then(async () => {
      const next = await mutate([...this.tokens]);
      if (next) {
        this.tokens = [...next];
        for (const listener of [...this.tokenListeners]) queueMicrotask(listener);
      }
      return [...this.tokens];
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  watchTokens(listener: () => void): () => void {
    const wrapped = () => listener();
    this.tokenListeners.add(wrapped);
    return () => this.tokenListeners.delete(wrapped);
  }
}
