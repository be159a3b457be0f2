// Endpoint churn patches the shared translation service by service and never runs a full
// build: the translation cache must then hold one translation per service, not also the one
// each flip replaced (the soak's heap creep, docs/benchmarks.md "Soak").
import { describe, expect, it } from 'vitest';
import { reuseUnchanged, type Catalog } from '../../src/catalog/model.js';
import { buildMesh, DEFAULT_MESH_SETTINGS, MeshCache } from '../../src/mesh/index.js';
import { parseTrafficDocument } from '../../src/traffic/schema.js';
import { TranslationCache, translateShared } from '../../src/translate/index.js';
import { catalogWalk } from '../support/catalog-walk.js';

const SERVICES = 40;
const walk = catalogWalk({
  names: Array.from({ length: SERVICES }, (_, i) => `svc-${i}`),
  addressPrefix: '10.2',
});
const traffic = parseTrafficDocument([]);

describe('TranslationCache under endpoint churn', () => {
  it('keeps one translation per service over rounds of health flips, all patched', () => {
    const state = walk.initial();
    const meshCache = new MeshCache();
    const cache = new TranslationCache();
    let last: Catalog | undefined;
    const build = () => {
      const catalog = reuseUnchanged(last, walk.catalogOf(state));
      last = catalog;
      const mesh = buildMesh({ catalog, traffic, settings: DEFAULT_MESH_SETTINGS }, meshCache);
      return translateShared(mesh, cache);
    };
    build();
    expect(cache.kept.parts).toBe(SERVICES);
    // As the soak's flips: round-robin over the services, one instance's health each time,
    // back and forth.
    for (let round = 0; round < 3; round++) {
      for (let at = 0; at < SERVICES; at++) {
        walk.apply(state, { at, kind: 'health', n: 0 });
        build();
        expect(cache.patched, 'a health flip patches the last build').toBeDefined();
      }
      expect(cache.kept).toEqual({ parts: SERVICES, virtualHosts: SERVICES });
    }
  });
});
