// explainRoute on meshes built from real parsed documents (catalog, Consul config entries,
// policy) by buildMesh: every route match kind with Envoy's semantics, what the matched route
// does, and the authorization answer (policy, intentions, both; deny wins), checked against the
// RBAC that translate/rbac.ts compiles for the same intentions.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseCatalog } from '../../src/catalog/schema.js';
import { buildMesh } from '../../src/mesh/build.js';
import { ExplainError, explainRoute, type RouteQuestion } from '../../src/mesh/explain.js';
import { DEFAULT_MESH_SETTINGS, type Mesh, type MeshSettings } from '../../src/mesh/types.js';
import { parsePolicy } from '../../src/policy/schema.js';
import { parseTrafficDocument } from '../../src/traffic/schema.js';
import { intentionRules } from '../../src/translate/rbac.js';

const MTLS: MeshSettings = {
  ...DEFAULT_MESH_SETTINGS,
  mtls: { trustDomain: 'lucid.internal', namespace: 'default' },
};

const instance = (id: string, port: number, meta: Record<string, string> = {}) => ({
  id,
  address: '127.0.0.1',
  port,
  sidecarPort: port + 10_000,
  meta,
});

const CATALOG = {
  services: [
    { name: 'web', instances: [instance('web-1', 9100)] },
    { name: 'ops', instances: [instance('ops-1', 9200)] },
    {
      name: 'api',
      instances: [
        instance('api-1', 9101, { version: 'v1' }),
        instance('api-2', 9102, { version: 'v2' }),
      ],
    },
    { name: 'rpc', protocol: 'grpc', instances: [instance('rpc-1', 9300)] },
    { name: 'db', protocol: 'tcp', outboundPort: 15432, instances: [instance('db-1', 5432)] },
  ],
};

const to = (subset: string) => ({ ServiceSubset: subset });
const http = (match: Record<string, unknown>) => ({ Match: { HTTP: match } });

/** One route per match kind (told apart by their index), then the default route. */
const ROUTER_ROUTES = [
  /* 0 */ {
    ...http({ PathExact: '/exact' }),
    Destination: {
      ...to('v2'),
      Fault: { Abort: { HttpStatus: 503, Percent: 50 } },
      Mirror: { Service: 'api', ServiceSubset: 'v1', Percent: 10 },
    },
  },
  /* 1 */ {
    ...http({ PathPrefix: '/admin' }),
    Destination: {
      ...to('v2'),
      PrefixRewrite: '/internal',
      RequestTimeout: '500ms',
      NumRetries: 3,
      RetryOn: ['5xx'],
    },
  },
  /* 2 */ { ...http({ PathRegex: '/v[0-9]+/items' }), Destination: to('v2') },
  /* 3 */ { ...http({ Methods: ['POST', 'PUT'] }), Destination: to('v2') },
  /* 4 */ { ...http({ Header: [{ Name: 'x-prefix', Prefix: 'beta' }] }), Destination: to('v2') },
  /* 5 */ {
    ...http({ Header: [{ Name: 'x-suffix', Suffix: '-canary' }] }),
    Destination: to('v2'),
  },
  /* 6 */ {
    ...http({ Header: [{ Name: 'x-re', Regex: '[a-z]+-[0-9]+' }] }),
    Destination: to('v2'),
  },
  /* 7 */ { ...http({ Header: [{ Name: 'x-present', Present: true }] }), Destination: to('v2') },
  /* 8 */ {
    ...http({ Header: [{ Name: 'x-not', Exact: 'no', Invert: true }] }),
    Destination: to('v2'),
  },
  /* 9 */ {
    ...http({
      Header: [{ Name: 'x-absent', Present: true, Invert: true }],
      QueryParam: [{ Name: 'mode', Exact: 'absent' }],
    }),
    Destination: to('v2'),
  },
  /* 10 */ { ...http({ QueryParam: [{ Name: 'debug', Exact: '1' }] }), Destination: to('v2') },
  /* 11 */ { ...http({ QueryParam: [{ Name: 'trace', Present: true }] }), Destination: to('v2') },
  /* 12 */ { ...http({ QueryParam: [{ Name: 'q', Regex: 'a+' }] }), Destination: to('v2') },
  /* 13 */ {
    ...http({ Header: [{ Name: 'x-canary', Exact: '1' }] }),
    Destination: to('v9'),
  },
  // 14: the default route (the splitter), appended by the mesh.
];

