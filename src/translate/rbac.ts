// Who may call a destination, as Envoy RBAC filters on its inbound listener, matching the
// caller's SPIFFE ID (the URI SAN of the peer certificate the inbound mTLS verified). Two
// filters, both must allow (deny wins): the policy file's, then the intentions'.
//
// Policy file: always action ALLOW with at most one policy, so a denied HTTP request gets
// Envoy's 403 ("RBAC: access denied") and a denied TCP connection is closed. An AllowedSources
// partition ("everyone else" plus exceptions) compiles as:
//   others deny,  no exceptions   → no policies (Envoy: ALLOW with no policies denies everything)
//   others deny,  allowed A, B    → principals [A, B]                      (exact SPIFFE IDs)
//   others allow, no exceptions   → principals [any]
//   others allow, denied X        → principals [notId X]
//   others allow, denied X, Y     → principals [notId { orIds [X, Y] }]
// so the result equals decide() for every caller, including ones the catalog does not know.
// Without a peer certificate no SPIFFE ID matches: allow lists deny such callers, while `any` /
// `notId` admit them.
//
// Intentions (Consul's first-match order, see mesh/authorization.ts): with default deny an
// ALLOW filter lists what is allowed, with default allow a DENY filter lists what is denied;
// permission i counts only where no earlier permission of the other action matched.
//
// Output is deterministic (sorted, no undefined values): resources are fingerprinted with
// JSON.stringify.
import type { AllowedSources } from '../policy/evaluate.js';
import type { Authorization, IntentionRule } from '../mesh/types.js';
import type { HeaderMatch, IntentionPermission } from '../traffic/types.js';
import {
  typedAny,
  type HttpFilter,
  type ListenerFilter,
  type Permission,
  type Principal,
  type RBAC,
  type RbacPolicy,
  type StringMatcher,
} from '../protos/envoy-types.js';
import { TYPE, type PlainJson } from './envoy.js';
import { headerMatcher, methodMatcher } from './matchers.js';

export const HTTP_RBAC_FILTER_NAME = 'envoy.filters.http.rbac';
export const NETWORK_RBAC_FILTER_NAME = 'envoy.filters.network.rbac';
const HTTP_RBAC_TYPE = 'envoy.extensions.filters.http.rbac.v3.RBAC';
const NETWORK_RBAC_TYPE = 'envoy.extensions.filters.network.rbac.v3.RBAC';
export const HTTP_RBAC_TYPE_URL = `${TYPE}${HTTP_RBAC_TYPE}`;
export const NETWORK_RBAC_TYPE_URL = `${TYPE}${NETWORK_RBAC_TYPE}`;
/** Network RBAC stats are `<statPrefix>rbac.allowed|denied`, e.g. inbound_tcp.rbac.denied. */
export const DEFAULT_NETWORK_STAT_PREFIX = 'inbound_tcp.';
const INTENTIONS_STAT_PREFIX = 'inbound_tcp.intentions.';
/** The key of the policy file's single RBAC policy (shown in Envoy's debug logs and dumps). */
export const RBAC_POLICY_NAME = 'allowed-callers';

/**
 * How a service's callers are recognised: its SPIFFE ID (an exact match), or a matcher when
 * the CA's format allows several (Consul's: any datacenter). Decided by ca/spiffe.ts.
 */
export type PrincipalOf = (service: string) => string | StringMatcher;

function exact(id: string | StringMatcher): Principal {
  return { authenticated: { principalName: typeof id === 'string' ? { exact: id } : id } };
}

/** Distinct principals in a stable order (exact IDs sort as before matchers existed). */
function ids(services: readonly string[], principalOf: PrincipalOf): Array<string | StringMatcher> {
  const byKey = new Map<string, string | StringMatcher>();
  for (const s of services) {
    const p = principalOf(s);
    byKey.set(typeof p === 'string' ? p : JSON.stringify(p), p);
  }
  return [...byKey.keys()].sort().map((k) => byKey.get(k)!);
}

/** envoy.config.rbac.v3.RBAC (Envoy JSON shape) for an AllowedSources partition. */
export function rbacRulesFor(sources: AllowedSources, principalOf: PrincipalOf): PlainJson<RBAC> {
  let principals: Principal[];
  if (sources.others === 'deny') {
    principals = ids(sources.allowed, principalOf).map(exact);
  } else {
    const denied = ids(sources.denied, principalOf).map(exact);
    principals =
      denied.length === 0
        ? [{ any: true }]
        : [{ notId: denied.length === 1 ? denied[0] : { orIds: { ids: denied } } }];
  }
  return {
    action: 'ALLOW',
    policies:
      principals.length === 0
        ? {}
        : { [RBAC_POLICY_NAME]: { permissions: [{ any: true }], principals } },
  };
}

function headerPermission(h: HeaderMatch): Permission {
  return { header: headerMatcher(h) };
}

function and(rules: Permission[]): Permission {
  if (rules.length === 0) return { any: true };
  if (rules.length === 1) return rules[0]!;
  return { andRules: { rules } };
}

function or(rules: Permission[]): Permission {
  return rules.length === 1 ? rules[0]! : { orRules: { rules } };
}

