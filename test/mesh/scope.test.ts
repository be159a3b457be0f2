// The reachable set of a sidecar (src/mesh/scope.ts): declared upstreams, else the policy and
// intentions, else everything; closed over routes, splits, redirects, mirrors and failover.
import { describe, expect, it } from 'vitest';
import { parseCatalog } from '../../src/catalog/schema.js';
import {
  buildMesh,
  DEFAULT_MESH_SETTINGS,
  meshProxy,
  proxyScope,
  sameReach,
} from '../../src/mesh/index.js';
import type { Mesh, ScopeMode } from '../../src/mesh/types.js';
import { parsePolicy } from '../../src/policy/schema.js';
import { parseTrafficDocument } from '../../src/traffic/schema.js';

const names = ['web', 'api', 'billing', 'ledger', 'audit', 'search', 'legacy', 'shadow'];

function catalog(upstreams: Record<string, unknown[]>) {
  return parseCatalog({
    services: names.map((name, i) => ({
      name,
      instances: [{ id: `${name}-1`, address: `10.0.0.${i + 1}`, port: 80, sidecarPort: 15006 }],
      ...(upstreams[name] ? { upstreams: upstreams[name] } : {}),
    })),
  });
}

function meshOf(
  scope: ScopeMode,
  upstreams: Record<string, unknown[]> = {},
  entries: unknown[] = [],
  policy?: unknown,
): Mesh {
  return buildMesh({
    catalog: catalog(upstreams),
    traffic: parseTrafficDocument(entries),
    ...(policy ? { policy: parsePolicy(policy) } : {}),
    settings: { ...DEFAULT_MESH_SETTINGS, scope },
  });
}

const policy = {
  trustDomain: 'lucid.internal',
  namespace: 'default',
  defaults: { action: 'deny' },
  rules: [
    { from: ['web'], to: ['api', 'search'], action: 'allow' },
    { from: ['api'], to: ['billing'], action: 'allow' },
  ],
};

describe('proxyScope', () => {
  it('an empty declaration (upstreams: []) says the service calls nothing: an empty scope', () => {
    const mesh = meshOf('declared', { web: [] });
    expect(proxyScope(mesh, 'web')).toMatchObject({ from: 'declared', services: [] });
    // No declaration at all: the next rule (here: everything).
    expect(proxyScope(mesh, 'api')).toEqual({ from: 'all' });
  });

  it('scope all: every sidecar gets every service', () => {
    const mesh = meshOf('all', { web: ['api'] });
    expect(proxyScope(mesh, 'web')).toEqual({ from: 'all' });
    expect(meshProxy(mesh, { nodeId: 'web-1', service: 'web', outboundPort: 15001 }).scope).toBe(
      undefined,
    );
  });

  it('declared upstreams decide, plain names and bind-port objects alike', () => {
    const mesh = meshOf('declared', { web: ['api', { name: 'search', localBindPort: 9191 }] });
    expect(proxyScope(mesh, 'web')).toMatchObject({
      from: 'declared',
      services: ['api', 'search'],
    });
    const proxy = meshProxy(mesh, { nodeId: 'web-1', service: 'web', outboundPort: 15001 });
    expect(proxy.scope?.services).toEqual(['api', 'search']);
    expect(proxy.bindUpstreams).toEqual([
      { service: 'search', protocol: 'http', address: '127.0.0.1', port: 9191 },
    ]);
    // Its DNS listener answers only the names it may reach.
    const withDns = { nodeId: 'web-1', service: 'web', outboundPort: 15001, dnsPort: 15053 };
    expect(meshProxy(mesh, withDns).dns?.names).toEqual(['api', 'search']);
    // A service declaring nothing, and a node outside the catalog, get everything.
    expect(proxyScope(mesh, 'api')).toEqual({ from: 'all' });
    expect(proxyScope(mesh, 'nobody')).toEqual({ from: 'all' });
  });

  it('upstreams naming services that do not exist are left out', () => {
    const mesh = meshOf('declared', { web: ['api', 'gone'] });
    expect(proxyScope(mesh, 'web').services).toEqual(['api']);
  });

  it('policy scope: what the policy lets the service call; declared upstreams still come first', () => {
    const mesh = meshOf('policy', { api: ['ledger'] }, [], policy);
    expect(proxyScope(mesh, 'web')).toMatchObject({ from: 'policy', services: ['api', 'search'] });
    expect(proxyScope(mesh, 'api')).toMatchObject({ from: 'declared', services: ['ledger'] });
    // Allowed nowhere: an empty scope, not everything.
    expect(proxyScope(mesh, 'audit')).toMatchObject({ from: 'policy', services: [] });
  });

  it('declared scope ignores the policy', () => {
    const mesh = meshOf('declared', {}, [], policy);
    expect(proxyScope(mesh, 'web')).toEqual({ from: 'all' });
  });

  it('intentions narrow the policy scope; L7 permissions keep a service reachable', () => {
    const mesh = meshOf('policy', {}, [
      { Kind: 'service-intentions', Name: 'api', Sources: [{ Name: 'web', Action: 'deny' }] },
      {
        Kind: 'service-intentions',
        Name: 'billing',
        Sources: [
          { Name: 'web', Permissions: [{ Action: 'allow', HTTP: { PathPrefix: '/pay' } }] },
          { Name: '*', Action: 'deny' },
        ],
      },
    ]);
    const scope = proxyScope(mesh, 'web');
    expect(scope.from).toBe('policy');
    expect(scope.services).toContain('billing');
    expect(scope.services).not.toContain('api');
    expect(scope.services).toContain('ledger'); // no intentions: open
    expect(proxyScope(mesh, 'search').services).not.toContain('billing');
  });

  it('what routes, splits, redirects, mirrors and failover of a reachable service name is reachable too', () => {
    const mesh = meshOf('declared', { web: ['api'], audit: ['search'] }, [
      {
        Kind: 'service-router',
        Name: 'api',
        Routes: [{ Match: { HTTP: { PathPrefix: '/pay' } }, Destination: { Service: 'billing' } }],
      },
      {
        Kind: 'service-splitter',
        Name: 'billing',
        Splits: [{ Weight: 90 }, { Weight: 10, Service: 'ledger' }],
      },
      { Kind: 'service-resolver', Name: 'ledger', Failover: { '*': { Service: 'legacy' } } },
      { Kind: 'service-resolver', Name: 'search', Redirect: { Service: 'shadow' } },
    ]);
    expect(proxyScope(mesh, 'web').services).toEqual(['api', 'billing', 'ledger', 'legacy']);
    expect(proxyScope(mesh, 'audit').services).toEqual(['search', 'shadow']);
  });

  it('proxies with the same reachable set share one scope key; another set has another', () => {
    const mesh = meshOf('declared', {
      web: ['api', 'search'],
      audit: ['search', 'api'],
      api: ['billing'],
    });
    expect(proxyScope(mesh, 'web').key).toBe(proxyScope(mesh, 'audit').key);
    expect(proxyScope(mesh, 'api').key).not.toBe(proxyScope(mesh, 'web').key);
  });

  it('a bind port another listener has is left out: a tcp service’s (reported) or the node’s outbound port', () => {
    const mesh = buildMesh({
      catalog: parseCatalog({
        services: [
          { name: 'db', protocol: 'tcp', outboundPort: 15432, instances: [] },
          { name: 'api', instances: [] },
          {
            name: 'web',
            instances: [],
            upstreams: [
              { name: 'db', localBindPort: 15432 },
              { name: 'api', localBindPort: 15001 },
            ],
          },
        ],
      }),
      traffic: parseTrafficDocument([]),
      settings: { ...DEFAULT_MESH_SETTINGS, scope: 'declared' },
    });
    expect(
      meshProxy(mesh, { nodeId: 'w', service: 'web', outboundPort: 15001 }).bindUpstreams,
    ).toBe(undefined);
    expect(
      meshProxy(mesh, { nodeId: 'w', service: 'web', outboundPort: 15002 }).bindUpstreams,
    ).toEqual([{ service: 'api', protocol: 'http', address: '127.0.0.1', port: 15001 }]);
    expect(mesh.problems).toContainEqual(
      expect.objectContaining({
        name: 'web',
        message: expect.stringContaining(
          'localBindPort 15432 is the outbound port of tcp service "db"',
        ),
      }),
    );
  });

  it('catalog errors name the bad upstream', () => {
    expect(() =>
      parseCatalog({ services: [{ name: 'web', upstreams: [{ name: 'api', localBindPort: 0 }] }] }),
    ).toThrow(/services\[0\]\.upstreams\[0\]/);
    expect(() => parseCatalog({ services: [{ name: 'web', upstreams: ['api', 'api'] }] })).toThrow(
      /duplicate upstream "api"/,
    );
    expect(() =>
      parseCatalog({
        services: [
          {
            name: 'web',
            upstreams: [
              { name: 'api', localBindPort: 9000 },
              { name: 'db', localBindPort: 9000 },
            ],
          },
        ],
      }),
    ).toThrow(
      /upstreams\[1\]\.localBindPort: 127\.0\.0\.1:9000 is already the local bind address of upstream "api"/,
    );
  });
});

