// A sidecar's own resources are made from a sibling instance's bytes with the instance id
// swapped (src/snapshot/sibling-encoding.ts) instead of protobuf-encoding each one: the bytes
// must be exactly what encoding them gives, for SotW and delta entries alike, and anything the
// swap cannot do exactly (ids of other lengths, digit-only ids) is encoded as before.
import { describe, expect, it } from 'vitest';
import { parseCatalog } from '../../src/catalog/schema.js';
import type { ProxyIdentity } from '../../src/catalog/model.js';
import { meshProxy } from '../../src/mesh/index.js';
import { RESOURCE_KINDS, TYPE_URLS, encodeMessage } from '../../src/protos/envoy.js';
import { deltaResourceEntry, sotwResourceEntry } from '../../src/protos/wire.js';
import { isLazyResource } from '../../src/snapshot/lazy-resource.js';
import type { ProxyView } from '../../src/snapshot/proxy-view.js';
import { siblingCounters } from '../../src/snapshot/sibling-encoding.js';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { translateProxy } from '../../src/translate/index.js';

const IDS = ['web-1', 'web-2', 'web-3', 'web-4', 'web-10', '1001', '1002'];

/**
 * `port`: the app port, different per test, so that one test's instances are not the other's
 * siblings (templates are kept module-wide while their resource lives).
 */
function catalog(port: number) {
  return parseCatalog({
    services: [
      {
        name: 'web',
        protocol: 'http',
        upstreams: ['api'],
        instances: IDS.map((id, i) => ({
          id,
          address: `10.0.0.${i + 1}`,
          port,
          sidecarPort: port + 1000,
        })),
      },
      {
        name: 'api',
        protocol: 'http',
        instances: [{ id: 'api-1', address: '10.0.1.1', port: 8080, sidecarPort: 15006 }],
      },
    ],
  });
}

function proxyOf(id: string): ProxyIdentity {
  return { nodeId: id, service: 'web', outboundPort: 15001 };
}

/** Each own resource's bytes, read through the entry its protocol asks for, and the truth. */
function compare(store: SnapshotStore, view: ProxyView, id: string, entry: 'sotw' | 'delta') {
  const mesh = view.snapshot.mesh;
  const truth = translateProxy(mesh, meshProxy(mesh, proxyOf(id)));
  let compared = 0;
  for (const kind of RESOURCE_KINDS) {
    for (const [name, message] of truth[kind]) {
      const r = view.get(kind, name)!;
      expect(isLazyResource(r), `${kind} ${name}`).toBe(true);
      const got = entry === 'sotw' ? r.sotwEntry : r.deltaEntry;
      const expected = Buffer.from(encodeMessage(TYPE_URLS[kind], message, name));
      expect(Buffer.from(r.value).equals(expected), `${kind} ${name} of ${id}`).toBe(true);
      // The whole entry too: a delta entry names the resource and carries its version.
      const whole =
        entry === 'sotw'
          ? sotwResourceEntry(TYPE_URLS[kind], expected)
          : deltaResourceEntry(TYPE_URLS[kind], name, r.version, expected);
      expect(got.equals(whole), `${entry} entry of ${kind} ${name} of ${id}`).toBe(true);
      // Asked again, the entry is joined from what is kept: the same bytes.
      const again = entry === 'sotw' ? r.sotwEntry : r.deltaEntry;
      expect(again.equals(whole), `${entry} entry of ${kind} ${name} of ${id}, again`).toBe(true);
      compared++;
    }
  }
  expect(store.ready).toBe(true);
  return compared;
}

describe('own resources from a sibling instance', () => {
  for (const entry of ['sotw', 'delta'] as const) {
    it(`${entry}: every instance's own resources are the bytes encoding gives`, () => {
      const store = new SnapshotStore({ logger: silentLogger, debounceMs: 0, maxDebounceMs: 0 });
      store.setCatalog(catalog(entry === 'sotw' ? 8080 : 8081));
      store.flush();
      let compared = 0;
      const reusedBy = new Map<string, number>();
      const fromPieces = new Map<string, number>();
      for (const id of IDS) {
        const before = siblingCounters.reused;
        const piecesBefore = siblingCounters.pieces;
        let view: ProxyView | undefined;
        store.watch(proxyOf(id), (v) => (view = v));
        compared += compare(store, view!, id, entry);
        reusedBy.set(id, siblingCounters.reused - before);
        fromPieces.set(id, siblingCounters.pieces - piecesBefore);
      }
      expect(compared).toBeGreaterThanOrEqual(IDS.length * 3);
      // Its inbound listener and local app cluster name the instance: web-2..web-4 reuse
      // web-1's bytes; web-10 (a longer id) and the digit-only ids are encoded.
      for (const id of ['web-2', 'web-3', 'web-4']) expect(reusedBy.get(id), id).toBe(2);
      // ...joined from web-1's kept pieces, without copying and splitting bytes again.
      for (const id of ['web-2', 'web-3', 'web-4']) expect(fromPieces.get(id), id).toBe(2);
      for (const id of ['web-10', '1001', '1002']) expect(reusedBy.get(id), id).toBe(0);
    });
  }
});
