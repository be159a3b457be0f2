// buildMesh: Consul's discovery-chain semantics, fallbacks that break nothing else, reuse of
// unchanged parts, and robustness against any configuration the parser accepts.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseCatalog } from '../../src/catalog/schema.js';
import { buildMesh, DEFAULT_MESH_SETTINGS, MeshCache, meshService } from '../../src/mesh/index.js';
import type { Mesh } from '../../src/mesh/types.js';
import { TrafficDocumentError, parseTrafficDocument } from '../../src/traffic/schema.js';

const catalog = parseCatalog({
  services: ['web', 'api', 'billing', 'shadow'].map((name) => ({
    name,
    instances: [
      { id: `${name}-1`, address: '10.0.0.1', port: 80, sidecarPort: 15006, tags: ['v1'] },
      { id: `${name}-2`, address: '10.0.0.2', port: 80, sidecarPort: 15006, tags: ['v2'] },
    ],
  })),
});

const subsets = {
  v1: { Filter: '"v1" in Service.Tags' },
  v2: { Filter: '"v2" in Service.Tags' },
};

function meshOf(entries: unknown[], cache?: MeshCache): Mesh {
  return buildMesh(
    { catalog, traffic: parseTrafficDocument(entries), settings: DEFAULT_MESH_SETTINGS },
    cache,
  );
}

/** "backend:weight%" of the catch-all route of `service`. */
function defaultSplit(mesh: Mesh, service: string): string[] {
  const routes = meshService(mesh, service)!.routes;
  return routes[routes.length - 1]!.destinations.map((d) => `${d.backend}:${d.weight / 100}`);
}

