// What translators produce: Envoy resources as plain objects in Envoy's JSON shape
// (camelCase fields, "@type" inside Any, durations as "5s"), keyed by resource name.
// They are encoded later, once, by the snapshot store.
import type { Policy } from '../policy/schema.js';
import { RESOURCE_KINDS, type ResourceKind } from '../protos/envoy.js';

export type ResourceMessage = Record<string, unknown>;

export type ResourceSet = { [K in ResourceKind]: Map<string, ResourceMessage> };

/** The SPIFFE identity space certificates are issued in. */
export interface MeshIdentity {
  readonly trustDomain: string;
  readonly namespace: string;
}

export interface MeshSecurity {
  /** mTLS between sidecars, with SDS-delivered certificates of this identity space. */
  readonly mtls?: MeshIdentity;
  /** Authorization policy, enforced by RBAC on inbound listeners (needs mtls to know callers). */
  readonly policy?: Policy;
  /**
   * Proxies' services are authenticated (tokens): a node only gets an instance's inbound
   * config when the instance belongs to the node's service.
   */
  readonly authenticatedProxies?: boolean;
}

export interface TranslateOptions {
  /** DNS suffix of service virtual hosts: `<service>.<domainSuffix>`. */
  readonly domainSuffix: string;
  /** Upstream connect timeout, Envoy duration syntax. */
  readonly connectTimeout: string;
  readonly security?: MeshSecurity;
}

export const DEFAULT_TRANSLATE_OPTIONS: TranslateOptions = {
  domainSuffix: 'lucid.internal',
  connectTimeout: '5s',
};

export function emptyResourceSet(): ResourceSet {
  const set = {} as ResourceSet;
  for (const kind of RESOURCE_KINDS) set[kind] = new Map();
  return set;
}
