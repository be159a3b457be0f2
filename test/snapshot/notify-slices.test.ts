// How the store hands a new snapshot to its watchers: a large fan-out goes out in slices with
// I/O let through in between, every watcher ends up with the newest view, and a newer snapshot
// takes over a pass that is still running.
import { describe, expect, it } from 'vitest';
import { parseCatalog } from '../../src/catalog/schema.js';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import type { ProxyView } from '../../src/snapshot/proxy-view.js';
import { waitFor } from '../support/wait.js';

const WATCHERS = 600;

function catalog(port: number) {
  return parseCatalog({
    services: [{ name: 'api', instances: [{ id: 'api-1', address: '10.0.0.1', port }] }],
  });
}

/** A watcher that takes ~0.2 ms per view (600 of them: more than two 50 ms slices). */
function slowWatchers(store: SnapshotStore) {
  const seen: Array<{ version: string; at: number }[]> = [];
  let order = 0;
  for (let i = 0; i < WATCHERS; i++) {
    const log: { version: string; at: number }[] = [];
    seen.push(log);
    store.watch({ nodeId: `proxy-${i}`, service: '', outboundPort: 15001 }, (view: ProxyView) => {
      const until = performance.now() + 0.2;
      while (performance.now() < until) {
        // busy, as a stream building and writing its responses is
      }
      log.push({ version: view.version, at: order++ });
    });
  }
  return { seen, tick: () => order++ };
}

/** Until a fan-out pass has reached every watcher (counted, not a fixed wait: CI may be slow). */
function passesDone(store: SnapshotStore): () => Promise<void> {
  let done = 0;
  store.onNotified(() => done++);
  return async () => {
    await waitFor(() => done > 0, { what: 'the fan-out to reach every watcher' });
  };
}

describe('snapshot fan-out to watchers', () => {
  it('serves the first watchers before the last, lets I/O through in between, and reaches everyone', async () => {
    const store = new SnapshotStore({ logger: silentLogger, debounceMs: 0, maxDebounceMs: 0 });
    store.setCatalog(catalog(8080));
    const { seen, tick } = slowWatchers(store);
    const settle = passesDone(store);
    let notified = 0;
    store.onNotified(() => notified++);
    store.setCatalog(catalog(8081));
    store.flush();
    const newest = store.snapshot!.version;
    // Something else the event loop has to do, queued right after the fan-out started.
    let otherWorkAt = -1;
    setImmediate(() => (otherWorkAt = tick()));
    const servedAtOnce = seen.filter((log) => log.at(-1)?.version === newest).length;
    expect(servedAtOnce).toBeGreaterThan(0);
    expect(servedAtOnce).toBeLessThan(WATCHERS);
    await settle();
    for (const log of seen) expect(log.at(-1)?.version).toBe(newest);
    const lastServed = Math.max(...seen.map((log) => log.at(-1)!.at));
    expect(otherWorkAt).toBeGreaterThan(-1);
    expect(otherWorkAt).toBeLessThan(lastServed); // it did not wait for the whole fan-out
    expect(notified).toBe(1);
    store.close();
  });

  it('lets a newer snapshot take over a pass still running: nobody gets the outdated view late', async () => {
    const store = new SnapshotStore({ logger: silentLogger, debounceMs: 0, maxDebounceMs: 0 });
    store.setCatalog(catalog(8080));
    const { seen } = slowWatchers(store);
    const settle = passesDone(store);
    store.setCatalog(catalog(8081));
    store.flush();
    const middle = store.snapshot!.version;
    store.setCatalog(catalog(8082));
    store.flush();
    const newest = store.snapshot!.version;
    expect(newest).not.toBe(middle);
    await settle();
    for (const log of seen) {
      expect(log.at(-1)?.version).toBe(newest);
      // Once a watcher has the newest view, the older one never follows it.
      const newestAt = log.findIndex((e) => e.version === newest);
      expect(log.slice(newestAt).every((e) => e.version === newest)).toBe(true);
    }
    // The takeover left some watchers without the middle view at all.
    expect(seen.filter((log) => !log.some((e) => e.version === middle)).length).toBeGreaterThan(0);
    store.close();
  });
});
