// A replica whose store watch stalls learns of a root rotation late. The leader drops the old
// root at retiringSince + rotation delay + spread + retire delay, whatever the replica knows,
// so the replica's leaves must move to the new root within that shared window, not a full
// delay + spread after it found out; and a leaf whose root is already gone (every peer now
// refuses it) is replaced at once.
import { describe, expect, it } from 'vitest';
import { CertificateAuthority } from '../../../src/ca/authority.js';
import { LeafManager } from '../../../src/ca/leaf-manager.js';
import type { Leadership } from '../../../src/ca/state/kv-backend.js';
import { MemoryCaStore } from '../../../src/ca/store.js';
import { ManualClock } from '../manual-clock.js';

const leading = (leader: boolean): Leadership => ({
  settled: Promise.resolve(),
  isLeader: () => leader,
  onChange: () => () => undefined,
  stop: async () => undefined,
});

const WINDOW = { rotationDelayMs: 10_000, rotationSpreadMs: 20_000, retireDelayMs: 20_000 };

/** A leader and a follower on one store; the follower's watch is stalled (it reloads when told). */
async function replicas() {
  const store = new MemoryCaStore();
  const clock = new ManualClock();
  const leaderCa = await CertificateAuthority.open({ store, clock });
  const followerCa = await CertificateAuthority.open({ store, clock });
  const common = { watchStore: false, random: () => 0.5, ...WINDOW };
  const leader = await LeafManager.start({ ca: leaderCa, leadership: leading(true), ...common });
  const follower = await LeafManager.start({
    ca: followerCa,
    leadership: leading(false),
    ...common,
  });
  const idle = async () => {
    await leader.whenIdle();
    await follower.whenIdle();
  };
  const oldRoot = leaderCa.activeRoot().serial;
  return { store, clock, leaderCa, followerCa, leader, follower, idle, oldRoot };
}

describe('a replica that learns of a root rotation late', () => {
  it('moves its leaves to the new root before the leader may drop the old one', async () => {
    const r = await replicas();
    expect((await r.follower.current('web')).rootSerial).toBe(r.oldRoot);
    const rotatedAt = r.clock.now();
    const newRoot = (await r.leader.rotateRoot()).serial;

    // The follower hears of it 25 s late: 5 s of the shared window are left.
    await r.clock.advance(25_000, r.idle);
    await r.followerCa.reload();
    const dropAt = rotatedAt + 50_000; // delay + spread + retire delay
    const replaceBy = dropAt - WINDOW.retireDelayMs; // its new leaf has the retire delay to land
    await r.clock.advanceTo(replaceBy, r.idle);
    expect(r.follower.peek('web')?.rootSerial).toBe(newRoot);

    await r.clock.advanceTo(dropAt, r.idle);
    expect((await r.store.loadRoots()).map((x) => x.serial)).toEqual([newRoot]);
    r.leader.stop();
    r.follower.stop();
  });

  it('replaces at once a leaf whose root was dropped while it was not listening', async () => {
    const r = await replicas();
    await r.follower.current('web');
    const newRoot = (await r.leader.rotateRoot()).serial;
    await r.clock.advance(60_000, r.idle); // the leader dropped the old root meanwhile
    expect((await r.store.loadRoots()).map((x) => x.serial)).toEqual([newRoot]);
    expect(r.follower.peek('web')?.rootSerial).toBe(r.oldRoot);

    await r.followerCa.reload(); // new root and old root gone, in one read
    await r.clock.advance(0, r.idle);
    expect(r.follower.peek('web')?.rootSerial).toBe(newRoot);
    r.leader.stop();
    r.follower.stop();
  });
});
