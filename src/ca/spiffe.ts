// SPIFFE identities for services: spiffe://<trust-domain>/ns/<namespace>/svc/<service>.
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
}

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
  return `spiffe://${identity.trustDomain}/ns/${identity.namespace}/svc/${service}`;
}

/** The SPIFFE ID prefix every workload in the trust domain shares (for SAN matchers). */
export function trustDomainPrefix(trustDomain: string): string {
  return `spiffe://${trustDomain}/`;
}
