// translateShared patches the last build's resources when only a few services changed
// (their MeshService objects): over any sequence of catalog edits, the patched set must be
// the full translation's, resource for resource and in the same order (the snapshot's
// version hashes that order, and replicas must agree on it).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { reuseUnchanged, type Catalog } from '../../src/catalog/model.js';
import { parseCatalog } from '../../src/catalog/schema.js';
import { buildMesh, DEFAULT_MESH_SETTINGS, MeshCache } from '../../src/mesh/index.js';
import { parseTrafficDocument } from '../../src/traffic/schema.js';
import { TranslationCache, translateShared } from '../../src/translate/index.js';
import type { ResourceSet } from '../../src/translate/types.js';

const NAMES = Array.from({ length: 24 }, (_, i) => `svc-${i}`);
const traffic = parseTrafficDocument([
  {
    Kind: 'service-resolver',
    Name: 'svc-1',
    Subsets: { v1: { Filter: '"v1" in Service.Tags' }, v2: { Filter: '"v2" in Service.Tags' } },
  },
  {
    Kind: 'service-splitter',
    Name: 'svc-2',
    Splits: [{ Weight: 50 }, { Weight: 50, Service: 'svc-3' }],
  },
]);

interface State {
  present: boolean;
  protocol: 'http' | 'tcp';
  health: Array<'passing' | 'critical'>;
  tag: 'v1' | 'v2';
}

// One step changes one service: an instance's health (the common case), its tag, its
// protocol, its instance count, or whether it exists at all.
const step = fc.record({
  at: fc.nat({ max: NAMES.length - 1 }),
  kind: fc.constantFrom('health', 'health', 'health', 'tag', 'protocol', 'instances', 'presence'),
  n: fc.nat(),
});

function catalogOf(state: Map<string, State>): Catalog {
  return parseCatalog({
    services: NAMES.filter((n) => state.get(n)!.present).map((name, s) => {
      const st = state.get(name)!;
      return {
        name,
        protocol: st.protocol,
        ...(st.protocol === 'tcp' ? { outboundPort: 9000 + s } : {}),
        // svc-0's sidecars call svc-5 at a local bind port (a bind route while it is http).
        ...(name === 'svc-0' ? { upstreams: [{ name: 'svc-5', localBindPort: 7005 }] } : {}),
        instances: st.health.map((health, i) => ({
          id: `${name}-${i}`,
          address: `10.1.${s}.${i + 1}`,
          port: 80,
          sidecarPort: 15006,
          health,
          tags: [i === 0 ? st.tag : 'v2'],
        })),
      };
    }),
  });
}

const entries = (set: ResourceSet) =>
  Object.fromEntries(
    Object.entries(set).map(([kind, map]) => [kind, [...(map as Map<string, unknown>)]]),
  );

describe('translateShared, patched', () => {
  it('gives the full translation, in the same order, over any sequence of catalog edits', () => {
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 15 }), (steps) => {
        const state = new Map<string, State>(
          NAMES.map((n) => [
            n,
            { present: true, protocol: 'http', health: ['passing', 'passing'], tag: 'v1' },
          ]),
        );
        const meshCache = new MeshCache();
        const cache = new TranslationCache();
        let last: Catalog | undefined;
        for (const s of [undefined, ...steps]) {
          if (s) {
            const st = { ...state.get(NAMES[s.at]!)! };
            st.health = [...st.health];
            if (s.kind === 'health' && st.health.length > 0) {
              const i = s.n % st.health.length;
              st.health[i] = st.health[i] === 'passing' ? 'critical' : 'passing';
            }
            if (s.kind === 'tag') st.tag = st.tag === 'v1' ? 'v2' : 'v1';
            if (s.kind === 'protocol') st.protocol = st.protocol === 'http' ? 'tcp' : 'http';
            if (s.kind === 'instances')
              st.health = Array.from({ length: s.n % 4 }, () => 'passing');
            if (s.kind === 'presence') st.present = !st.present;
            state.set(NAMES[s.at]!, st);
          }
          const catalog = reuseUnchanged(last, catalogOf(state));
          last = catalog;
          const mesh = buildMesh({ catalog, traffic, settings: DEFAULT_MESH_SETTINGS }, meshCache);
          expect(entries(translateShared(mesh, cache))).toEqual(entries(translateShared(mesh)));
        }
      }),
      { numRuns: 150 },
    );
  });
});
