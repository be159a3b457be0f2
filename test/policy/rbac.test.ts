// The RBAC compiler. The main property: for random policies, every destination and every caller
// (catalog services, services only the policy names, and strangers), the compiled RBAC (as Envoy
// receives it: encoded inside a Listener and decoded back) allows exactly what decide() allows.
// The compiled RBAC is evaluated by a small matcher for the subset the compiler emits.
import { describe, expect, it } from 'vitest';
import { allowedSources, decide } from '../../src/policy/evaluate.js';
import {
  HTTP_RBAC_FILTER_NAME,
  HTTP_RBAC_TYPE_URL,
  NETWORK_RBAC_FILTER_NAME,
  NETWORK_RBAC_TYPE_URL,
  httpRbacFilter,
  networkRbacFilter,
  rbacRules,
  rbacRulesFor,
  spiffeId,
} from './policy-rbac.js';
import { PolicyValidationError, parsePolicy, type Policy } from '../../src/policy/schema.js';
import { findFilter, httpListener, onTheWire, tcpListener, type Json } from './listeners.js';

// ---------------------------------------------------------------------------------------------
// A matcher for the RBAC subset the compiler emits (config.rbac.v3.RBAC in Envoy JSON shape).
// `peer` is the caller's URI SAN, undefined for a caller without a certificate.

function principalMatches(p: Json, peer: string | undefined): boolean {
  const keys = Object.keys(p);
  if (keys.length !== 1) throw new Error(`principal with keys ${keys.join(', ')}`);
  if (p.any === true) return true;
  if (p.authenticated !== undefined) {
    const name = (p.authenticated as { principalName?: Json }).principalName;
    if (!name || Object.keys(name).join() !== 'exact') {
      throw new Error(`unsupported principalName ${JSON.stringify(name)}`);
    }
    return peer !== undefined && peer === name.exact;
  }
  if (p.notId !== undefined) return !principalMatches(p.notId as Json, peer);
  if (p.orIds !== undefined) {
    return ((p.orIds as { ids: Json[] }).ids ?? []).some((q) => principalMatches(q, peer));
  }
  if (p.andIds !== undefined) {
    return ((p.andIds as { ids: Json[] }).ids ?? []).every((q) => principalMatches(q, peer));
  }
  throw new Error(`unsupported principal ${JSON.stringify(p)}`);
}

function permissionMatches(p: Json): boolean {
  if (p.any === true && Object.keys(p).length === 1) return true;
  throw new Error(`unsupported permission ${JSON.stringify(p)}`);
}

/** Envoy's RBAC engine for our subset: ALLOW = some policy matches; DENY = none does. */
function rbacAllows(rules: Json, peer: string | undefined): boolean {
  const action = (rules.action as string | undefined) ?? 'ALLOW'; // enum default: omitted on the wire
  const policies = Object.values((rules.policies ?? {}) as Record<string, Json>);
  const matched = policies.some(
    (policy) =>
      (policy.permissions as Json[]).some(permissionMatches) &&
      (policy.principals as Json[]).some((p) => principalMatches(p, peer)),
  );
  if (action === 'ALLOW') return matched;
  if (action === 'DENY') return !matched;
  throw new Error(`unsupported action ${action}`);
}

describe('the test matcher', () => {
  const id = (s: string) => `spiffe://t/ns/n/svc/${s}`;
  const exact = (s: string) => ({ authenticated: { principalName: { exact: id(s) } } });
  it('implements any, exact, notId, orIds and empty ALLOW', () => {
    const allowOnly = (principals: Json[]) => ({
      action: 'ALLOW',
      policies: { p: { permissions: [{ any: true }], principals } },
    });
    expect(rbacAllows({ action: 'ALLOW', policies: {} }, id('a'))).toBe(false);
    expect(rbacAllows({}, id('a'))).toBe(false);
    expect(rbacAllows(allowOnly([{ any: true }]), undefined)).toBe(true);
    expect(rbacAllows(allowOnly([exact('a')]), id('a'))).toBe(true);
    expect(rbacAllows(allowOnly([exact('a')]), id('b'))).toBe(false);
    expect(rbacAllows(allowOnly([exact('a')]), undefined)).toBe(false);
    expect(rbacAllows(allowOnly([{ notId: exact('a') }]), id('a'))).toBe(false);
    expect(rbacAllows(allowOnly([{ notId: exact('a') }]), id('b'))).toBe(true);
    const notAB = allowOnly([{ notId: { orIds: { ids: [exact('a'), exact('b')] } } }]);
    expect([id('a'), id('b'), id('c')].map((p) => rbacAllows(notAB, p))).toEqual([
      false,
      false,
      true,
    ]);
    expect(() => rbacAllows(allowOnly([{ header: {} }]), id('a'))).toThrow(/unsupported/);
  });
});

