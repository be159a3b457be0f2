// What the translators produce: Envoy resources in their JSON shape, keyed by resource name,
// per kind. Encoded later, once, by the snapshot store.
import { RESOURCE_KINDS, type ResourceKind } from '../protos/envoy.js';
import type { ResourceMessage } from './envoy.js';

export type { ResourceMessage };

export type ResourceSet = { [K in ResourceKind]: Map<string, ResourceMessage> };

export function emptyResourceSet(): ResourceSet {
  const set = {} as ResourceSet;
  for (const kind of RESOURCE_KINDS) set[kind] = new Map();
  return set;
}
