// The policy file's RBAC as the translator builds it (src/translate/rbac.ts), called the way
// these tests think of it: a policy, a destination, the catalog's services.
import { allowedSources } from '../../src/policy/evaluate.js';
import type { Policy } from '../../src/policy/schema.js';
import {
  httpRbacFilter as httpFilter,
  networkRbacFilter as networkFilter,
  rbacRulesFor,
} from '../../src/translate/rbac.js';

export {
  HTTP_RBAC_FILTER_NAME,
  HTTP_RBAC_TYPE_URL,
  NETWORK_RBAC_FILTER_NAME,
  NETWORK_RBAC_TYPE_URL,
  rbacRulesFor,
} from '../../src/translate/rbac.js';

type Json = Record<string, unknown>;

export function spiffeId(trustDomain: string, namespace: string, service: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/svc/${service}`;
}

interface Options {
  readonly principalOf?: (service: string) => string;
  readonly statPrefix?: string;
}

const principals = (policy: Policy, o: Options) =>
  o.principalOf ?? ((s: string) => spiffeId(policy.trustDomain, policy.namespace, s));

export function rbacRules(
  policy: Policy,
  to: string,
  all: Iterable<string>,
  o: Options = {},
): Json {
  return rbacRulesFor(allowedSources(policy, to, all), principals(policy, o));
}

export function httpRbacFilter(
  policy: Policy,
  to: string,
  all: Iterable<string>,
  o: Options = {},
): Json {
  return httpFilter(allowedSources(policy, to, all), principals(policy, o));
}

export function networkRbacFilter(
  policy: Policy,
  to: string,
  all: Iterable<string>,
  o: Options = {},
): Json {
  return networkFilter(allowedSources(policy, to, all), principals(policy, o), o.statPrefix);
}