const TRAFFIC = [
  {
    Kind: 'service-resolver',
    Name: 'api',
    DefaultSubset: 'v1',
    Subsets: {
      v1: { Filter: 'Service.Meta.version == v1' },
      v2: { Filter: 'Service.Meta.version == v2' },
    },
  },
  {
    Kind: 'service-splitter',
    Name: 'api',
    Splits: [
      { Weight: 90, ServiceSubset: 'v1' },
      { Weight: 10, ServiceSubset: 'v2', RequestHeaders: { Set: { 'x-split': 'v2' } } },
    ],
  },
  { Kind: 'service-router', Name: 'api', Routes: ROUTER_ROUTES },
  {
    Kind: 'service-defaults',
    Name: 'web',
    UpstreamConfig: { Overrides: [{ Name: 'api', ConnectTimeoutMs: 1000 }] },
  },
];

function mesh(opts: { traffic?: unknown[]; policy?: unknown; settings?: MeshSettings } = {}): Mesh {
  return buildMesh({
    catalog: parseCatalog(CATALOG),
    traffic: parseTrafficDocument(opts.traffic ?? TRAFFIC),
    ...(opts.policy !== undefined ? { policy: parsePolicy(opts.policy) } : {}),
    settings: opts.settings ?? MTLS,
  });
}

const routed = mesh();

function ask(q: Partial<RouteQuestion>, m: Mesh = routed) {
  return explainRoute(m, { from: 'web', to: 'api', path: '/', ...q });
}
const routeIndex = (q: Partial<RouteQuestion>) => ask(q).route?.index;

describe('explainRoute: route matching (Envoy semantics)', () => {
  it('has the router routes then the default route, in order', () => {
    const e = ask({ path: '/nothing-special' });
    expect(e.route).toMatchObject({ index: 14, count: 15, description: '(any request)' });
    expect(e.skipped.map((s) => s.index)).toEqual([...Array(14).keys()]);
  });

  it('PathExact: the path without the query string, whole', () => {
    expect(routeIndex({ path: '/exact' })).toBe(0);
    expect(routeIndex({ path: '/exact?x=1' })).toBe(0);
    expect(routeIndex({ path: '/exact/' })).toBe(14);
    expect(ask({ path: '/exact/' }).skipped[0]).toEqual({
      index: 0,
      match: 'PathExact /exact',
      reason: 'path /exact/ is not /exact',
    });
  });

  it('PathPrefix: a string prefix of the whole :path', () => {
    expect(routeIndex({ path: '/admin' })).toBe(1);
    expect(routeIndex({ path: '/admin/users' })).toBe(1);
    expect(routeIndex({ path: '/administrator' })).toBe(1);
    expect(routeIndex({ path: '/Admin' })).toBe(14);
  });

  it('PathRegex: a full match of the path without the query string', () => {
    expect(routeIndex({ path: '/v1/items' })).toBe(2);
    expect(routeIndex({ path: '/v12/items?page=2' })).toBe(2);
    expect(routeIndex({ path: '/v1/items/3' })).toBe(14);
    expect(routeIndex({ path: '/x/v1/items' })).toBe(14);
  });

  it('Methods: any of them; the method is upper-cased', () => {
    expect(routeIndex({ method: 'POST' })).toBe(3);
    expect(routeIndex({ method: 'put' })).toBe(3);
    expect(routeIndex({ method: 'GET' })).toBe(14);
    expect(ask({ method: 'DELETE' }).skipped[3]!.reason).toBe('method DELETE is not POST or PUT');
  });

  it('Header Prefix, Suffix, Regex (whole value), Present; names case-insensitive', () => {
    expect(routeIndex({ headers: { 'X-Prefix': 'beta-7' } })).toBe(4);
    expect(routeIndex({ headers: { 'x-prefix': 'alpha' } })).toBe(14);
    expect(routeIndex({ headers: { 'x-suffix': 'v2-canary' } })).toBe(5);
    expect(routeIndex({ headers: { 'x-suffix': 'canary-v2' } })).toBe(14);
    expect(routeIndex({ headers: { 'x-re': 'abc-12' } })).toBe(6);
    expect(routeIndex({ headers: { 'x-re': 'abc-12x' } })).toBe(14);
    // Repeated values are joined with "," before matching.
    expect(routeIndex({ headers: { 'x-re': ['abc-1', 'def-2'] } })).toBe(14);
    expect(routeIndex({ headers: { 'x-present': '' } })).toBe(7);
  });

  it('Invert: a missing header never matches, except an inverted Present', () => {
    expect(routeIndex({ headers: { 'x-not': 'yes' } })).toBe(8);
    expect(routeIndex({ headers: { 'x-not': 'no' } })).toBe(14);
    // x-not absent: the inverted Exact does not match (Envoy's HeaderUtility::matchHeaders).
    expect(routeIndex({})).toBe(14);
    expect(ask({ headers: { 'x-not': 'no' } }).skipped[8]!.reason).toBe(
      'header x-not "no" matches Exact "no" (the match is inverted)',
    );
    // Inverted Present: matches when x-absent is missing.
    expect(routeIndex({ path: '/?mode=absent' })).toBe(9);
    expect(routeIndex({ path: '/?mode=absent', headers: { 'x-absent': '1' } })).toBe(14);
  });

  it('QueryParam Exact (percent-decoded, first value), Present, Regex', () => {
    expect(routeIndex({ path: '/?debug=1' })).toBe(10);
    expect(routeIndex({ path: '/?debug=%31' })).toBe(10);
    expect(routeIndex({ path: '/?debug=2&debug=1' })).toBe(14);
    expect(routeIndex({ path: '/', query: { debug: '1' } })).toBe(10);
    expect(routeIndex({ path: '/?trace' })).toBe(11);
    expect(routeIndex({ path: '/?q=aaa' })).toBe(12);
    expect(routeIndex({ path: '/?q=aab' })).toBe(14);
    expect(ask({ path: '/?q=aab' }).skipped[12]!.reason).toBe(
      'query parameter q "aab" does not match Regex "a+"',
    );
  });

  it('the first matching route wins', () => {
    expect(routeIndex({ path: '/admin', method: 'POST', headers: { 'x-prefix': 'beta' } })).toBe(1);
  });
});

