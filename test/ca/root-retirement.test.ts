// When the leader drops a retiring root (src/ca/root-retirement.ts): the rule on its own
// (examples and properties), then two LeafManagers sharing a store and the replicas' records,
// on a manual clock: a replica whose re-issue is late keeps the old root past the window, an
// unreadable record keeps it with a warning naming the key, and a whole leaf lifetime ends
// the wait whatever the records say. The same on real Consul and etcd: shared-store-suite.ts.
import fc from 'fast-check';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { CertificateAuthority } from '../../src/ca/authority.js';
import { LeafManager } from '../../src/ca/leaf-manager.js';
import {
  decideRetirement,
  holdingsOf,
  type HolderRead,
  type LeafHolders,
  type RetirementInput,
  type RootHolding,
} from '../../src/ca/root-retirement.js';
import type { Leadership } from '../../src/ca/state/kv-backend.js';
import { MemoryCaStore } from '../../src/ca/store.js';
import { ManualClock } from './manual-clock.js';

const T0 = Date.parse('2026-11-30T10:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();
const holding = (serial: string, until: number): RootHolding => ({
  serial,
  leaves: 1,
  until: iso(until),
});
const record = (replica: string, ...roots: RootHolding[]): HolderRead => ({
  key: `p/ca/leaf-roots/${replica}`,
  record: { replica, roots },
});
const base: RetirementInput = {
  serial: 'aa',
  now: T0,
  retiringSince: T0,
  minWindowMs: 50_000,
  hardBoundMs: 86_400_000,
  holders: [],
  self: 'leader',
};

describe('decideRetirement', () => {
  it('waits out the window, then for every live replica naming the root, then drops', () => {
    const held = [record('r2', holding('aa', T0 + 86_400_000)), record('r3', holding('bb', T0))];
    expect(decideRetirement({ ...base, now: T0 + 49_999, holders: held })).toMatchObject({
      drop: false,
      waitFor: 'window',
      recheckAt: T0 + 50_000,
    });
    expect(decideRetirement({ ...base, now: T0 + 60_000, holders: held })).toMatchObject({
      drop: false,
      waitFor: 'holders',
      holders: ['r2'],
      recheckAt: T0 + 86_400_000,
    });
    expect(
      decideRetirement({ ...base, now: T0 + 60_000, holders: [record('r2', holding('bb', T0))] }),
    ).toEqual({ drop: true, reason: 'no-holders', overridden: [] });
  });

  it('a record that cannot be read blocks the drop and is named; the hard bound ends any wait', () => {
    const broken: HolderRead = { key: 'p/ca/leaf-roots/x', error: 'not valid JSON' };
    expect(decideRetirement({ ...base, now: T0 + 60_000, holders: [broken] })).toMatchObject({
      drop: false,
      waitFor: 'unreadable',
      unreadable: [{ key: 'p/ca/leaf-roots/x', error: 'not valid JSON' }],
    });
    const held = [broken, record('r2', holding('aa', T0 + 2 * 86_400_000))];
    expect(decideRetirement({ ...base, now: T0 + 86_400_000, holders: held })).toEqual({
      drop: true,
      reason: 'hard-bound',
      overridden: ['r2', 'p/ca/leaf-roots/x'],
    });
  });

  it("skips this replica's own record, leaves that expired, and a store without records", () => {
    const own = [record('leader', holding('aa', T0 + 86_400_000))];
    expect(decideRetirement({ ...base, now: T0 + 50_000, holders: own }).drop).toBe(true);
    const expired = [record('r2', holding('aa', T0 + 40_000))];
    expect(decideRetirement({ ...base, now: T0 + 50_000, holders: expired }).drop).toBe(true);
    expect(decideRetirement({ ...base, now: T0 + 50_000, holders: undefined })).toEqual({
      drop: true,
      reason: 'window',
      overridden: [],
    });
  });

  const reads = fc.array(
    fc.oneof(
      fc
        .record({
          replica: fc.constantFrom('leader', 'r1', 'r2', 'r3'),
          roots: fc.array(
            fc.record({
              serial: fc.constantFrom('aa', 'bb'),
              leaves: fc.nat(5),
              until: fc.integer({ min: 0, max: 200_000 }).map((d) => iso(T0 + d)),
            }),
            { maxLength: 3 },
          ),
        })
        .map((r): HolderRead => ({ key: `p/ca/leaf-roots/${r.replica}`, record: r })),
      fc.constant<HolderRead>({ key: 'p/ca/leaf-roots/bad', error: 'truncated' }),
    ),
    { maxLength: 6 },
  );
  const inputs = fc.record({
    now: fc.integer({ min: 0, max: 200_000 }).map((d) => T0 + d),
    minWindowMs: fc.integer({ min: 0, max: 100_000 }),
    hardBoundMs: fc.integer({ min: 0, max: 150_000 }),
    holders: fc.option(reads, { nil: undefined }),
  });

  it('never drops before the window, nor while a readable live record or an unreadable one names the root, unless past the hard bound', () => {
    fc.assert(
      fc.property(inputs, (i) => {
        const input = { ...base, ...i };
        const d = decideRetirement(input);
        const hardEnd = T0 + Math.max(i.minWindowMs, i.hardBoundMs);
        if (input.now >= hardEnd) return d.drop && d.reason === 'hard-bound';
        if (input.now < T0 + i.minWindowMs) return !d.drop;
        const blocking = (i.holders ?? []).some((r) =>
          'error' in r
            ? true
            : r.record.replica !== 'leader' &&
              r.record.roots.some((h) => h.serial === 'aa' && Date.parse(h.until) > input.now),
        );
        return d.drop === !blocking;
      }),
    );
  });

  it('is the same in any record order, and a record going away never turns a drop into a wait', () => {
    fc.assert(
      fc.property(inputs, fc.nat(), (i, cut) => {
        const input = { ...base, ...i };
        const d = decideRetirement(input);
        const reversed = decideRetirement({
          ...input,
          holders: i.holders && [...i.holders].reverse(),
        });
        expect(reversed).toEqual(d);
        if (i.holders && i.holders.length > 0 && d.drop) {
          const fewer = i.holders.filter((_, k) => k !== cut % i.holders!.length);
          expect(decideRetirement({ ...input, holders: fewer }).drop).toBe(true);
        }
      }),
    );
  });

  it('holdingsOf counts leaves per root and keeps the last expiry', () => {
    expect(
      holdingsOf([
        { rootSerial: 'bb', notAfter: iso(T0 + 5) },
        { rootSerial: 'aa', notAfter: iso(T0 + 9) },
        { rootSerial: 'bb', notAfter: iso(T0 + 7) },
      ]),
    ).toEqual([
      { serial: 'aa', leaves: 1, until: iso(T0 + 9) },
      { serial: 'bb', leaves: 2, until: iso(T0 + 7) },
    ]);
  });
});

/** The replicas' records in memory, as KvCaStore keeps them in Consul or etcd. */
class MemoryHolders {
  readonly records = new Map<string, string>();
  of(replicaId: string): LeafHolders {
    return {
      replicaId,
      publishLeafRoots: async (roots) => {
        this.records.set(
          `ca/leaf-roots/${replicaId}`,
          JSON.stringify({ replica: replicaId, roots }),
        );
      },
      readLeafRoots: async () =>
        [...this.records].map(([key, text]): HolderRead => {
          try {
            return { key, record: JSON.parse(text) as { replica: string; roots: RootHolding[] } };
          } catch (err) {
            return { key, error: (err as Error).message };
          }
        }),
    };
  }
}

const leading = (leader: boolean): Leadership => ({
  settled: Promise.resolve(),
  isLeader: () => leader,
  onChange: () => () => undefined,
  stop: async () => undefined,
});

const WINDOW = { rotationDelayMs: 1_000, rotationSpreadMs: 1_000, retireDelayMs: 1_000 };

/** A leader (short window) and a follower whose re-issue waits `followerDelayMs`. */
async function replicas(
  followerDelayMs: number,
  ttl: { leader?: number; follower?: number; followerRenews?: boolean } = {},
) {
  const store = new MemoryCaStore();
  const clock = new ManualClock(T0);
  const holders = new MemoryHolders();
  const logs: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => void logs.push(JSON.parse(s)) });
  const open = (leafTtlMs = 86_400_000) => CertificateAuthority.open({ store, clock, leafTtlMs });
  const [leaderCa, followerCa] = [await open(ttl.leader), await open(ttl.follower)];
  const common = { watchStore: false, random: () => 0.999 };
  const leader = await LeafManager.start({
    ca: leaderCa,
    leadership: leading(true),
    holders: holders.of('leader'),
    logger,
    ...common,
    ...WINDOW,
  });
  const follower = await LeafManager.start({
    ca: followerCa,
    leadership: leading(false),
    holders: holders.of('follower'),
    ...common,
    ...WINDOW,
    rotationDelayMs: followerDelayMs,
    rotationSpreadMs: 0,
    autoRotate: ttl.followerRenews ?? true,
  });
  const idle = async () => {
    await leader.whenIdle();
    await follower.whenIdle();
  };
  await leader.current('web');
  await follower.current('api');
  await idle();
  const oldRoot = leaderCa.activeRoot().serial;
  const roots = async () => (await store.loadRoots()).map((r) => r.serial);
  const said = (msg: string) => logs.filter((l) => String(l.msg).startsWith(msg));
  const stop = () => {
    leader.stop();
    follower.stop();
  };
  return { store, clock, holders, leader, follower, followerCa, idle, oldRoot, roots, said, stop };
}

