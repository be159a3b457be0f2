// GET /v1/snapshot?node=<not connected>: computed for the answer and not kept. Asking about
// thousands of made-up names once grew the process by 14 MB (a cached view and own resources
// per name, kept until the next catalog change).
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { parsePreviewMode, snapshotDump } from '../../src/admin/snapshot-dump.js';
import type { StreamInfo } from '../../src/xds/type-status.js';
import { node, sotwClient, typeUrl } from '../support/ads-client.js';
import { startControlPlane, twoServices, type TestControlPlane } from '../support/control-plane.js';
import { describeMemory, sampleMemory, writeReliabilityResult } from '../support/reliability.js';

let cp: TestControlPlane | undefined;
afterEach(async () => {
  await cp?.close();
  cp = undefined;
});

const mib = (b: number) => (b / 2 ** 20).toFixed(1);
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
    // One dump first, so what the first one warms up (translator code, shared caches) is in
    // the baseline.
    snapshotDump(cp.store, streams(), 'warm-up', undefined);
    const memoryBefore = sampleMemory();
    let memoryHalfway = memoryBefore;
    for (const [i, name] of names(3000).entries()) {
      // Halfway: memory that grows with the count would show between here and the end.
      if (i === 1500) memoryHalfway = sampleMemory();
      const dump = snapshotDump(cp.store, streams(), name, undefined);
      expect(dump.connected).toBe(false);
      // Every node gets at least the shared clusters, its outbound listener and its DNS one.
      expect(dump.resources.clusters?.length).toBeGreaterThan(0);
      expect(dump.resources.listeners?.length).toBe(2);
    }
    expect(cp.store.cacheSizes()).toEqual(before);
    const memoryAfter = sampleMemory();
    c.close();
    writeReliabilityResult({
      id: 'hostile-snapshot-dump',
      section: 'hostile',
      test: 'test/admin/snapshot-dump.test.ts',
      fault: '`GET /v1/snapshot?node=<random>` for 3,000 names that are not connected',
      behaviour:
        'Computes what the node would get (`SnapshotStore.previewFor`) and keeps nothing: no view, no own ' +
        'resources, no encoder entry, no locality snapshot. (Before, each name cached a view and own resources ' +
        'until the next catalog change: 3,000 names grew the process by 14 MB.)',
      figures:
        `3,000 dumps, each with the shared clusters and 2 listeners; store caches unchanged ` +
        `(${before.views} view, ${before.ownResources} own-resource entries, ${before.encoded} encoder entries, ` +
        `${before.localities} locality snapshots before and after). Heap after GC after 1,500 dumps ` +
        `${mib(memoryHalfway.heapBytes)} MiB, after 3,000 ${mib(memoryAfter.heapBytes)} MiB; ` +
        `${describeMemory(memoryBefore, memoryAfter)}.`,
      memoryBefore,
      memoryAfter,
    });
  });

  it('shows a catalog node what it would be served, the same as when it connects', async () => {
    cp = await startControlPlane({ catalog: twoServices() });
    const preview = snapshotDump(cp.store, [], 'world-1', undefined);
    expect(preview.connected).toBe(false);
    const streams: StreamInfo[] = [];
    const c = sotwClient(cp.port);
    // As `lucid-mesh bootstrap` writes it, which is what the preview assumes.
    const bootstrapped = node('world-1', 'world');
    bootstrapped.metadata = { ...bootstrapped.metadata, exclusive_ports: true };
    c.send({ node: bootstrapped, typeUrl: typeUrl('listeners') });
    await c.next();
    streams.push(...cp.server.connected.values());
    const live = snapshotDump(cp.store, streams, 'world-1', undefined);
    expect(live.connected).toBe(true);
    expect(preview.resources).toEqual(live.resources);
    c.close();
  });
});

describe('snapshot dump preview mode', () => {
  it('mode=delta previews a node as `bootstrap --mode delta` starts it: virtual hosts over VHDS', async () => {
    cp = await startControlPlane({ catalog: twoServices() });
    const streams = () => cp!.server.connected.values();
    const sotw = snapshotDump(cp.store, streams(), 'hello-1', undefined);
    const delta = snapshotDump(cp.store, streams(), 'hello-1', undefined, 'delta');
    expect(sotw.resources.virtualHosts).toEqual([]);
    expect(delta.resources.virtualHosts?.map((r) => r.name)).toContain('outbound/world');
    const outbound = (d: typeof sotw) => d.resources.routes?.find((r) => r.name === 'outbound');
    expect(outbound(delta)?.resource).toHaveProperty('vhds');
    expect(outbound(sotw)?.resource).not.toHaveProperty('vhds');
    expect(() => parsePreviewMode('incremental')).toThrow(
      'mode: expected sotw | delta, got "incremental"',
    );
  });
});
