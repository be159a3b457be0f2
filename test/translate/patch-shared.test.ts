// translateShared patches the last build's resources when only a few services changed
// (their MeshService objects): over any sequence of catalog edits, the patched set must be
// the full translation's, resource for resource and in the same order (the snapshot's
// version hashes that order, and replicas must agree on it).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { reuseUnchanged, type Catalog } from '../../src/catalog/model.js';
import { buildMesh, DEFAULT_MESH_SETTINGS, MeshCache } from '../../src/mesh/index.js';
import { parseTrafficDocument } from '../../src/traffic/schema.js';
import { TranslationCache, translateShared } from '../../src/translate/index.js';
import type { ResourceSet } from '../../src/translate/types.js';
import { catalogWalk } from '../support/catalog-walk.js';

const walk = catalogWalk({
  names: Array.from({ length: 24 }, (_, i) => `svc-${i}`),
  addressPrefix: '10.1',
  tags: true,
});
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

const entries = (set: ResourceSet) =>
  Object.fromEntries(
    Object.entries(set).map(([kind, map]) => [kind, [...(map as Map<string, unknown>)]]),
  );

describe('translateShared, patched', () => {
  it('gives the full translation, in the same order, over any sequence of catalog edits', () => {
    fc.assert(
      fc.property(fc.array(walk.step, { minLength: 1, maxLength: 15 }), (steps) => {
        const state = walk.initial();
        const meshCache = new MeshCache();
        const cache = new TranslationCache();
        let last: Catalog | undefined;
        for (const s of [undefined, ...steps]) {
          if (s) walk.apply(state, s);
          const catalog = reuseUnchanged(last, walk.catalogOf(state));
          last = catalog;
          const mesh = buildMesh({ catalog, traffic, settings: DEFAULT_MESH_SETTINGS }, meshCache);
          expect(entries(translateShared(mesh, cache))).toEqual(entries(translateShared(mesh)));
        }
      }),
      { numRuns: 150 },
    );
  });
});