// ---------------------------------------------------------------------------------------------
// Random policies over a small world.

/** mulberry32: a tiny seeded PRNG, so failures reproduce. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** In the catalog. */
const CATALOG = ['a', 'b', 'c', 'd'];
/** Named by policies but not in the catalog. */
const POLICY_ONLY = ['e'];
/** Named by nobody: only `*` selectors match it. */
const STRANGERS = ['stranger'];
const CALLERS = [...CATALOG, ...POLICY_ONLY, ...STRANGERS];

function randomDocument(random: () => number): unknown {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
  const some = <T>(xs: readonly T[], max: number): T[] => {
    const n = 1 + Math.floor(random() * max);
    return [...new Set(Array.from({ length: n }, () => pick(xs)))];
  };
  const services = [...CATALOG, ...POLICY_ONLY];
  const planes: Record<string, unknown> = {};
  const planeCount = Math.floor(random() * 4);
  for (let i = 0; i < planeCount; i++) {
    planes[`p${i}`] = {
      services: some(services, 3),
      isolation: random() < 0.4 ? 'isolated' : 'open',
    };
  }
  const selectors = ['*', ...Object.keys(planes).map((p) => `plane:${p}`), ...services];
  const rules = Array.from({ length: Math.floor(random() * 7) }, () => ({
    from: some(selectors, 2),
    to: some(selectors, 2),
    action: pick(['allow', 'deny']),
  }));
  const destinations: Record<string, unknown> = {};
  for (const s of services)
    if (random() < 0.25) destinations[s] = { default: pick(['allow', 'deny']) };
  return { planes, defaults: { action: pick(['allow', 'deny']) }, rules, destinations };
}

function randomPolicies(count: number, seed: number): Policy[] {
  const random = prng(seed);
  const out: Policy[] = [];
  while (out.length < count) {
    try {
      out.push(parsePolicy(randomDocument(random)));
    } catch (err) {
      if (!(err instanceof PolicyValidationError)) throw err; // e.g. conflicting isolation
    }
  }
  return out;
}

const idOf = (s: string) => spiffeId('lucid.internal', 'default', s);

describe('compiled RBAC equals decide()', () => {
  const policies = randomPolicies(400, 20240601);

  it('generates varied policies (isolation, both defaults, exceptions both ways)', () => {
    const isolated = policies.filter((p) =>
      Object.values(p.planes).some((pl) => pl.isolation === 'isolated'),
    );
    expect(isolated.length).toBeGreaterThan(50);
    const shapes = new Set<string>();
    for (const policy of policies) {
      for (const to of CALLERS) {
        const s = allowedSources(policy, to, CATALOG);
        shapes.add(`${s.others}:${Math.min(s.allowed.length + s.denied.length, 2)}`);
      }
    }
    expect([...shapes].sort()).toEqual([
      'allow:0',
      'allow:1',
      'allow:2',
      'deny:0',
      'deny:1',
      'deny:2',
    ]);
  });

  it('for every destination and caller, over the wire, HTTP and TCP', () => {
    let checked = 0;
    policies.forEach((policy, pi) => {
      for (const to of CALLERS) {
        const http = onTheWire(
          httpListener(`inbound|${to}`, 15006, httpRbacFilter(policy, to, CATALOG)),
        );
        const tcp = onTheWire(
          tcpListener(`inbound|${to}`, 15006, networkRbacFilter(policy, to, CATALOG), 'local'),
        );
        const httpRules = (findFilter(http, HTTP_RBAC_FILTER_NAME).typedConfig as Json)
          .rules as Json;
        const tcpRules = (findFilter(tcp, NETWORK_RBAC_FILTER_NAME).typedConfig as Json)
          .rules as Json;
        for (const from of CALLERS) {
          const expected = decide(policy, from, to) === 'allow';
          const where = `policy #${pi} ${JSON.stringify(policy)}: ${from} → ${to}`;
          expect(rbacAllows(httpRules, idOf(from)), `http ${where}`).toBe(expected);
          expect(rbacAllows(tcpRules, idOf(from)), `tcp ${where}`).toBe(expected);
          checked++;
        }
      }
    });
    expect(checked).toBe(policies.length * CALLERS.length * CALLERS.length);
  });

  it('is deterministic and independent of allServices, with no undefined values', () => {
    for (const policy of policies.slice(0, 100)) {
      for (const to of CALLERS) {
        const one = httpRbacFilter(policy, to, CATALOG);
        const two = httpRbacFilter(policy, to, [...CATALOG].reverse().concat(['a']));
        expect(JSON.stringify(two)).toBe(JSON.stringify(one));
        // Services the policy does not name behave like strangers, so the catalog's contents
        // never change a filter (no listener churn on catalog changes).
        expect(JSON.stringify(httpRbacFilter(policy, to, []))).toBe(JSON.stringify(one));
        expect(JSON.parse(JSON.stringify(one))).toStrictEqual(one);
        const net = networkRbacFilter(policy, to, new Set(CATALOG));
        expect(JSON.parse(JSON.stringify(net))).toStrictEqual(net);
      }
    }
  });
});

