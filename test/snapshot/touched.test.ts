// What a patched build touched (src/snapshot/touched.ts), on the real pipeline (mesh build,
// translation, shared encode): an endpoint change names its one service; anything that may
// reach every proxy (a service added, other settings, a full encode) names none, so the
// fan-out visits every watcher.
import { describe, expect, it } from 'vitest';
import { reuseUnchanged, type Catalog } from '../../src/catalog/model.js';
import { parseCatalog } from '../../src/catalog/schema.js';
import { buildMesh, MeshCache } from '../../src/mesh/index.js';
import { DEFAULT_MESH_SETTINGS, type MeshSettings } from '../../src/mesh/types.js';
import { EMPTY_TRAFFIC } from '../../src/traffic/types.js';
import { TranslationCache, translateShared } from '../../src/translate/index.js';
import { ResourceEncoder } from '../../src/snapshot/encoder.js';
import { SharedResources } from '../../src/snapshot/shared-resources.js';
import { Snapshot } from '../../src/snapshot/snapshot.js';
import { patchedServices } from '../../src/snapshot/touched.js';

const NAMES = ['api', 'web', 'db'];

function catalog(apiAddress: string, names = NAMES): Catalog {
  return parseCatalog({
    services: names.map((name, i) => ({
      name,
      instances: [
        { id: `${name}-1`, address: name === 'api' ? apiAddress : `10.0.${i}.1`, port: 8080 },
      ],
    })),
  });
}

/** Builds as the store does, keeping its caches from build to build. */
function pipeline() {
  const meshCache = new MeshCache();
  const translationCache = new TranslationCache();
  const shared = new SharedResources(new ResourceEncoder(), translationCache);
  let last: Catalog | undefined;
  let previous: Snapshot | undefined;
  return (offered: Catalog, settings: MeshSettings = DEFAULT_MESH_SETTINGS) => {
    const c = reuseUnchanged(last, offered);
    last = c;
    const mesh = buildMesh(
      { catalog: c, traffic: EMPTY_TRAFFIC, policy: undefined, settings },
      meshCache,
    );
    const maps = shared.encode(translateShared(mesh, translationCache));
    const snapshot = new Snapshot(Snapshot.versionOf(maps), mesh, maps, 0, 0);
    const before = previous;
    previous = snapshot;
    return () => patchedServices(before!, snapshot, shared.changes, translationCache);
  };
}

describe('patchedServices', () => {
  it('names the one service an endpoint change patched', () => {
    const build = pipeline();
    build(catalog('10.9.0.1'));
    expect(build(catalog('10.9.0.2'))()).toEqual(new Set(['api']));
  });

  it('names none when a service was added (every scope may hold it)', () => {
    const build = pipeline();
    build(catalog('10.9.0.1'));
    expect(build(catalog('10.9.0.1', [...NAMES, 'cache']))()).toBeUndefined();
  });

  it('names none when the mesh settings changed', () => {
    const build = pipeline();
    build(catalog('10.9.0.1'));
    expect(build(catalog('10.9.0.2'), { ...DEFAULT_MESH_SETTINGS })()).toBeUndefined();
  });
});
