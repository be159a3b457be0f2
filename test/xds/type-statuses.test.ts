// A stream's status per type (type-status.ts): fixed slots read like a Map, times kept as
// small integers and read back as epoch milliseconds.
import { describe, expect, it } from 'vitest';
import { TypeStatuses, syncState } from '../../src/xds/type-status.js';

describe('TypeStatuses', () => {
  it('reads like a Map of the types asked for, in kind order', () => {
    const types = new TypeStatuses();
    expect(types.size).toBe(0);
    expect(types.get('routes')).toBeUndefined();
    const routes = types.open('routes');
    const clusters = types.open('clusters');
    expect(types.open('routes')).toBe(routes); // opened once
    expect(types.size).toBe(2);
    expect(types.has('clusters')).toBe(true);
    expect(types.has('secrets')).toBe(false);
    expect([...types.keys()]).toEqual(['clusters', 'routes']);
    expect([...types.values()]).toEqual([clusters, routes]);
    expect([...types]).toEqual([
      ['clusters', clusters],
      ['routes', routes],
    ]);
  });

  it('keeps sent and acked times as the epoch milliseconds written', () => {
    const s = new TypeStatuses().open('listeners');
    expect(s.sentAt).toBeUndefined();
    expect(s.ackedAt).toBeUndefined();
    expect(syncState(s)).toBe('NOT_SENT');
    const now = Date.now();
    s.sentVersion = 'v1';
    s.sentNonce = '1';
    s.sentAt = s.ackedAt = now + 1234;
    expect(s.sentAt).toBe(now + 1234);
    expect(s.ackedAt).toBe(now + 1234);
    expect(syncState(s)).toBe('STALE');
    s.ackedNonce = '1';
    expect(syncState(s)).toBe('SYNCED');
    s.ackedAt = undefined;
    expect(s.ackedAt).toBeUndefined();
    // A time before the process started (a clock step back) is still read back as written.
    s.sentAt = now - 60_000;
    expect(s.sentAt).toBe(now - 60_000);
  });
});