describe('compiled shapes', () => {
  const exact = (s: string) => ({ authenticated: { principalName: { exact: idOf(s) } } });
  const rulesOf = (others: 'allow' | 'deny', allowed: string[], denied: string[]) =>
    rbacRulesFor({ destination: 't', others, allowed, denied }, idOf);

  it('deny everyone: ALLOW with no policies', () => {
    expect(rulesOf('deny', [], [])).toEqual({ action: 'ALLOW', policies: {} });
  });

  it('allow list: exact SPIFFE IDs, sorted', () => {
    expect(rulesOf('deny', ['b', 'a'], [])).toEqual({
      action: 'ALLOW',
      policies: {
        'allowed-callers': { permissions: [{ any: true }], principals: [exact('a'), exact('b')] },
      },
    });
  });

  it('allow everyone: any', () => {
    expect(rulesOf('allow', [], [])).toEqual({
      action: 'ALLOW',
      policies: {
        'allowed-callers': { permissions: [{ any: true }], principals: [{ any: true }] },
      },
    });
  });

  it('allow all but one: notId', () => {
    expect(rulesOf('allow', [], ['x'])).toEqual({
      action: 'ALLOW',
      policies: {
        'allowed-callers': { permissions: [{ any: true }], principals: [{ notId: exact('x') }] },
      },
    });
  });

  it('allow all but several: notId of orIds', () => {
    expect(rulesOf('allow', [], ['y', 'x'])).toEqual({
      action: 'ALLOW',
      policies: {
        'allowed-callers': {
          permissions: [{ any: true }],
          principals: [{ notId: { orIds: { ids: [exact('x'), exact('y')] } } }],
        },
      },
    });
  });

  it('the filters carry the right names, type URLs and stat prefix', () => {
    const policy = parsePolicy({ defaults: { action: 'deny' } });
    expect(httpRbacFilter(policy, 't', [])).toEqual({
      name: HTTP_RBAC_FILTER_NAME,
      typedConfig: { '@type': HTTP_RBAC_TYPE_URL, rules: { action: 'ALLOW', policies: {} } },
    });
    expect(networkRbacFilter(policy, 't', [])).toEqual({
      name: NETWORK_RBAC_FILTER_NAME,
      typedConfig: {
        '@type': NETWORK_RBAC_TYPE_URL,
        statPrefix: 'inbound_tcp.',
        rules: { action: 'ALLOW', policies: {} },
      },
    });
    expect(
      (networkRbacFilter(policy, 't', [], { statPrefix: 'x.' }).typedConfig as Json).statPrefix,
    ).toBe('x.');
  });

  it('uses the policy trust domain and namespace, or principalOf', () => {
    const policy = parsePolicy({
      trustDomain: 'prod.example',
      namespace: 'pay',
      defaults: { action: 'deny' },
      rules: [{ from: ['a'], to: ['t'], action: 'allow' }],
    });
    expect(JSON.stringify(rbacRules(policy, 't', []))).toContain(
      '"exact":"spiffe://prod.example/ns/pay/svc/a"',
    );
    expect(
      JSON.stringify(rbacRules(policy, 't', [], { principalOf: (s) => `spiffe://ca/svc/${s}` })),
    ).toContain('"exact":"spiffe://ca/svc/a"');
  });

  it('an empty policies map survives the wire as "rules present, deny all"', () => {
    const policy = parsePolicy({ defaults: { action: 'deny' } });
    const wire = onTheWire(httpListener('l', 1, httpRbacFilter(policy, 't', [])));
    const rbac = findFilter(wire, HTTP_RBAC_FILTER_NAME).typedConfig as Json;
    expect(rbac).toEqual({ '@type': HTTP_RBAC_TYPE_URL, rules: {} });
  });
});