describe('explainRoute: what the matched route does', () => {
  it('timeout, retries, rewrite (Envoy swaps the matched prefix), one destination', () => {
    const e = ask({ path: '/admin/users?x=1' });
    expect(e.route).toMatchObject({
      timeout: { ms: 500, from: 'route' },
      retry: { numRetries: 3, retryOn: ['5xx'], otherHosts: false },
      prefixRewrite: '/internal',
      rewrittenPath: '/internal/users?x=1',
    });
    expect(e.destinations).toEqual([
      expect.objectContaining({
        backend: 'api~v2',
        service: 'api',
        subset: 'v2',
        weightPercent: 100,
        endpoints: 1,
      }),
    ]);
  });

  it('fault and mirror', () => {
    const e = ask({ path: '/exact' });
    expect(e.route?.fault).toEqual({ Abort: { HttpStatus: 503, Percent: 50 } });
    expect(e.route?.mirror).toEqual({
      backend: 'api~v1',
      service: 'api',
      subset: 'v1',
      percent: 10,
    });
  });

  it('the default route: the splitter in percent, its header edits, Envoy’s default timeout', () => {
    const e = ask({ from: 'ops', path: '/' });
    expect(e.route?.timeout).toEqual({ ms: 15_000, from: 'default' });
    expect(e.route?.retry).toBeUndefined();
    expect(e.destinations).toEqual([
      expect.objectContaining({ backend: 'api~v1', weightPercent: 90, connectTimeoutMs: 5000 }),
      expect.objectContaining({
        backend: 'api~v2',
        weightPercent: 10,
        requestHeaders: { Add: {}, Set: { 'x-split': 'v2' }, Remove: [] },
      }),
    ]);
  });

  it("the caller's own upstream settings (its service-defaults UpstreamConfig)", () => {
    const fromWeb = ask({ from: 'web' }).destinations;
    expect(fromWeb.map((d) => [d.backend, d.connectTimeoutMs, d.callerOverride])).toEqual([
      ['api~v1', 1000, true],
      ['api~v2', 1000, true],
    ]);
  });

  it('a missing subset falls back to the default destination, and says why', () => {
    const e = ask({ headers: { 'x-canary': '1' } });
    expect(e.route?.index).toBe(13);
    expect(e.destinations.map((d) => [d.backend, d.weightPercent])).toEqual([
      ['api~v1', 90],
      ['api~v2', 10],
    ]);
    expect(e.notes).toContain(
      'config problem: service-router/api: Routes[13].Destination: subset "v9" is not defined by service-resolver/api; using the default destination',
    );
  });

  it('grpc: no timeout by default; tcp: no routes, the service backend', () => {
    expect(ask({ to: 'rpc' }).route?.timeout).toEqual({ ms: 0, from: 'default' });
    const tcp = ask({ to: 'db' });
    expect(tcp.route).toBeUndefined();
    expect(tcp.destinations.map((d) => [d.backend, d.weightPercent])).toEqual([['db', 100]]);
    expect(tcp.notes[0]).toMatch(/db is tcp .*local port 15432 go to db/);
  });

  it('an unknown caller is explained (with a note); an unknown destination or a bad path is an error', () => {
    expect(ask({ from: 'stranger' }).notes[0]).toMatch(/stranger is not in the catalog/);
    expect(() => ask({ to: 'nope' })).toThrow(ExplainError);
    expect(() => ask({ to: 'nope' })).toThrow('to: service "nope" is not in the mesh');
    expect(() => ask({ path: 'admin' })).toThrow('path: expected a path starting with "/"');
  });
});