describe('the discovery chain', () => {
  it('a splitter leg to another service follows that service’s own splitter, weights multiplied', () => {
    const mesh = meshOf([
      { Kind: 'service-resolver', Name: 'billing', Subsets: subsets },
      {
        Kind: 'service-splitter',
        Name: 'api',
        Splits: [{ Weight: 50 }, { Weight: 50, Service: 'billing' }],
      },
      {
        Kind: 'service-splitter',
        Name: 'billing',
        Splits: [
          { Weight: 80, ServiceSubset: 'v1' },
          { Weight: 20, ServiceSubset: 'v2' },
        ],
      },
    ]);
    expect(defaultSplit(mesh, 'api')).toEqual(['api:50', 'billing~v1:40', 'billing~v2:10']);
  });

  it('weights with decimals keep Consul’s two places and always sum to 100 %', () => {
    const mesh = meshOf([
      { Kind: 'service-resolver', Name: 'api', Subsets: subsets },
      {
        Kind: 'service-splitter',
        Name: 'api',
        Splits: [
          { Weight: 33.33, ServiceSubset: 'v1' },
          { Weight: 33.33, ServiceSubset: 'v2' },
          { Weight: 33.34, Service: 'billing' },
        ],
      },
    ]);
    const weights = meshService(mesh, 'api')!
      .routes.at(-1)!
      .destinations.map((d) => d.weight);
    expect(weights).toEqual([3333, 3333, 3334]);
  });

  it('a resolver redirect sends the service’s traffic to the target, and a loop is reported', () => {
    const redirected = meshOf([
      { Kind: 'service-resolver', Name: 'billing', Subsets: subsets },
      {
        Kind: 'service-resolver',
        Name: 'api',
        Redirect: { Service: 'billing', ServiceSubset: 'v2' },
      },
    ]);
    expect(defaultSplit(redirected, 'api')).toEqual(['billing~v2:100']);

    const loop = meshOf([
      { Kind: 'service-resolver', Name: 'api', Redirect: { Service: 'billing' } },
      { Kind: 'service-resolver', Name: 'billing', Redirect: { Service: 'api' } },
    ]);
    expect(defaultSplit(loop, 'api')).toHaveLength(1);
    expect(loop.problems.map((p) => p.message).join('\n')).toMatch(/redirect loop/);
  });

  it('splitters sending part of each other’s traffic back: the loop is cut and reported once', () => {
    const mesh = meshOf([
      {
        Kind: 'service-splitter',
        Name: 'api',
        Splits: [{ Weight: 50, Service: 'billing' }, { Weight: 50 }],
      },
      {
        Kind: 'service-splitter',
        Name: 'billing',
        Splits: [{ Weight: 50, Service: 'api' }, { Weight: 50 }],
      },
      // Three routes lead to api's splitter: still one problem each.
      {
        Kind: 'service-router',
        Name: 'api',
        Routes: [
          { Match: { HTTP: { PathPrefix: '/a' } }, Destination: { NumRetries: 1 } },
          { Match: { HTTP: { PathPrefix: '/b' } }, Destination: { NumRetries: 2 } },
        ],
      },
    ]);
    // billing's leg back to api goes to api itself (Consul refuses the chain).
    expect(defaultSplit(mesh, 'api')).toEqual(['api:75', 'billing:25']);
    expect(mesh.problems).toEqual([
      {
        kind: 'service-splitter',
        name: 'billing',
        message:
          "Splits[0]: splitter loop through api → billing → api; this part goes to api's default destination",
      },
      {
        kind: 'service-splitter',
        name: 'api',
        message:
          "Splits[0]: splitter loop through billing → api → billing; this part goes to billing's default destination",
      },
    ]);
  });

  it('a route or split to a tcp service is reported (Consul refuses it)', () => {
    const mesh = meshOf([
      { Kind: 'service-defaults', Name: 'billing', Protocol: 'tcp' },
      {
        Kind: 'service-router',
        Name: 'api',
        Routes: [{ Match: { HTTP: { PathPrefix: '/pay' } }, Destination: { Service: 'billing' } }],
      },
      {
        Kind: 'service-splitter',
        Name: 'web',
        Splits: [{ Weight: 50, Service: 'billing' }, { Weight: 50 }],
      },
    ]);
    expect(mesh.problems.map((p) => `${p.kind}/${p.name}: ${p.message}`)).toEqual(
      expect.arrayContaining([
        'service-router/api: Routes[0].Destination: service "billing" is tcp; requests routed to it are sent as HTTP all the same',
        'service-splitter/web: Splits[0]: service "billing" is tcp; requests routed to it are sent as HTTP all the same',
      ]),
    );
  });

  it('a failover datacenter without instances is reported once, not once per subset', () => {
    const mesh = meshOf([
      {
        Kind: 'service-resolver',
        Name: 'api',
        Subsets: subsets,
        Failover: { '*': { Datacenters: ['dc2'] } },
      },
    ]);
    expect(mesh.problems.map((p) => p.message)).toEqual([
      'Failover: datacenter "dc2" has no instances of "api"; the others keep working',
    ]);
  });

  it('a failover naming another service with datacenters is reported: Consul reads it otherwise', () => {
    const mesh = meshOf([
      {
        Kind: 'service-resolver',
        Name: 'api',
        Failover: {
          '*': {
            Service: 'billing',
            Datacenters: ['dc1'],
            Targets: [{ Service: 'shadow', Datacenter: 'dc1' }, { Datacenter: 'dc1' }],
          },
        },
      },
    ]);
    expect(mesh.problems.map((p) => `${p.kind}/${p.name}: ${p.message}`)).toEqual([
      'service-resolver/api: Failover["*"]: Datacenters with Service/ServiceSubset is not supported as Consul reads it (that target in those datacenters): the datacenters order "api"\'s own instances and "billing" is used in every datacenter',
      'service-resolver/api: Failover["*"].Targets[0]: Datacenter "dc1" with Service/ServiceSubset is not supported: failing over to "shadow" in every datacenter',
    ]);
  });

  it('a Redirect to a datacenter without instances is reported: every request would fail', () => {
    const mesh = meshOf([
      { Kind: 'service-resolver', Name: 'api', Redirect: { Datacenter: 'dc2' } },
      { Kind: 'service-resolver', Name: 'web', Redirect: { Datacenter: 'dc1' } },
    ]);
    expect(mesh.problems.map((p) => `${p.kind}/${p.name}: ${p.message}`)).toEqual([
      'service-resolver/api: Redirect: datacenter "dc2" has no instances of "api"; every request for it fails (503)',
    ]);
    expect(meshService(mesh, 'api')!.backends[0]!.localities).toEqual([]);
  });

  it('a Redirect to another service in a datacenter is reported: the datacenter is not kept to', () => {
    const mesh = meshOf([
      {
        Kind: 'service-resolver',
        Name: 'api',
        Redirect: { Service: 'billing', Datacenter: 'dc2' },
      },
    ]);
    expect(mesh.problems.map((p) => `${p.kind}/${p.name}: ${p.message}`)).toEqual([
      'service-resolver/api: Redirect: Datacenter "dc2" with Service/ServiceSubset is not supported: requests go to "billing" in every datacenter',
    ]);
    expect(defaultSplit(mesh, 'api')).toEqual(['billing:100']);
  });

  it('a route naming a missing subset falls back to the default destination; other routes stay', () => {
    const mesh = meshOf([
      { Kind: 'service-resolver', Name: 'api', Subsets: subsets, DefaultSubset: 'v1' },
      {
        Kind: 'service-router',
        Name: 'api',
        Routes: [
          { Match: { HTTP: { PathPrefix: '/a' } }, Destination: { ServiceSubset: 'v9' } },
          { Match: { HTTP: { PathPrefix: '/b' } }, Destination: { ServiceSubset: 'v2' } },
        ],
      },
    ]);
    const routes = meshService(mesh, 'api')!.routes;
    expect(routes.map((r) => r.destinations.map((d) => d.backend).join())).toEqual([
      'api~v1',
      'api~v2',
      'api~v1',
    ]);
    expect(mesh.problems).toEqual([
      {
        kind: 'service-router',
        name: 'api',
        message:
          'Routes[0].Destination: subset "v9" is not defined by service-resolver/api; using the default destination',
      },
    ]);
  });

  it('RequestTimeout falls back to the resolver’s; retries with only NumRetries use Consul’s defaults', () => {
    const mesh = meshOf([
      { Kind: 'service-resolver', Name: 'api', RequestTimeout: '7s' },
      {
        Kind: 'service-router',
        Name: 'api',
        Routes: [{ Match: { HTTP: { PathPrefix: '/r' } }, Destination: { NumRetries: 2 } }],
      },
    ]);
    const [route, fallback] = meshService(mesh, 'api')!.routes;
    expect(route!.timeoutMs).toBe(7000);
    expect(fallback!.timeoutMs).toBe(7000);
    expect(route!.retry).toMatchObject({
      numRetries: 2,
      retryOn: [
        'cancelled',
        'connect-failure',
        'refused-stream',
        'retriable-status-codes',
        'unavailable',
      ],
    });
  });

  it('NumRetries 0 with RetryOn is not set, as in Consul: Envoy then retries once (its default)', () => {
    const mesh = meshOf([
      {
        Kind: 'service-router',
        Name: 'api',
        Routes: [
          {
            Match: { HTTP: { PathPrefix: '/r' } },
            Destination: { NumRetries: 0, RetryOnConnectFailure: true },
          },
        ],
      },
    ]);
    const retry = meshService(mesh, 'api')!.routes[0]!.retry!;
    expect(retry.retryOn).toEqual(['connect-failure']);
    expect(retry).not.toHaveProperty('numRetries');
  });
});

