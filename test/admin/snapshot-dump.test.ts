// GET /v1/snapshot?node=<not connected>: computed for the answer and not kept. Asking about
// thousands of made-up names once grew the process by 14 MB (a cached view and own resources
// per name, kept until the next catalog change).
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { snapshotDump } from '../../src/admin/snapshot-dump.js';
import type { StreamInfo } from '../../src/xds/type-status.js';
import { node, sotwClient, typeUrl } from '../support/ads-client.js';
import { startControlPlane, twoServices, type TestControlPlane } from '../support/control-plane.js';

let cp: TestControlPlane | undefined;
afterEach(async () => {
  await cp?.close();
  cp = undefined;
});

const names = (n: number) => Array.from({ length: n }, () => randomBytes(12).toString('base64url'));

describe('snapshot dump of a node that is not connected', () => {
  it('3,000 random names leave every cache of the store as it was', async () => {
    cp = await startControlPlane({ catalog: twoServices() });
    const streams = () => cp!.server.connected.values();
    // A connected proxy, so the caches hold something to compare against.
    const c = sotwClient(cp.port);
    c.send({ node: node('hello-1', 'hello'), typeUrl: typeUrl('listeners') });
    await c.next();
    const before = cp.store.cacheSizes();
    expect(before.views).toBe(1);
    for (const name of names(3000)) {
      const dump = snapshotDump(cp.store, streams(), name, undefined);
      expect(dump.connected).toBe(false);
      // Every node gets at least the shared clusters, its outbound listener and its DNS one.
      expect(dump.resources.clusters?.length).toBeGreaterThan(0);
      expect(dump.resources.listeners?.length).toBe(2);
    }
    expect(cp.store.cacheSizes()).toEqual(before);
    c.close();
  });

  it('shows a catalog node what it would be served, the same as when it connects', async () => {
    cp = await startControlPlane({ catalog: twoServices() });
    const preview = snapshotDump(cp.store, [], 'world-1', undefined);
    expect(preview.connected).toBe(false);
    const streams: StreamInfo[] = [];
    const c = sotwClient(cp.port);
    c.send({ node: node('world-1', 'world'), typeUrl: typeUrl('listeners') });
    await c.next();
    streams.push(...cp.server.connected.values());
    const live = snapshotDump(cp.store, streams, 'world-1', undefined);
    expect(live.connected).toBe(true);
    expect(preview.resources).toEqual(live.resources);
    c.close();
  });
});
