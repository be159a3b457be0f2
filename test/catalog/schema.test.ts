import { describe, expect, it } from 'vitest';
import { CatalogValidationError, parseCatalog } from '../../src/catalog/schema.js';

function problemsOf(doc: unknown): string[] {
  try {
    parseCatalog(doc);
  } catch (err) {
    if (err instanceof CatalogValidationError) return err.problems;
    throw err;
  }
  throw new Error('expected the catalog to be rejected');
}

const inst = (over: Record<string, unknown> = {}) => ({
  id: 'a-1',
  address: '127.0.0.1',
  port: 9101,
  ...over,
});

describe('catalog schema', () => {
  it('names the path and the bad value', () => {
    const doc = {
      services: [
        { name: 'a', instances: [] },
        { name: 'b', instances: [] },
        { name: 'c', instances: [inst({ port: '80a' })] },
      ],
    };
    expect(problemsOf(doc)).toEqual([
      'services[2].instances[0].port: expected integer 1-65535, got "80a"',
    ]);
  });

  it('rejects unknown protocol, bad health, out-of-range port and unknown keys', () => {
    const doc = {
      services: [
        {
          name: 'a',
          protocol: 'udp',
          instances: [inst({ health: 'sick', sidecarPort: 70000, colour: 'red' })],
        },
      ],
    };
    const problems = problemsOf(doc);
    expect(problems).toContain(
      'services[0].protocol: expected one of http | http2 | grpc | tcp, got "udp"',
    );
    expect(problems).toContain(
      'services[0].instances[0].health: expected one of passing | warning | critical, got "sick"',
    );
    expect(problems).toContain(
      'services[0].instances[0].sidecarPort: expected integer 1-65535, got 70000',
    );
    expect(
      problems.some((p) => p.startsWith('services[0].instances[0]') && p.includes('colour')),
    ).toBe(true);
  });

  it('rejects duplicate services and instance ids across services', () => {
    const problems = problemsOf({
      services: [
        { name: 'a', instances: [inst({ id: 'x' })] },
        { name: 'a', instances: [] },
        { name: 'b', instances: [inst({ id: 'x' })] },
      ],
    });
    expect(problems).toContain('services[1].name: duplicate service "a" (also services[0])');
    expect(
      problems.some((p) => p.startsWith('services[2].instances[0].id: duplicate instance id "x"')),
    ).toBe(true);
  });

  it('requires outboundPort for tcp and only for tcp', () => {
    expect(problemsOf({ services: [{ name: 'db', protocol: 'tcp' }] })[0]).toMatch(
      /^services\[0\]\.outboundPort: required for tcp services/,
    );
    expect(problemsOf({ services: [{ name: 'web', outboundPort: 5000 }] })[0]).toMatch(
      /^services\[0\]\.outboundPort: only valid for tcp services/,
    );
  });

  it('fills defaults and sorts services and instances', () => {
    const catalog = parseCatalog({
      services: [
        { name: 'zeta', instances: [inst({ id: 'z-2' }), inst({ id: 'z-1' })] },
        { name: 'alpha' },
      ],
    });
    expect(catalog.services.map((s) => s.name)).toEqual(['alpha', 'zeta']);
    expect(catalog.services[1]!.instances.map((i) => i.id)).toEqual(['z-1', 'z-2']);
    expect(catalog.services[1]!.instances[0]).toMatchObject({
      health: 'passing',
      tags: [],
      meta: {},
    });
    expect(catalog.services[0]!.protocol).toBe('http');
  });

  it('treats an empty document as an empty catalog', () => {
    expect(parseCatalog(null)).toEqual({ services: [] });
  });
});