/** One L7 permission's request match as an Envoy Permission. */
function permissionMatch(p: IntentionPermission): Permission {
  const h = p.HTTP;
  const rules: Permission[] = [];
  if (h.PathExact !== undefined) rules.push({ urlPath: { path: { exact: h.PathExact } } });
  if (h.PathPrefix !== undefined) rules.push({ urlPath: { path: { prefix: h.PathPrefix } } });
  if (h.PathRegex !== undefined) {
    rules.push({ urlPath: { path: { safeRegex: { regex: h.PathRegex } } } });
  }
  if (h.Methods.length > 0) {
    rules.push({
      header: methodMatcher(h.Methods),
    });
  }
  for (const header of h.Header) rules.push(headerPermission(header));
  return and(rules);
}

/** What of a source's requests gets `action` (the first matching permission decides). */
function requestsGetting(rule: IntentionRule, action: 'allow' | 'deny'): Permission | undefined {
  if (rule.action !== undefined) return rule.action === action ? { any: true } : undefined;
  const perms = rule.permissions ?? [];
  const alternatives: Permission[] = [];
  perms.forEach((p, i) => {
    if (p.Action !== action) return;
    const earlierOther = perms.slice(0, i).filter((q) => q.Action !== action);
    const match = permissionMatch(p);
    alternatives.push(
      earlierOther.length === 0
        ? match
        : and([match, { notRule: or(earlierOther.map(permissionMatch)) }]),
    );
  });
  return alternatives.length === 0 ? undefined : or(alternatives);
}

/** The principal of a rule: its source, or for `*` anyone no other rule names. */
function rulePrincipal(
  rule: IntentionRule,
  named: readonly string[],
  principalOf: PrincipalOf,
): Principal {
  if (rule.source !== '*') return exact(principalOf(rule.source));
  const others = ids(named, principalOf).map(exact);
  if (others.length === 0) return { any: true };
  return { notId: others.length === 1 ? others[0] : { orIds: { ids: others } } };
}

/** envoy.config.rbac.v3.RBAC (Envoy JSON shape) for a destination's intentions. */
export function intentionRules(
  intentions: NonNullable<Authorization['intentions']>,
  principalOf: PrincipalOf,
  l7: boolean,
): PlainJson<RBAC> {
  const listed = intentions.default === 'deny' ? 'allow' : 'deny';
  const named = intentions.rules.filter((r) => r.source !== '*').map((r) => r.source);
  const policies: Record<string, RbacPolicy> = {};
  intentions.rules.forEach((rule, i) => {
    // A network filter cannot see requests: L7 permissions apply to HTTP services only
    // (the mesh reports them for tcp services), and such a source falls to the default.
    if (!l7 && rule.permissions !== undefined) return;
    const requests = requestsGetting(rule, listed);
    if (!requests) return;
    policies[
      `intention-${String(i).padStart(3, '0')}-${rule.source === '*' ? 'any' : rule.source}`
    ] = { permissions: [requests], principals: [rulePrincipal(rule, named, principalOf)] };
  });
  return { action: listed === 'allow' ? 'ALLOW' : 'DENY', policies };
}

function httpFilter(name: string, rules: RBAC): HttpFilter {
  return { name, typedConfig: typedAny(HTTP_RBAC_TYPE, { rules }) };
}

function networkFilter(name: string, statPrefix: string, rules: RBAC): ListenerFilter {
  return { name, typedConfig: typedAny(NETWORK_RBAC_TYPE, { statPrefix, rules }) };
}

/** The `envoy.filters.http.rbac` HttpFilter for an AllowedSources partition. */
export function httpRbacFilter(
  sources: AllowedSources,
  principalOf: PrincipalOf,
): PlainJson<HttpFilter> {
  return httpFilter(HTTP_RBAC_FILTER_NAME, rbacRulesFor(sources, principalOf));
}

/**
 * The `envoy.filters.network.rbac` Filter for a tcp destination; goes before tcp_proxy. A
 * denied connection is closed when the caller sends its first bytes (Envoy's default
 * ONE_TIME_ON_FIRST_BYTE enforcement).
 */
export function networkRbacFilter(
  sources: AllowedSources,
  principalOf: PrincipalOf,
  statPrefix = DEFAULT_NETWORK_STAT_PREFIX,
): PlainJson<ListenerFilter> {
  return networkFilter(NETWORK_RBAC_FILTER_NAME, statPrefix, rbacRulesFor(sources, principalOf));
}

/** The RBAC filters of an inbound listener, in order (both must allow). */
export function authorizationFilters(
  auth: Authorization,
  principalOf: PrincipalOf,
  http: boolean,
): HttpFilter[] | ListenerFilter[] {
  const intentions = auth.intentions && intentionRules(auth.intentions, principalOf, http);
  if (http) {
    const filters: HttpFilter[] = [];
    if (auth.policy) filters.push(httpRbacFilter(auth.policy, principalOf));
    if (intentions) filters.push(httpFilter(`${HTTP_RBAC_FILTER_NAME}.intentions`, intentions));
    return filters;
  }
  const filters: ListenerFilter[] = [];
  if (auth.policy) filters.push(networkRbacFilter(auth.policy, principalOf));
  if (intentions) {
    filters.push(
      networkFilter(`${NETWORK_RBAC_FILTER_NAME}.intentions`, INTENTIONS_STAT_PREFIX, intentions),
    );
  }
  return filters;
}
