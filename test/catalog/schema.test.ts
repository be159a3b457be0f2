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

  it('rejects an unspecified address, a sidecarPort equal to the app port (no localAppAddress) and an empty tag', () => {
    const svc = (i: Record<string, unknown>) => ({
      services: [{ name: 'a', instances: [inst(i)] }],
    });
    expect(problemsOf(svc({ address: '0.0.0.0' }))).toEqual([
      'services[0].instances[0].address: expected the instance\'s own IP address (peers connect to it), got "0.0.0.0" (the unspecified address)',
    ]);
    expect(problemsOf(svc({ address: '::' }))[0]).toContain('got "::" (the unspecified address)');
    expect(problemsOf(svc({ sidecarPort: 9101 }))).toEqual([
      "services[0].instances[0].sidecarPort: expected a port other than the app's port 9101: the sidecar listens on sidecarPort and forwards to the app on port (set localAppAddress when the app runs elsewhere)",
    ]);
    expect(problemsOf(svc({ tags: ['v1', ''] }))).toEqual([
      'services[0].instances[0].tags[1]: expected a non-empty tag, got ""',
    ]);
    // The app elsewhere (another network namespace): the same port number is fine.
    expect(() =>
      parseCatalog(svc({ sidecarPort: 9101, localAppAddress: '10.0.0.7' })),
    ).not.toThrow();
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
