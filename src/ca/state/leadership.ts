// Leadership by polling a lock: try to take (or keep) it every interval and whenever the lock
// key changes. Used with Consul's session locks; etcd has its own election (etcd-kv.ts).
import { CoalescedPasses } from './coalesced-passes.js';
import type { Leadership } from './kv-backend.js';

export interface CampaignerOptions {
  /** Takes or keeps the lock; true while this replica holds it. */
  readonly attempt: () => Promise<boolean>;
  /** Whether a lock held at the last successful attempt can still be trusted (its TTL). */
  readonly stillValid: () => boolean;
  readonly intervalMs: number;
  readonly resign: () => Promise<void>;
  /** Calls back when the lock key may have changed (its holder left). */
  readonly wake?: (listener: () => void) => () => void;
}

export class Campaigner implements Leadership {
  readonly settled: Promise<void>;
  private leader = false;
  private stopped = false;
  private readonly passes = new CoalescedPasses(
    () => this.attempt(),
    () => this.stopped,
  );
  private readonly timer: NodeJS.Timeout;
  private readonly unwake: (() => void) | undefined;
  private readonly listeners = new Set<(leader: boolean) => void>();

  constructor(private readonly opts: CampaignerOptions) {
    this.settled = this.tick();
    this.timer = setInterval(() => void this.tick(), opts.intervalMs);
    this.timer.unref();
    this.unwake = opts.wake?.(() => void this.tick());
  }

  isLeader(): boolean {
    if (this.leader && !this.opts.stillValid()) this.set(false);
    return this.leader;
  }

  onChange(listener: (leader: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.unwake?.();
    await this.passes.current?.catch(() => undefined);
    this.set(false);
    await this.opts.resign();
  }

  private tick(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return this.passes.run();
  }

  private async attempt(): Promise<void> {
    try {
      const held = await this.opts.attempt();
      if (!this.stopped) this.set(held);
    } catch {
      // Unreachable store: keep the lock only as long as its TTL can still hold.
      if (!this.stopped) this.set(this.leader && this.opts.stillValid());
    }
  }

  private set(leader: boolean): void {
    if (leader === this.leader) return;
    this.leader = leader;
    for (const listener of [...this.listeners]) listener(leader);
  }
}
