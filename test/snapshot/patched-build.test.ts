// After a catalog change to a few services the store patches the last build (translation and
// encoding of the changed services only). Whatever the sequence of changes, each snapshot
// must be what a fresh store makes of the same catalog: the same resources, in the same
// order, with the same version (replicas agree on versions by content), and an endpoint flip
// must still encode just the changed assignment.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { reuseUnchanged, type Catalog } from '../../src/catalog/model.js';
import { RESOURCE_KINDS } from '../../src/protos/envoy.js';
import type { Snapshot } from '../../src/snapshot/snapshot.js';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { catalogWalk } from '../support/catalog-walk.js';

const walk = catalogWalk({
  names: Array.from({ length: 30 }, (_, i) => `svc-${String(i).padStart(2, '0')}`),
  addressPrefix: '10.2',
});
const { names: NAMES, catalogOf } = walk;
const logger = createLogger('silent');

const content = (s: Snapshot) => ({
  version: s.version,
  ...Object.fromEntries(
    RESOURCE_KINDS.map((kind) => [kind, [...s.shared[kind]].map(([n, r]) => `${n}@${r.version}`)]),
  ),
});

describe('patched builds', () => {
  it('give what a fresh store gives, over any sequence of catalog changes', () => {
    fc.assert(
      fc.property(fc.array(walk.step, { minLength: 1, maxLength: 45 }), (steps) => {
        const state = walk.initial();
        const store = new SnapshotStore({ logger, debounceMs: 0 });
        let last: Catalog | undefined;
        for (const s of [undefined, ...steps]) {
          if (s) walk.apply(state, s);
          // As the file source delivers it: unchanged services keep their objects.
          const catalog = reuseUnchanged(last, catalogOf(state));
          last = catalog;
          store.setCatalog(catalog);
          store.flush();
          const fresh = new SnapshotStore({ logger });
          fresh.setCatalog(catalogOf(state));
          expect(content(store.snapshot!)).toEqual(content(fresh.snapshot!));
          fresh.close();
        }
        store.close();
      }),
      { numRuns: 40 },
    );
  });

  it('an endpoint flip encodes one resource, patched or after a full pass', () => {
    const state = walk.initial();
    const store = new SnapshotStore({ logger, debounceMs: 0 });
    let last = catalogOf(state);
    store.setCatalog(last);
    // Past FULL_ENCODE_EVERY (256): patched builds, then a full pass, then patched again.
    for (let k = 0; k < 300; k++) {
      const st = state.get(NAMES[k % NAMES.length]!)!;
      st.health = [st.health[0] === 'passing' ? 'critical' : 'passing', st.health[1]!];
      const before = store.encoder.counters.encoded;
      last = reuseUnchanged(last, catalogOf(state));
      store.setCatalog(last);
      store.flush();
      expect(store.encoder.counters.encoded - before).toBe(1);
    }
    store.close();
  });

  it('patched builds still drop what departed proxies left in the encoder', () => {
    const state = walk.initial();
    const store = new SnapshotStore({ logger, debounceMs: 0 });
    let last = catalogOf(state);
    store.setCatalog(last);
    const flip = (k: number) => {
      const st = state.get(NAMES[k % NAMES.length]!)!;
      st.health = [st.health[0] === 'passing' ? 'critical' : 'passing', st.health[1]!];
      last = reuseUnchanged(last, catalogOf(state));
      store.setCatalog(last);
      store.flush();
    };
    flip(0);
    const baseline = store.encoder.size;
    // Sidecars of every service with node ids of their own, each with its own listeners.
    const stops = NAMES.map((service, i) =>
      store.watch({ nodeId: `${service}-${i}-x`, service, outboundPort: 15001 }, () => {}),
    );
    flip(1);
    expect(store.encoder.size).toBeGreaterThan(baseline);
    for (const watch of stops) watch.stop();
    flip(2);
    flip(3);
    expect(store.encoder.size).toBe(baseline);
    store.close();
  });
});