const intentions = (sources: unknown[], name = 'api') => ({
  Kind: 'service-intentions',
  Name: name,
  Sources: sources,
});

describe('explainRoute: authorization', () => {
  const decide = (m: Mesh, q: Partial<RouteQuestion> = {}) => ask(q, m).authorization;

  it('no policy, no intentions: everyone is allowed', () => {
    expect(decide(mesh({ traffic: [] }))).toEqual({
      decision: 'allow',
      enforced: true,
      reason: 'no policy and no intentions apply to api: every caller is allowed',
    });
  });

  it('policy: allowed list (others denied) and denied list (others allowed)', () => {
    const allowList = mesh({
      traffic: [],
      policy: {
        defaults: { action: 'deny' },
        rules: [{ from: ['web'], to: ['api'], action: 'allow' }],
      },
    });
    expect(decide(allowList, { from: 'web' }).policy).toEqual({
      decision: 'allow',
      reason: 'the policy allows web to call api (other callers are denied)',
    });
    expect(decide(allowList, { from: 'ops' })).toMatchObject({
      decision: 'deny',
      policy: { decision: 'deny' },
    });
    const denyList = mesh({
      traffic: [],
      policy: {
        defaults: { action: 'allow' },
        rules: [{ from: ['ops'], to: ['api'], action: 'deny' }],
      },
    });
    expect(decide(denyList, { from: 'ops' }).decision).toBe('deny');
    expect(decide(denyList, { from: 'web' }).decision).toBe('allow');
    expect(decide(denyList, { from: 'stranger' }).policy?.reason).toBe(
      'the policy allows every caller of api it does not single out, stranger included',
    );
  });

  it('L4 intentions: the named source first, "*" for everyone else, else the default', () => {
    const m = mesh({
      traffic: [
        intentions([
          { Name: '*', Action: 'allow' },
          { Name: 'web', Action: 'deny' },
        ]),
      ],
    });
    expect(decide(m, { from: 'web' }).intentions).toEqual({
      decision: 'deny',
      by: 'rule',
      source: 'web',
      reason: 'the intention web → api: deny',
    });
    expect(decide(m, { from: 'ops' }).intentions).toMatchObject({
      decision: 'allow',
      source: '*',
    });
    const noWildcard = mesh({
      traffic: [intentions([{ Name: 'web', Action: 'allow' }])],
      settings: { ...MTLS, intentionsDefault: 'deny' },
    });
    expect(decide(noWildcard, { from: 'ops' }).intentions).toEqual({
      decision: 'deny',
      by: 'default',
      reason:
        'no intention of api names ops and there is no "*" source: the intentions default (deny)',
    });
    expect(decide(noWildcard, { from: 'web' }).decision).toBe('allow');
  });

  it('L7 permissions: the first match decides (paths without the query), else the default', () => {
    const m = mesh({
      traffic: [
        intentions([
          {
            Name: 'web',
            Permissions: [
              { Action: 'deny', HTTP: { PathPrefix: '/admin' } },
              { Action: 'allow', HTTP: { PathExact: '/public', Methods: ['GET'] } },
              {
                Action: 'allow',
                HTTP: { PathPrefix: '/api', Header: [{ Name: 'x-team', Exact: 'core' }] },
              },
            ],
          },
        ]),
      ],
      settings: { ...MTLS, intentionsDefault: 'deny' },
    });
    const by = (q: Partial<RouteQuestion>) => {
      const i = decide(m, q).intentions!;
      return [i.decision, i.by, i.permission];
    };
    expect(by({ path: '/admin/x' })).toEqual(['deny', 'permission', 0]);
    expect(by({ path: '/public?x=1' })).toEqual(['allow', 'permission', 1]);
    expect(by({ path: '/public', method: 'POST' })).toEqual(['deny', 'default', undefined]);
    expect(by({ path: '/api/v1', headers: { 'X-Team': 'core' } })).toEqual([
      'allow',
      'permission',
      2,
    ]);
    expect(by({ path: '/api/v1' })).toEqual(['deny', 'default', undefined]);
    expect(decide(m, { path: '/admin' }).intentions?.reason).toBe(
      'the intention web → api: Permissions[0] (deny PathPrefix /admin) matches: deny',
    );
  });

  it('a tcp destination cannot apply L7 permissions: its source gets the default', () => {
    const m = mesh({
      traffic: [
        intentions(
          [
            { Name: 'web', Permissions: [{ Action: 'allow', HTTP: { PathPrefix: '/' } }] },
            { Name: '*', Action: 'allow' },
          ],
          'db',
        ),
      ],
      settings: { ...MTLS, intentionsDefault: 'deny' },
    });
    expect(decide(m, { to: 'db', from: 'web' }).intentions).toMatchObject({
      decision: 'deny',
      by: 'default',
      source: 'web',
    });
    expect(decide(m, { to: 'db', from: 'ops' }).decision).toBe('allow');
  });

  it('policy and intentions both count: deny wins either way', () => {
    const policy = (action: 'allow' | 'deny') => ({ defaults: { action } });
    const allowAll = [intentions([{ Name: '*', Action: 'allow' }])];
    const denyAll = [intentions([{ Name: '*', Action: 'deny' }])];
    const table = [
      [policy('allow'), allowAll, 'allow'],
      [policy('allow'), denyAll, 'deny'],
      [policy('deny'), allowAll, 'deny'],
      [policy('deny'), denyAll, 'deny'],
    ] as const;
    for (const [p, traffic, expected] of table) {
      const a = decide(mesh({ policy: p, traffic: [...traffic] }));
      expect(a.decision).toBe(expected);
      expect(a.policy).toBeDefined();
      expect(a.intentions).toBeDefined();
    }
    const both = decide(mesh({ policy: policy('deny'), traffic: [...allowAll] }));
    expect(both.reason).toBe(
      'the policy denies every caller of api it does not single out, web included (deny wins)',
    );
  });

  it('without mTLS the decision is not enforced, and a note says so', () => {
    const m = mesh({
      traffic: [intentions([{ Name: '*', Action: 'deny' }])],
      settings: DEFAULT_MESH_SETTINGS,
    });
    const e = ask({}, m);
    expect(e.authorization).toMatchObject({ decision: 'deny', enforced: false });
    expect(e.notes).toContain(
      'mTLS is off: sidecars cannot identify callers, so no RBAC filter applies this decision',
    );
  });
});