describe('scopes across meshes (sameReach)', () => {
  // One settings object, as the store passes it to every build.
  const settingsOf = (scope: ScopeMode) => ({ ...DEFAULT_MESH_SETTINGS, scope });
  const build = (
    settings: ReturnType<typeof settingsOf>,
    upstreams: Record<string, unknown[]>,
    address = '10.0.0.1',
    policyDoc?: unknown,
  ) =>
    buildMesh({
      catalog: parseCatalog({
        services: names.map((name, i) => ({
          name,
          instances: [
            {
              id: `${name}-1`,
              address: name === 'api' ? address : `10.0.0.${i + 1}`,
              port: 80,
              sidecarPort: 15006,
            },
          ],
          ...(upstreams[name] ? { upstreams: upstreams[name] } : {}),
        })),
      }),
      traffic: parseTrafficDocument([]),
      ...(policyDoc ? { policy: parsePolicy(policyDoc) } : {}),
      settings,
    });

  it('an endpoint change keeps every scope (the same objects); an upstream change does not', () => {
    const settings = settingsOf('declared');
    const a = build(settings, { web: ['api'], api: ['billing'] });
    const first = proxyScope(a, 'web');
    const b = build(settings, { web: ['api'], api: ['billing'] }, '10.9.9.9');
    expect(sameReach(a, b)).toBe(true);
    expect(proxyScope(b, 'web')).toBe(first);
    const c = build(settings, { web: ['api', 'search'], api: ['billing'] }, '10.9.9.9');
    expect(sameReach(b, c)).toBe(false);
    expect(proxyScope(c, 'web').services).toEqual(['api', 'search']);
  });

  it('scope policy: a destination allowing another caller changes the reach', () => {
    const settings = settingsOf('policy');
    const a = build(settings, {}, '10.0.0.1', policy);
    expect(proxyScope(a, 'web').services).toEqual(['api', 'search']);
    const wider = {
      ...policy,
      rules: [...policy.rules, { from: ['web'], to: ['ledger'], action: 'allow' }],
    };
    const b = build(settings, {}, '10.0.0.1', wider);
    expect(sameReach(a, b)).toBe(false);
    expect(proxyScope(b, 'web').services).toEqual(['api', 'ledger', 'search']);
  });
});
