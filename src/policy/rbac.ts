// Compiles the policy for one destination service into Envoy RBAC, matching the caller's SPIFFE
// ID (the URI SAN of the peer certificate the inbound listener's mTLS verified).
//
// The RBAC action is always ALLOW with at most one policy, so a denied HTTP request gets Envoy's
// 403 ("RBAC: access denied") and a denied TCP connection is closed. allowedSources() gives
// "everyone else" plus exceptions, which compiles as:
//   others deny,  no exceptions   → no policies (Envoy: ALLOW with no policies denies everything)
//   others deny,  allowed A, B    → principals [A, B]                      (exact SPIFFE IDs)
//   others allow, no exceptions   → principals [any]
//   others allow, denied X        → principals [notId X]
//   others allow, denied X, Y     → principals [notId { orIds [X, Y] }]
// so the result equals decide() for every caller, including ones the catalog does not know.
// Without a peer certificate (mTLS off) no SPIFFE ID matches: allow lists deny such callers,
// while `any` / `notId` admit them.
//
// Output is deterministic (sorted, no undefined values): the translator fingerprints resources
// with JSON.stringify. It depends only on the policy and the destination: a service the policy
// does not name is matched by `*` alone, exactly like a stranger, so `allServices` never adds an
// exception and catalog changes never change a filter (the parameter stays so callers state
// which services exist; tests check the output is independent of it).
import { allowedSources, type AllowedSources } from './evaluate.js';
import type { Policy } from './schema.js';

export const HTTP_RBAC_FILTER_NAME = 'envoy.filters.http.rbac';
export const NETWORK_RBAC_FILTER_NAME = 'envoy.filters.network.rbac';
export const HTTP_RBAC_TYPE_URL = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';
export const NETWORK_RBAC_TYPE_URL =
  'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC';
/** Network RBAC stats are `<statPrefix>rbac.allowed|denied`, e.g. inbound_tcp.rbac.denied. */
export const DEFAULT_NETWORK_STAT_PREFIX = 'inbound_tcp.';
/** The key of the single RBAC policy (shows up in Envoy's debug logs and config dumps). */
export const RBAC_POLICY_NAME = 'allowed-callers';

export type JsonObject = Record<string, unknown>;

export interface RbacOptions {
  /**
   * The SPIFFE ID a service's certificate carries. Default:
   * `spiffe://<policy.trustDomain>/ns/<policy.namespace>/svc/<service>`. Pass the CA's own
   * function when the certificates are issued with another trust domain or namespace.
   */
  readonly principalOf?: (service: string) => string;
  /** Network filter only: stat prefix, default `inbound_tcp.`. */
  readonly statPrefix?: string;
}

/** `spiffe://<trustDomain>/ns/<namespace>/svc/<service>`. */
export function spiffeId(trustDomain: string, namespace: string, service: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/svc/${service}`;
}

/** The SPIFFE ID of `service` under the policy's trust domain and namespace. */
export function policySpiffeId(policy: Policy, service: string): string {
  return spiffeId(policy.trustDomain, policy.namespace, service);
}

function exact(id: string): JsonObject {
  return { authenticated: { principalName: { exact: id } } };
}

function ids(services: readonly string[], principalOf: (s: string) => string): string[] {
  return [...new Set(services.map(principalOf))].sort();
}

/** envoy.config.rbac.v3.RBAC (Envoy JSON shape) for an AllowedSources partition. */
export function rbacRulesFor(
  sources: AllowedSources,
  principalOf: (service: string) => string,
): JsonObject {
  let principals: JsonObject[];
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

/** envoy.config.rbac.v3.RBAC (Envoy JSON shape): who may call `destination`. */
export function rbacRules(
  policy: Policy,
  destination: string,
  allServices: Iterable<string>,
  options: RbacOptions = {},
): JsonObject {
  const principalOf = options.principalOf ?? ((s: string) => policySpiffeId(policy, s));
  return rbacRulesFor(allowedSources(policy, destination, allServices), principalOf);
}

/**
 * The `envoy.filters.http.rbac` HttpFilter for the inbound HTTP listener of `destination`; goes
 * before the router in the HttpConnectionManager's httpFilters. Denied requests get 403.
 */
export function httpRbacFilter(
  policy: Policy,
  destination: string,
  allServices: Iterable<string>,
  options: RbacOptions = {},
): JsonObject {
  return {
    name: HTTP_RBAC_FILTER_NAME,
    typedConfig: {
      '@type': HTTP_RBAC_TYPE_URL,
      rules: rbacRules(policy, destination, allServices, options),
    },
  };
}

/**
 * The `envoy.filters.network.rbac` network Filter for the inbound listener of a tcp service;
 * goes before tcp_proxy in the filter chain. A denied connection is closed when the caller
 * sends its first bytes (Envoy's ONE_TIME_ON_FIRST_BYTE enforcement).
 */
export function networkRbacFilter(
  policy: Policy,
  destination: string,
  allServices: Iterable<string>,
  options: RbacOptions = {},
): JsonObject {
  return {
    name: NETWORK_RBAC_FILTER_NAME,
    typedConfig: {
      '@type': NETWORK_RBAC_TYPE_URL,
      statPrefix: options.statPrefix ?? DEFAULT_NETWORK_STAT_PREFIX,
      rules: rbacRules(policy, destination, allServices, options),
    },
  };
}