describe('reuse', () => {
  it('an unchanged service keeps its very objects; a router edit rebuilds only its service', () => {
    const cache = new MeshCache();
    const entries = (timeout: string) => [
      { Kind: 'service-resolver', Name: 'api', Subsets: subsets },
      {
        Kind: 'service-router',
        Name: 'api',
        Routes: [
          { Match: { HTTP: { PathPrefix: '/x' } }, Destination: { RequestTimeout: timeout } },
        ],
      },
    ];
    // The same traffic object (a loader keeps unchanged entries' identity).
    const first = parseTrafficDocument(entries('1s'));
    const a = buildMesh({ catalog, traffic: first, settings: DEFAULT_MESH_SETTINGS }, cache);
    const b = buildMesh({ catalog, traffic: first, settings: DEFAULT_MESH_SETTINGS }, cache);
    expect(b.services.every((s, i) => s === a.services[i])).toBe(true);

    const edited = { ...first, routers: parseTrafficDocument(entries('2s')).routers };
    const c = buildMesh({ catalog, traffic: edited, settings: DEFAULT_MESH_SETTINGS }, cache);
    const changed = c.services.filter((s, i) => s !== b.services[i]).map((s) => s.name);
    expect(changed).toEqual(['api']);
    expect(meshService(c, 'api')!.routes[0]!.timeoutMs).toBe(2000);
  });

  it('the mesh is frozen: an accidental write fails instead of leaking into other proxies', () => {
    const mesh = meshOf([{ Kind: 'service-resolver', Name: 'api', Subsets: subsets }]);
    const api = meshService(mesh, 'api')!;
    expect(() => (api.backends as unknown[]).push({})).toThrow();
    expect(Object.isFrozen(api.backends[1]!.localities[0]!.endpoints[0])).toBe(true);
  });
});

