// Bind ports reported as problems of the mesh (src/mesh/build.ts, bindPortProblems) follow the
// catalog also through a build that patches the last mesh (only instances changed).
import { describe, expect, it } from 'vitest';
import { parseCatalog } from '../../src/catalog/schema.js';
import { buildMesh, DEFAULT_MESH_SETTINGS, MeshCache } from '../../src/mesh/index.js';
import { parseTrafficDocument } from '../../src/traffic/schema.js';

const traffic = parseTrafficDocument([]);
const settings = { ...DEFAULT_MESH_SETTINGS, scope: 'declared' as const };
const others = ['api', 'db', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map((name, i) => ({
  name,
  instances: [{ id: `${name}-1`, address: `10.0.1.${i + 1}`, port: 80 }],
}));
const catalog = (sidecarPort: number) =>
  parseCatalog({
    services: [
      {
        name: 'web',
        upstreams: [{ name: 'api', localBindPort: 9191 }],
        instances: [{ id: 'web-1', address: '10.0.0.1', port: 80, sidecarPort }],
      },
      ...others,
    ],
  });

describe('bind port problems', () => {
  it('an instance moved onto a bind port of its service is reported, and cleared', () => {
    const cache = new MeshCache();
    const first = catalog(15006);
    // Only web's instances change, its other fields and every other service kept (as a
    // source's catalog keeps unchanged objects): the build patches the last mesh.
    const moved = (port: number) => ({
      ...first,
      services: first.services.map((s) =>
        s.name === 'web'
          ? { ...s, instances: catalog(port).services.find((x) => x.name === 'web')!.instances }
          : s,
      ),
    });
    const messages = (c: typeof first) =>
      buildMesh({ catalog: c, traffic, settings }, cache).problems.map((p) => p.message);
    expect(messages(first)).toEqual([]);
    expect(messages(moved(9191))).toEqual([
      'upstream "api": localBindPort 9191 is the sidecar port of instance web-1 (its inbound listener, on 0.0.0.0); no listener there for "api" on that sidecar',
    ]);
    expect(messages(moved(15006))).toEqual([]);
  });
});
