// The codec warm-up (src/xds/codec-warmup.ts): once the first snapshot is built, protobufjs has
// generated the code a sidecar's first stream needs, so the first proxy's own resources and
// its first request are encoded and decoded without generating any more (~30-65 ms that sat on
// the first stream's path, bench W1). Nothing of the store is touched: no proxy is watched.
import protobuf from 'protobufjs';
import { afterEach, describe, expect, it } from 'vitest';
import { parseCatalog } from '../../src/catalog/schema.js';
import { RESOURCE_KINDS, messageType } from '../../src/protos/envoy.js';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { warmCodecsAfterFirstSnapshot } from '../../src/xds/codec-warmup.js';

const setupProto = protobuf.Type.prototype as unknown as { setup(): protobuf.Type };
const originalSetup = setupProto.setup;

/** Counts protobufjs's code generation (Type.setup) from now on. */
function countSetups(): string[] {
  const seen: string[] = [];
  setupProto.setup = function (this: protobuf.Type) {
    seen.push(this.fullName);
    return originalSetup.call(this);
  };
  return seen;
}

afterEach(() => {
  setupProto.setup = originalSetup;
});

function catalog(services = 20) {
  const list = [];
  for (let s = 0; s < services; s++) {
    list.push({
      name: `svc-${s}`,
      instances: [{ id: `svc-${s}-0`, address: `10.0.2.${s + 1}`, port: 8080, sidecarPort: 15006 }],
    });
  }
  return parseCatalog({ services: list });
}

/** Whether protobufjs generated `type`'s decoder yet (setup() makes it an own property). */
const generated = (name: string) => Object.hasOwn(messageType(name), 'decode');

describe('codec warm-up after the first snapshot', () => {
  it('leaves nothing for the first sidecar to generate', async () => {
    const store = new SnapshotStore({ logger: silentLogger, debounceMs: 0, maxDebounceMs: 0 });
    warmCodecsAfterFirstSnapshot(store, silentLogger);
    const delta = 'envoy.service.discovery.v3.DeltaDiscoveryRequest';
    const node = 'envoy.config.core.v3.Node';
    expect(generated(delta)).toBe(false);
    expect(generated(node)).toBe(false);
    store.setCatalog(catalog());
    store.flush();
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    // The request side: the first request of either mode is decoded by generated code.
    expect(generated(delta)).toBe(true);
    expect(generated(node)).toBe(true);

    // The own resources of a sidecar of another service than the one warmed with.
    const setups = countSetups();
    let own = 0;
    store.watch(
      { nodeId: 'svc-7-0', service: 'svc-7', outboundPort: 15001, dnsPort: 15053 },
      (view) => {
        for (const kind of RESOURCE_KINDS) {
          for (const r of view.all(kind)) {
            if (view.snapshot.shared[kind].get(r.name) === r) continue;
            own++;
            expect(r.sotwEntry.length).toBeGreaterThan(0);
            expect(r.deltaEntry.length).toBeGreaterThan(0);
          }
        }
      },
    );
    expect(own).toBeGreaterThan(2); // inbound and outbound listeners, the local app cluster, ...
    expect(setups).toEqual([]);
  });

  it('without it (LUCID_CODEC_WARMUP=off) the first sidecar generates the code itself', async () => {
    // Another file would start fresh; here the first test warmed this worker's types, so this
    // checks the switch: no listener is registered at all.
    const store = new SnapshotStore({ logger: silentLogger, debounceMs: 0, maxDebounceMs: 0 });
    process.env.LUCID_CODEC_WARMUP = 'off';
    let listeners = 0;
    const counting = {
      onSnapshot: (l: Parameters<SnapshotStore['onSnapshot']>[0]) => {
        listeners++;
        return store.onSnapshot(l);
      },
    };
    try {
      warmCodecsAfterFirstSnapshot(counting, silentLogger);
    } finally {
      delete process.env.LUCID_CODEC_WARMUP;
    }
    expect(listeners).toBe(0);
    warmCodecsAfterFirstSnapshot(counting, silentLogger);
    expect(listeners).toBe(1);
  });
});
