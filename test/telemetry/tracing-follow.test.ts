// followEntryTracing with the real SDK and a real snapshot store: which proxy-defaults entries
// start, move and stop the control plane's traces. No collector listens: flushing the last spans
// fails, and the switch happens all the same. (Spans reaching a collector: e2e/serve-tracing.)
import { afterEach, describe, expect, it } from 'vitest';
import { parseCatalog } from '../../src/catalog/schema.js';
import { DEFAULT_MESH_SETTINGS } from '../../src/mesh/index.js';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { followEntryTracing, type EntryTracing } from '../../src/telemetry/tracing-follow.js';
import { parseTrafficDocument } from '../../src/traffic/schema.js';

const catalog = parseCatalog({
  services: [{ name: 'hello', instances: [{ id: 'hello-1', address: '127.0.0.1', port: 9101 }] }],
});
const proxyDefaults = (extra: Record<string, unknown>) =>
  parseTrafficDocument([{ Kind: 'proxy-defaults', Name: 'global', ...extra }]);

describe('control-plane traces that follow proxy-defaults Tracing', () => {
  const open: Array<{ store: SnapshotStore; follow: EntryTracing }> = [];
  afterEach(async () => {
    for (const { store, follow } of open.splice(0)) {
      await follow.stop();
      store.close();
    }
  });
  const start = (settings = DEFAULT_MESH_SETTINGS) => {
    const store = new SnapshotStore({ logger: silentLogger, settings, debounceMs: 0 });
    const follow = followEntryTracing({ store, logger: silentLogger });
    open.push({ store, follow });
    store.setCatalog(catalog);
    store.flush();
    return { store, follow };
  };
  const apply = async (
    store: SnapshotStore,
    follow: EntryTracing,
    doc: ReturnType<typeof proxyDefaults>,
  ) => {
    store.setTraffic(doc);
    store.flush();
    await follow.settled();
  };

  it('off without an entry; on, moved and off again as the entry comes, changes and goes', async () => {
    const { store, follow } = start();
    await follow.settled();
    expect(follow.collector()).toBeUndefined();
    await apply(store, follow, proxyDefaults({ Tracing: { Collector: '127.0.0.1:4317' } }));
    expect(follow.collector()).toEqual({ host: '127.0.0.1', port: 4317 });
    await apply(store, follow, proxyDefaults({ Config: { lucid_tracing_collector: 'otel:4318' } }));
    expect(follow.collector()).toEqual({ host: 'otel', port: 4318 });
    // Only the sampling changes: the exporter keeps running where it is.
    await apply(
      store,
      follow,
      proxyDefaults({
        Config: { lucid_tracing_collector: 'otel:4318', lucid_tracing_sample_percent: 1 },
      }),
    );
    expect(follow.collector()).toEqual({ host: 'otel', port: 4318 });
    await apply(store, follow, proxyDefaults({ Config: { protocol: 'http' } }));
    expect(follow.collector()).toBeUndefined();
  });

  it('serve flags tracing the sidecars is not an entry: not followed', async () => {
    const { follow } = start({
      ...DEFAULT_MESH_SETTINGS,
      tracing: { collector: { host: '127.0.0.1', port: 4317 }, samplingPercent: 100 },
    });
    await follow.settled();
    expect(follow.collector()).toBeUndefined();
  });

  it('stop() ends a running exporter', async () => {
    const { store, follow } = start();
    await apply(store, follow, proxyDefaults({ Tracing: { Collector: '127.0.0.1:4317' } }));
    expect(follow.collector()).toBeDefined();
    await follow.stop();
    expect(follow.collector()).toBeUndefined();
  });
});