// ---- the intentions answer equals the Envoy RBAC that rbac.ts compiles ----------------------

type Json = Record<string, unknown>;
const principalOf = (s: string) => `spiffe://lucid.internal/ns/default/svc/${s}`;

interface Req {
  id: string;
  path: string;
  method: string;
  headers: Record<string, string>;
}

/** Envoy's RBAC string matcher. */
function stringMatches(m: Json, value: string): boolean {
  if ('exact' in m) return value === m.exact;
  if ('prefix' in m) return value.startsWith(m.prefix as string);
  if ('suffix' in m) return value.endsWith(m.suffix as string);
  return new RegExp(`^(?:${(m.safeRegex as Json).regex as string})$`).test(value);
}

function permissionMatches(p: Json, r: Req): boolean {
  if (p.any) return true;
  if (p.andRules)
    return ((p.andRules as Json).rules as Json[]).every((x) => permissionMatches(x, r));
  if (p.orRules) return ((p.orRules as Json).rules as Json[]).some((x) => permissionMatches(x, r));
  if (p.notRule) return !permissionMatches(p.notRule as Json, r);
  if (p.urlPath) return stringMatches((p.urlPath as Json).path as Json, r.path.split('?')[0]!);
  const h = p.header as Json;
  const value = h.name === ':method' ? r.method : r.headers[h.name as string];
  const invert = h.invertMatch === true;
  if (value === undefined) return invert && h.presentMatch === true;
  const hit = h.presentMatch ? true : stringMatches(h.stringMatch as Json, value);
  return hit !== invert;
}

