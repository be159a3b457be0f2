// RecentPushes (recent-pushes.ts): every stream's last pushes in one table of columns. Each
// stream reads back only its own pushes, newest first, bounded per stream; freed rows are
// reused, and the table goes back to its first size once no stream is left.
import { describe, expect, it } from 'vitest';
import type { ResourceKind } from '../../src/protos/envoy.js';
import { RecentPushes } from '../../src/telemetry/recent-pushes.js';

const push = (kind: ResourceKind, nonce: string, at = 1_700_000_000_000) => ({
  at,
  kind,
  version: `v-${nonce}`,
  nonce,
  resources: 2,
  bytes: 3_000_000_000, // past 32 bits: kept exactly
  upserted: undefined,
  removed: [],
  upsertedCount: -1,
  removedCount: -1,
});

const nonces = (t: RecentPushes, node: string) => [...t.pushesOf(node)].map((p) => p.row.nonce);

describe('RecentPushes', () => {
  it("keeps each stream's own pushes apart, newest first, at most perStream", () => {
    const t = new RecentPushes(3);
    for (let i = 1; i <= 5; i++) {
      t.add(1, 'a', push('clusters', `a${i}`));
      t.add(2, 'b', push('endpoints', `b${i}`));
    }
    expect(nonces(t, 'a')).toEqual(['a5', 'a4', 'a3']);
    expect(nonces(t, 'b')).toEqual(['b5', 'b4', 'b3']);
    expect(t.size).toMatchObject({ rows: 6, streams: 2 });
    const [first] = t.pushesOf('a');
    expect(first!.row).toMatchObject({ kind: 'clusters', version: 'v-a5', bytes: 3_000_000_000 });
  });

  it('answers the newest push of the kind, once; older ones of that kind are not the newest', () => {
    const t = new RecentPushes(20);
    t.add(1, 'a', push('listeners', 'L1'));
    t.add(1, 'a', push('clusters', 'C1'));
    t.add(1, 'a', push('listeners', 'L2'));
    t.answer(1, 'listeners', 'nacked', 5, 'bad port');
    t.answer(1, 'listeners', 'acked', 6); // already answered: stays nacked
    t.answer(1, 'clusters', 'acked', 7);
    const rows = [...t.pushesOf('a')];
    expect(rows.map((p) => [p.row.nonce, p.row.outcome, p.row.error, p.row.answeredAt])).toEqual([
      ['L2', 'nacked', 'bad port', 5],
      ['C1', 'acked', undefined, 7],
      ['L1', 'pending', undefined, undefined],
    ]);
    expect(rows.map((p) => p.newestOfKind)).toEqual([true, true, false]);
  });

  it('reuses freed rows, grows past its first size, and shrinks back when empty', () => {
    const t = new RecentPushes(4);
    const first = t.size.capacity;
    const streams = first; // 4 pushes each: the table must grow
    for (let s = 0; s < streams; s++) {
      for (let i = 0; i < 4; i++) t.add(s, `n${s}`, push('routes', `${s}.${i}`));
    }
    expect(t.size.rows).toBe(streams * 4);
    expect(t.size.capacity).toBeGreaterThanOrEqual(streams * 4);
    expect(t.size.capacity).toBeLessThan(streams * 4 * 1.3);
    expect(nonces(t, `n${streams - 1}`)).toEqual([3, 2, 1, 0].map((i) => `${streams - 1}.${i}`));
    // Pushes past the bound reuse the rows they free: no growth.
    const grown = t.size.capacity;
    for (let i = 4; i < 40; i++) t.add(0, 'n0', push('routes', `0.${i}`));
    expect(t.size).toMatchObject({ rows: streams * 4, capacity: grown });
    expect(nonces(t, 'n0')).toEqual(['0.39', '0.38', '0.37', '0.36']);
    for (let s = 0; s < streams; s++) t.forget(s);
    expect(t.size).toEqual({ rows: 0, capacity: first, streams: 0 });
    expect(nonces(t, 'n0')).toEqual([]);
    t.add(7, 'again', push('secrets', 'x'));
    expect(nonces(t, 'again')).toEqual(['x']);
  });
});
