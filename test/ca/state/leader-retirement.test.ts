// With a shared store only the leader drops a retiring root, and not before every replica had
// its rotation window (rotation delay + spread + retire delay, from retiringSince) to re-issue.
import { describe, expect, it } from 'vitest';
import { CertificateAuthority } from '../../../src/ca/authority.js';
import { LeafManager } from '../../../src/ca/leaf-manager.js';
import type { Leadership } from '../../../src/ca/state/kv-backend.js';
import { MemoryCaStore } from '../../../src/ca/store.js';
import { ManualClock } from '../manual-clock.js';

class FixedLeadership implements Leadership {
  readonly settled = Promise.resolve();
  private readonly listeners = new Set<(leader: boolean) => void>();
  constructor(private leader: boolean) {}
  isLeader(): boolean {
    return this.leader;
  }
  set(leader: boolean): void {
    this.leader = leader;
    for (const l of this.listeners) l(leader);
  }
  onChange(listener: (leader: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  async stop(): Promise<void> {}
}

const WINDOW = { rotationDelayMs: 1_000, rotationSpreadMs: 1_000, retireDelayMs: 1_000 };

describe('retiring roots with a shared store', () => {
  it('a follower never drops a retiring root; once it leads, it does', async () => {
    const store = new MemoryCaStore();
    const clock = new ManualClock();
    const leadership = new FixedLeadership(false);
    const ca = await CertificateAuthority.open({ store, clock });
    const m = await LeafManager.start({ ca, watchStore: false, leadership, ...WINDOW });
    const idle = () => m.whenIdle();
    await m.current('web');

    // An operator's `ca rotate` through this follower: the old root is retiring.
    await m.rotateRoot();
    expect((await store.loadRoots()).length).toBe(2);

    // Its leaf moves to the new root within the window, but the old root stays: not its call.
    await clock.advance(60_000, idle);
    expect((await m.current('web')).rootSerial).toBe(ca.activeRoot().serial);
    expect((await store.loadRoots()).length).toBe(2);

    // Leading now (the leader went away): it drops the root nothing uses.
    leadership.set(true);
    await clock.advance(WINDOW.retireDelayMs, idle);
    expect((await store.loadRoots()).length).toBe(1);
    m.stop();
  });

  it('the leader waits out the rotation window even when its own leaves moved at once', async () => {
    const store = new MemoryCaStore();
    const clock = new ManualClock();
    const ca = await CertificateAuthority.open({ store, clock });
    const m = await LeafManager.start({
      ca,
      watchStore: false,
      leadership: new FixedLeadership(true),
      ...WINDOW,
    });
    await m.rotateRoot(); // no leaf at all: nothing of its own holds the old root
    await clock.advance(2_500, () => m.whenIdle());
    expect((await store.loadRoots()).length).toBe(2);
    await clock.advance(1_000, () => m.whenIdle());
    expect((await store.loadRoots()).length).toBe(1);
    m.stop();
  });
});
