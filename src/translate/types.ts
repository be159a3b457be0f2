// What translators produce: Envoy resources as plain objects in Envoy's JSON shape
// (camelCase fields, "@type" inside Any, durations as "5s"), keyed by resource name.
// They are encoded later, once, by the snapshot store.
import { RESOURCE_KINDS, type ResourceKind } from '../protos/envoy.js';

export type ResourceMessage = Record<string, unknown>;

export type ResourceSet = { [K in ResourceKind]: Map<string, ResourceMessage> };

export interface TranslateOptions {
  /** DNS suffix of service virtual hosts: `<service>.<domainSuffix>`. */
  readonly domainSuffix: string;
  /** Upstream connect timeout, Envoy duration syntax. */
  readonly connectTimeout: string;
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