describe("the leader and the replicas' records", () => {
  it('keeps the old root while the follower holds a leaf of it, and drops it right after the follower re-issues', async () => {
    const r = await replicas(20_000);
    const rotatedAt = r.clock.now();
    const newRoot = (await r.leader.rotateRoot()).serial;
    await r.followerCa.reload();
    await r.clock.advance(10_000, r.idle); // the leader's window (3 s) is long gone
    expect(await r.roots()).toEqual([r.oldRoot, newRoot]);
    expect(r.said('keeping the retiring CA root')[0]).toMatchObject({
      root: r.oldRoot,
      replicas: ['follower'],
    });

    await r.clock.advance(10_000, r.idle); // the follower re-issues at 20 s
    expect(r.follower.peek('api')?.rootSerial).toBe(newRoot);
    const reissuedAt = r.clock.now();
    for (let i = 0; i < 5 && (await r.roots()).length > 1; i++) await r.clock.advance(500, r.idle);
    expect(await r.roots()).toEqual([newRoot]);
    expect(r.clock.now() - reissuedAt).toBeLessThanOrEqual(1_000); // one poll
    expect(r.said('retired CA root')).toEqual([
      expect.objectContaining({
        root: r.oldRoot,
        reason: 'no-holders',
        waitedForReplicas: ['follower'],
        retiringForMs: r.clock.now() - rotatedAt,
      }),
    ]);
    r.stop();
  });

  it('an unreadable record keeps the root, with a warning naming the key, until it reads again', async () => {
    const r = await replicas(2_000);
    r.holders.records.set('ca/leaf-roots/broken', '{"replica":');
    const newRoot = (await r.leader.rotateRoot()).serial;
    await r.followerCa.reload();
    await r.clock.advance(30_000, r.idle);
    expect(r.follower.peek('api')?.rootSerial).toBe(newRoot);
    expect(await r.roots()).toEqual([r.oldRoot, newRoot]);
    const warned = r.said('keeping the retiring CA root: cannot read the leaf-roots record');
    expect(warned).toHaveLength(1); // once, not once per poll
    expect(warned[0]).toMatchObject({ level: 40, key: 'ca/leaf-roots/broken' });

    r.holders.records.delete('ca/leaf-roots/broken');
    await r.clock.advance(1_000, r.idle);
    expect(await r.roots()).toEqual([newRoot]);
    expect(r.said('retired CA root')[0]).toMatchObject({
      reason: 'no-holders',
      waitedForUnreadable: ['ca/leaf-roots/broken'],
    });
    r.stop();
  });

  it('a record that never lets go keeps the root one leaf lifetime at most', async () => {
    // The leader's leaves live 2 min; the follower, misconfigured, issued a 10 min leaf and
    // neither re-issues (600 s delay) nor renews it: its record names the old root throughout.
    const r = await replicas(600_000, {
      leader: 120_000,
      follower: 600_000,
      followerRenews: false,
    });
    const newRoot = (await r.leader.rotateRoot()).serial;
    await r.followerCa.reload();
    const rotatedAt = r.clock.now();
    await r.clock.advance(119_000, r.idle);
    expect(await r.roots()).toEqual([r.oldRoot, newRoot]);
    await r.clock.advanceTo(rotatedAt + 120_000, r.idle);
    expect(await r.roots()).toEqual([newRoot]);
    expect(r.said('retired CA root')[0]).toMatchObject({
      reason: 'hard-bound',
      overridden: ['follower'],
      waitedForReplicas: ['follower'],
    });
    r.stop();
  });
});
