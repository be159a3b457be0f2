// RecentActivity (what /v1/proxies/pushes serves): bounded per stream, answers go to the newest
// push of their type, older unanswered ones read as superseded, a closed stream is forgotten.
import { describe, expect, it } from 'vitest';
import type { ResourceKind } from '../../src/protos/envoy.js';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import {
  NAMES_PER_PUSH,
  PUSHES_PER_PROXY,
  RecentActivity,
} from '../../src/telemetry/recent-activity.js';
import type { ResponseReport } from '../../src/xds/observer.js';
import { TypeStatuses, type StreamInfo } from '../../src/xds/type-status.js';

const stream = (id: number, nodeId: string): StreamInfo =>
  ({
    id,
    mode: 'sotw',
    peer: '127.0.0.1:1',
    connectedAt: 0,
    proxy: { nodeId, service: 'web' },
    types: new TypeStatuses(),
    throttled: 0,
  }) as unknown as StreamInfo;

const push = (kind: ResourceKind, nonce: string): ResponseReport => ({
  kind,
  version: `v${nonce}`,
  nonce,
  resources: 1,
  removed: [],
  bytes: 10,
  durationMs: 0,
  snapshot: { version: 's', changedAt: 0 },
});

describe('RecentActivity', () => {
  it('keeps the last pushes per stream, newest first, with how the proxy answered', () => {
    const activity = new RecentActivity(new SnapshotStore({ logger: silentLogger }));
    const s = stream(1, 'web-1');
    for (let i = 1; i <= PUSHES_PER_PROXY + 5; i++) {
      activity.responseSent(s, push('clusters', String(i)));
      activity.acked(s, 'clusters', `v${i}`);
    }
    activity.responseSent(s, push('listeners', 'L1'));
    activity.responseSent(s, push('listeners', 'L2'));
    activity.nacked(s, 'listeners', 'v0', 'duplicate address');
    const { pushes, connected } = activity.pushes('web-1');
    expect(connected).toBe(true);
    expect(pushes).toHaveLength(PUSHES_PER_PROXY);
    expect(pushes.slice(0, 3).map((p) => [p.nonce, p.outcome, p.error])).toEqual([
      ['L2', 'nacked', 'duplicate address'],
      ['L1', 'superseded', undefined],
      [String(PUSHES_PER_PROXY + 5), 'acked', undefined],
    ]);
    expect(pushes.at(-1)!.nonce).toBe('8'); // 27 pushes: the 7 oldest fell out
    expect(activity.pushes('other').pushes).toEqual([]);
  });

  it("keeps a push's first names and their count, not every name of a large push", () => {
    const activity = new RecentActivity(new SnapshotStore({ logger: silentLogger }));
    const s = stream(3, 'web-3');
    const names = Array.from({ length: 1000 }, (_, i) => `svc-${i}`);
    activity.responseSent(s, { ...push('clusters', '1'), resources: 1000, upserted: names });
    activity.responseSent(s, { ...push('endpoints', '2'), upserted: ['a'], removed: names });
    const [eds, cds] = activity.pushes('web-3').pushes;
    expect(cds).toMatchObject({ resources: 1000, upsertedCount: 1000 });
    expect(cds!.upserted).toEqual(names.slice(0, NAMES_PER_PUSH));
    expect(eds).toMatchObject({ upserted: ['a'], removedCount: 1000 });
    expect(eds!.removed).toHaveLength(NAMES_PER_PUSH);
    expect(eds!.upsertedCount).toBeUndefined();
  });

  it('forgets a stream when it closes', () => {
    const activity = new RecentActivity(new SnapshotStore({ logger: silentLogger }));
    const s = stream(2, 'web-2');
    activity.responseSent(s, push('routes', '1'));
    activity.streamClosed(s);
    expect(activity.pushes('web-2')).toEqual({ node: 'web-2', connected: false, pushes: [] });
  });
});