function principalMatches(p: Json, id: string): boolean {
  if (p.any) return true;
  if (p.notId) return !principalMatches(p.notId as Json, id);
  if (p.orIds) return ((p.orIds as Json).ids as Json[]).some((x) => principalMatches(x, id));
  return ((p.authenticated as Json).principalName as Json).exact === id;
}

/** What Envoy's RBAC filter decides for a caller and request. */
function envoyRbac(rbac: Json, r: Req): 'allow' | 'deny' {
  const matched = Object.values(rbac.policies as Record<string, Json>).some(
    (policy) =>
      (policy.permissions as Json[]).some((p) => permissionMatches(p, r)) &&
      (policy.principals as Json[]).some((p) => principalMatches(p, r.id)),
  );
  return rbac.action === 'ALLOW' ? (matched ? 'allow' : 'deny') : matched ? 'deny' : 'allow';
}

describe('explainRoute intentions = the compiled Envoy RBAC', () => {
  const CALLERS = ['web', 'ops', 'stranger'];
  const REQUESTS: Omit<Req, 'id'>[] = [
    { path: '/admin/x', method: 'GET', headers: {} },
    { path: '/admin', method: 'POST', headers: { 'x-team': 'core' } },
    { path: '/public?x=1', method: 'GET', headers: {} },
    { path: '/public', method: 'DELETE', headers: { 'x-team': 'edge' } },
    { path: '/api/v1', method: 'GET', headers: { 'x-team': 'core' } },
  ];
  const permission = fc.record({
    Action: fc.constantFrom('allow', 'deny'),
    HTTP: fc.oneof(
      fc.constantFrom('/admin', '/public', '/api').map((p) => ({ PathPrefix: p })),
      fc.constant({ PathExact: '/public' }),
      fc.constant({ PathRegex: '/api/v[0-9]+' }),
      fc.subarray(['GET', 'POST'], { minLength: 1 }).map((m) => ({ Methods: m })),
      fc.constant({ Header: [{ Name: 'x-team', Exact: 'core' }] }),
      fc.constant({ Header: [{ Name: 'x-team', Present: true, Invert: true }] }),
      fc.constant({
        PathPrefix: '/admin',
        Header: [{ Name: 'x-team', Exact: 'core', Invert: true }],
      }),
    ),
  });
  const source = (name: string) =>
    fc.oneof(
      fc.constantFrom('allow', 'deny').map((Action) => ({ Name: name, Action })),
      fc.array(permission, { minLength: 1, maxLength: 4 }).map((Permissions) => ({
        Name: name,
        Permissions,
      })),
    );
  const sources = fc
    .subarray(['web', 'ops', '*'], { minLength: 1 })
    .chain((names) => fc.tuple(...names.map(source)));

  it('for random intentions, callers and requests (http and tcp)', () => {
    fc.assert(
      fc.property(
        sources,
        fc.constantFrom<'allow' | 'deny'>('allow', 'deny'),
        fc.constantFrom('api', 'db'),
        (srcs, byDefault, dest) => {
          const m = mesh({
            traffic: [intentions(srcs, dest)],
            settings: { ...MTLS, intentionsDefault: byDefault },
          });
          const service = m.services.find((s) => s.name === dest)!;
          const rbac = intentionRules(
            service.authorization.intentions!,
            principalOf,
            service.protocol !== 'tcp',
          );
          for (const from of CALLERS) {
            for (const r of REQUESTS) {
              const explained = explainRoute(m, { from, to: dest, ...r }).authorization.intentions!
                .decision;
              expect(explained).toBe(
                envoyRbac(rbac as unknown as Json, { id: principalOf(from), ...r }),
              );
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
