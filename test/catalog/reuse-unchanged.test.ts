// reuseUnchanged: a new complete catalog keeps the previous objects for whatever did not change,
// which is what lets the store re-translate only the services that did.
import { describe, expect, it } from 'vitest';
import { reuseUnchanged, sameServices } from '../../src/catalog/model.js';
import { parseCatalog } from '../../src/catalog/schema.js';

function catalog(apiHealth = 'passing', extra: string[] = []) {
  return parseCatalog({
    services: [
      {
        name: 'api',
        instances: [
          { id: 'api-1', address: '10.0.0.1', port: 80 },
          { id: 'api-2', address: '10.0.0.2', port: 80, health: apiHealth },
        ],
      },
      { name: 'db', protocol: 'tcp', outboundPort: 5432, instances: [] },
      ...extra.map((name) => ({ name, instances: [] })),
    ],
  });
}

describe('reuseUnchanged', () => {
  it('keeps every object of an equal catalog, so it is recognised as unchanged', () => {
    const prev = catalog();
    const next = reuseUnchanged(prev, catalog());
    expect(sameServices(prev, next)).toBe(true);
  });

  it('replaces only what changed: the changed instance, its service; the rest keep identity', () => {
    const prev = catalog();
    const next = reuseUnchanged(prev, catalog('critical'));
    expect(sameServices(prev, next)).toBe(false);
    const [api, db] = next.services;
    expect(db).toBe(prev.services[1]);
    expect(api).not.toBe(prev.services[0]);
    expect(api!.instances[0]).toBe(prev.services[0]!.instances[0]); // api-1 unchanged
    expect(api!.instances[1]).not.toBe(prev.services[0]!.instances[1]);
    expect(api!.instances[1]!.health).toBe('critical');
    expect(next).toEqual(catalog('critical')); // contents are exactly the new catalog's
  });

  it('sees added and removed services', () => {
    const prev = catalog();
    const added = reuseUnchanged(prev, catalog('passing', ['web']));
    expect(sameServices(prev, added)).toBe(false);
    expect(added.services.map((s) => s.name)).toEqual(['api', 'db', 'web']);
    const removed = reuseUnchanged(added, catalog());
    expect(sameServices(added, removed)).toBe(false);
    // api and db were never replaced: back to the very objects of the first catalog.
    expect(sameServices(prev, removed)).toBe(true);
  });

  it('notices a change to any field of a service or an instance (fields added later included)', () => {
    const full = () =>
      parseCatalog({
        services: [
          {
            name: 'db',
            protocol: 'tcp',
            outboundPort: 5432,
            instances: [
              {
                id: 'db-1',
                address: '10.0.0.9',
                port: 5432,
                sidecarPort: 15006,
                health: 'warning',
                tags: ['a'],
                meta: { zone: 'z1' },
                datacenter: 'dc1',
                region: 'eu',
                zone: 'eu-a',
              },
            ],
          },
        ],
      });
    const prev = full();
    const mutate = (value: unknown): unknown =>
      typeof value === 'string'
        ? `${value}x`
        : typeof value === 'number'
          ? value + 1
          : Array.isArray(value)
            ? [...value, 'extra']
            : { ...(value as object), extra: 'x' };
    const service = prev.services[0]! as unknown as Record<string, unknown>;
    const instance = prev.services[0]!.instances[0]! as unknown as Record<string, unknown>;
    for (const key of Object.keys(service).filter((k) => k !== 'instances')) {
      const next = full();
      (next.services[0] as unknown as Record<string, unknown>)[key] = mutate(service[key]);
      expect(reuseUnchanged(prev, next).services[0], `service.${key}`).not.toBe(prev.services[0]);
    }
    for (const key of Object.keys(instance)) {
      const next = full();
      const inst = next.services[0]!.instances[0] as unknown as Record<string, unknown>;
      inst[key] = mutate(instance[key]);
      const got = reuseUnchanged(prev, next).services[0]!;
      expect(got, `instance.${key}`).not.toBe(prev.services[0]);
      expect(got.instances[0], `instance.${key}`).not.toBe(prev.services[0]!.instances[0]);
    }
    // Unchanged, the same checks reuse everything.
    expect(reuseUnchanged(prev, full()).services[0]).toBe(prev.services[0]);
  });
});