describe('robustness', () => {
  const service = fc.constantFrom('web', 'api', 'billing', 'shadow', 'ghost');
  const subset = fc.constantFrom('v1', 'v2', 'v9');
  const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
  const destination = fc.record(
    {
      Service: maybe(service),
      ServiceSubset: maybe(subset),
      NumRetries: maybe(fc.integer({ min: -1, max: 5 })),
    },
    { requiredKeys: [] },
  );
  const entry = fc.oneof(
    fc.record({
      Kind: fc.constant('service-router'),
      Name: service,
      Routes: fc.array(
        fc.record({
          Match: fc.record({ HTTP: fc.record({ PathPrefix: fc.constantFrom('/', '/a', '/b') }) }),
          Destination: destination,
        }),
        { maxLength: 3 },
      ),
    }),
    fc.record({
      Kind: fc.constant('service-splitter'),
      Name: service,
      Splits: fc.array(
        fc.record({
          Weight: fc.constantFrom(0, 25, 50, 100),
          Service: maybe(service),
          ServiceSubset: maybe(subset),
        }),
        { minLength: 1, maxLength: 4 },
      ),
    }),
    fc.record({
      Kind: fc.constant('service-resolver'),
      Name: service,
      Subsets: fc.constant(subsets),
      DefaultSubset: maybe(subset),
      Redirect: maybe(fc.record({ Service: maybe(service), ServiceSubset: maybe(subset) })),
    }),
    fc.record({
      Kind: fc.constant('service-defaults'),
      Name: service,
      Protocol: fc.constantFrom('http', 'tcp', 'grpc'),
    }),
  );

  it('10,000 generated configurations either build or fail to parse with a path-naming error', () => {
    let built = 0;
    fc.assert(
      fc.property(
        fc.uniqueArray(entry, { selector: (e) => `${e.Kind}/${e.Name}`, maxLength: 8 }),
        (entries) => {
          const cleaned = JSON.parse(JSON.stringify(entries)) as unknown[];
          let mesh: Mesh;
          try {
            mesh = buildMesh({
              catalog,
              traffic: parseTrafficDocument(cleaned),
              settings: DEFAULT_MESH_SETTINGS,
            });
          } catch (err) {
            expect(err).toBeInstanceOf(TrafficDocumentError);
            expect((err as Error).message).toMatch(/(service|proxy)-[a-z]+\/[a-z]+: /);
            return;
          }
          built++;
          // Every route of every service points at backends that exist, with weights summing to 100 %.
          const backends = new Set(mesh.services.flatMap((s) => s.backends.map((b) => b.name)));
          for (const s of mesh.services) {
            for (const r of s.routes) {
              expect(r.destinations.reduce((sum, d) => sum + d.weight, 0)).toBe(10_000);
              for (const d of r.destinations) expect(backends.has(d.backend), d.backend).toBe(true);
            }
          }
        },
      ),
      { numRuns: 10_000 },
    );
    expect(built).toBeGreaterThan(1000);
  });
});
