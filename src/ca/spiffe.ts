// SPIFFE identities and TLS server names of services: the one home for their format, which the
// CA backend decides (docs/ca.md):
//   lucid (built-in CA):   spiffe://<trust-domain>/ns/<namespace>/svc/<service>
//   consul (Connect CA):   spiffe://<trust-domain>/ns/<namespace>/dc/<datacenter>/svc/<service>
import { CaMaterialError } from './crypto.js';

export const DEFAULT_TRUST_DOMAIN = 'lucid.internal';
export const DEFAULT_NAMESPACE = 'default';
/** Leaves also carry a DNS SAN `<service>.<dns-domain>` for clients that check hostnames. */
export const DEFAULT_DNS_DOMAIN = 'lucid.internal';

/** Same rule as catalog service names: a DNS label. */
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** SPIFFE trust domains: lowercase letters, digits, '.', '-', '_' (SPIFFE-ID spec §2.1). */
const TRUST_DOMAIN = /^[a-z0-9._-]{1,255}$/;
const DNS_NAME =
  /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

export interface Identity {
  readonly trustDomain: string;
  readonly namespace: string;
  /**
   * Absent: lucid-mesh's own format. `consul`: Consul Connect's (`--ca consul-connect`), whose
   * IDs and SNI names carry the datacenter of the agent that issued the leaf.
   */
  readonly format?: 'consul';
  /** The datacenter in this CA's own leaves (consul format). */
  readonly datacenter?: string;
}

/** How a SAN check matches a peer's SPIFFE ID (mapped to an Envoy StringMatcher). */
export type SpiffeMatcher = { readonly exact: string } | { readonly regex: string };

export function isServiceName(name: string): boolean {
  return LABEL.test(name);
}

export function assertServiceName(name: string): void {
  if (!LABEL.test(name)) {
    throw new CaMaterialError(
      `service name must be a DNS label (a-z, 0-9, -; at most 63), got ${JSON.stringify(name)}`,
    );
  }
}

export function assertTrustDomain(domain: string): void {
  if (!TRUST_DOMAIN.test(domain)) {
    throw new CaMaterialError(
      `trust domain must be lowercase letters, digits, '.', '-' or '_', got ${JSON.stringify(domain)}`,
    );
  }
}

export function assertNamespace(namespace: string): void {
  if (!LABEL.test(namespace)) {
    throw new CaMaterialError(`namespace must be a DNS label, got ${JSON.stringify(namespace)}`);
  }
}

export function assertDnsDomain(domain: string): void {
  if (!DNS_NAME.test(domain)) {
    throw new CaMaterialError(`DNS domain must be a DNS name, got ${JSON.stringify(domain)}`);
  }
}

export function spiffeId(identity: Identity, service: string): string {
  if (identity.format === 'consul') {
    return `spiffe://${identity.trustDomain}/ns/${identity.namespace}/dc/${consulDatacenter(identity)}/svc/${service}`;
  }
  return `spiffe://${identity.trustDomain}/ns/${identity.namespace}/svc/${service}`;
}

/**
 * What identifies `service` in a peer certificate. Consul format: any datacenter (a service's
 * leaves come from the agent of the datacenter it runs in), as Consul's own RBAC matches.
 */
export function spiffeMatcher(identity: Identity, service: string): SpiffeMatcher {
  if (identity.format !== 'consul') return { exact: spiffeId(identity, service) };
  const td = escapeRegex(identity.trustDomain);
  return {
    regex: `^spiffe://${td}/ns/${escapeRegex(identity.namespace)}/dc/[^/]+/svc/${escapeRegex(service)}$`,
  };
}

/**
 * The SNI a sidecar sends to `service` in `datacenter`. Consul format: Consul's service SNI
 * `<service>.<namespace>.<dc>.internal.<trust domain>` (what Consul's sidecars and gateways
 * route on); lucid: `<service>.<dnsSuffix>`.
 */
export function serviceSni(
  identity: Identity,
  service: string,
  dnsSuffix: string,
  datacenter = identity.datacenter,
): string {
  if (identity.format !== 'consul') return `${service}.${dnsSuffix}`;
  return `${service}.${identity.namespace}.${datacenter ?? consulDatacenter(identity)}.internal.${identity.trustDomain}`;
}

/**
 * The SNI through mesh gateways, which route on it without terminating TLS (`*` as service: a
 * gateway's match for every service of the datacenter). lucid:
 * `<service>.<namespace>.<dc>.<trust domain>`; Consul: its service SNI.
 */
export function gatewayServerName(identity: Identity, service: string, datacenter: string): string {
  const internal = identity.format === 'consul' ? 'internal.' : '';
  return `${service}.${identity.namespace}.${datacenter}.${internal}${identity.trustDomain}`;
}

function consulDatacenter(identity: Identity): string {
  if (!identity.datacenter) throw new CaMaterialError('consul identity format needs a datacenter');
  return identity.datacenter;
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The SPIFFE ID prefix every workload in the trust domain shares (for SAN matchers). */
export function trustDomainPrefix(trustDomain: string): string {
  return `spiffe://${trustDomain}/`;
}
