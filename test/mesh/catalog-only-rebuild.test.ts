// A build after a catalog-only change looks up only what changed (PartCache with
// changedServicesSince): over any sequence of catalog edits under a traffic configuration
// that ties services together (splits to, redirects to and upstream overrides of other
// services), the cached build must equal a build from scratch.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { reuseUnchanged, type Catalog } from '../../src/catalog/model.js';
import { parseCatalog } from '../../src/catalog/schema.js';
import { buildMesh, DEFAULT_MESH_SETTINGS, MeshCache, meshService } from '../../src/mesh/index.js';
import type { Mesh } from '../../src/mesh/types.js';
import { parseTrafficDocument } from '../../src/traffic/schema.js';

const NAMES = ['web', 'api', 'billing', 'shadow', 'extra'];
const subsets = { v1: { Filter: '"v1" in Service.Tags' }, v2: { Filter: '"v2" in Service.Tags' } };
const traffic = parseTrafficDocument([
  { Kind: 'service-resolver', Name: 'billing', Subsets: subsets },
  { Kind: 'service-resolver', Name: 'shadow', Redirect: { Service: 'extra' } },
  {
    Kind: 'service-splitter',
    Name: 'api',
    Splits: [
      { Weight: 50, Service: 'billing', ServiceSubset: 'v1' },
      { Weight: 50, Service: 'extra' },
    ],
  },
  {
    Kind: 'service-defaults',
    Name: 'web',
    UpstreamConfig: { Overrides: [{ Name: 'api', ConnectTimeoutMs: 1500 }] },
  },
]);

// A step: one service's protocol, instance count, tags or presence changes.
const step = fc.record({
  service: fc.constantFrom(...NAMES),
  present: fc.boolean(),
  protocol: fc.constantFrom('http', 'http2', 'grpc', 'tcp'),
  instances: fc.integer({ min: 0, max: 3 }),
  tag: fc.constantFrom('v1', 'v2'),
});

describe('buildMesh after catalog-only changes', () => {
  it('equals a build from scratch over any sequence of catalog edits', () => {
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 10 }), (steps) => {
        const state = new Map(
          NAMES.map((n) => [
            n,
            { present: true, protocol: 'http', instances: 2, tag: 'v1' } as Omit<
              (typeof steps)[number],
              'service'
            >,
          ]),
        );
        const cache = new MeshCache();
        let last: Catalog | undefined;
        let previous: Mesh | undefined;
        // Every service found by name in `mesh` is that mesh's own object.
        const lookups = (mesh: Mesh) => {
          for (const s of mesh.services) expect(meshService(mesh, s.name)).toBe(s);
        };
        for (const s of [undefined, ...steps]) {
          if (s) state.set(s.service, s);
          // As the store does: unchanged services keep their objects.
          const catalog = reuseUnchanged(
            last,
            parseCatalog({
              services: NAMES.filter((n) => state.get(n)!.present).map((name) => {
                const st = state.get(name)!;
                return {
                  name,
                  protocol: st.protocol,
                  ...(st.protocol === 'tcp' ? { outboundPort: 9000 + NAMES.indexOf(name) } : {}),
                  instances: Array.from({ length: st.instances }, (_, i) => ({
                    id: `${name}-${i}`,
                    address: `10.0.${NAMES.indexOf(name)}.${i + 1}`,
                    port: 80,
                    sidecarPort: 15006,
                    tags: [i === 0 ? st.tag : 'v2'],
                  })),
                };
              }),
            }),
          );
          last = catalog;
          const inputs = { catalog, traffic, settings: DEFAULT_MESH_SETTINGS };
          const mesh = buildMesh(inputs, cache);
          expect(mesh).toEqual(buildMesh(inputs));
          lookups(mesh);
          if (previous) lookups(previous);
          previous = mesh;
        }
      }),
      { numRuns: 200 },
    );
  });
});
