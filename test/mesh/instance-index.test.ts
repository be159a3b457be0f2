// findMeshInstance keeps one index and moves it from mesh to mesh (only changed services'
// instances): whatever the sequence of meshes and the order they are asked about, it must
// answer what a fresh scan of that mesh answers.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { findMeshInstance } from '../../src/mesh/proxy.js';
import type { Mesh, MeshInstance, MeshService } from '../../src/mesh/types.js';

function scan(mesh: Mesh, id: string): { service: string; instance: MeshInstance } | undefined {
  for (const service of mesh.services) {
    const instance = service.instances.find((i) => i.id === id);
    if (instance) return { service: service.name, instance };
  }
  return undefined;
}

const instance = (id: string): MeshInstance =>
  ({ id, address: '10.0.0.1', port: 80, health: 'passing' }) as MeshInstance;
const service = (name: string, ids: readonly string[]): MeshService =>
  ({ name, instances: ids.map(instance) }) as unknown as MeshService;
const meshOf = (services: readonly MeshService[]): Mesh => ({ services }) as unknown as Mesh;

const ID = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f');
// One step: change one service's instance ids (ids may repeat, within or across services),
// add or drop a service, or leave the mesh as it is; then ask about some earlier mesh.
const step = fc.record({
  kind: fc.constantFrom('change', 'add', 'drop', 'same'),
  at: fc.nat(),
  ids: fc.array(ID, { maxLength: 3 }),
  ask: fc.nat(),
});

describe('findMeshInstance', () => {
  it('answers as a fresh scan of the mesh, across any sequence of meshes', () => {
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 12 }), (steps) => {
        let services = [service('s0', ['a']), service('s1', ['b', 'c']), service('s2', [])];
        const meshes: Mesh[] = [meshOf(services)];
        for (const s of steps) {
          const i = s.at % Math.max(1, services.length);
          if (s.kind === 'change' && services.length > 0) {
            services = services.map((x, j) => (j === i ? service(x.name, s.ids) : x));
          } else if (s.kind === 'add') {
            services = [...services, service(`s${services.length + 10}`, s.ids)];
          } else if (s.kind === 'drop' && services.length > 0) {
            services = services.filter((_, j) => j !== i);
          }
          meshes.push(meshOf(services));
          // The newest mesh, then one of the earlier ones (a dump of an older snapshot).
          for (const mesh of [meshes.at(-1)!, meshes[s.ask % meshes.length]!]) {
            for (const id of ['a', 'b', 'c', 'd', 'e', 'f', 'zz']) {
              const found = findMeshInstance(mesh, id);
              const expected = scan(mesh, id);
              expect(found && { service: found.service.name, instance: found.instance }).toEqual(
                expected,
              );
              if (found) expect(mesh.services).toContain(found.service);
            }
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
