// A translated ResourceSet as the encoded maps snapshots and views hold: through the encoder's
// cache (shared resources, and proxies' own while there is room), or uncached.
import { RESOURCE_KINDS, type ResourceKind } from '../protos/envoy.js';
import type { ResourceSet } from '../translate/types.js';
import type { EncodedResource } from './encoded-resource.js';
import type { ResourceEncoder } from './encoder.js';
import { lazyResource } from './lazy-resource.js';
import { compactMap } from './small-map.js';
import type { KindMaps, ResourceMap } from './snapshot.js';

/** The one empty map every kind without resources shares. */
export const NO_RESOURCES: ResourceMap = new Map();

/**
 * `set` encoded through `encoder`; `cacheKey` tells apart same-named resources of different
 * proxies, `perProxy` marks a proxy's own resources (see ResourceEncoder.encode).
 */
export function encodeSet(
  encoder: ResourceEncoder,
  set: ResourceSet,
  cacheKey: (kind: ResourceKind, name: string) => string = (_kind, name) => name,
  perProxy = false,
): KindMaps {
  const out = {} as { [K in ResourceKind]: ResourceMap };
  for (const kind of RESOURCE_KINDS) {
    const map = new Map<string, EncodedResource>();
    for (const [name, message] of set[kind]) {
      map.set(name, encoder.encode(kind, name, message, cacheKey(kind, name), perProxy));
    }
    // Most proxies have no own resources of most kinds: one shared empty map for those, and
    // their few others in fields, not a hash table (compactMap).
    out[kind] = map.size === 0 ? NO_RESOURCES : perProxy ? compactMap(map) : map;
  }
  return out;
}

/** A proxy's own resources without the encoder's cache (versioned as its cached ones are). */
export function encodeUncached(set: ResourceSet): KindMaps {
  const out = {} as { [K in ResourceKind]: ResourceMap };
  for (const kind of RESOURCE_KINDS) {
    const map = new Map<string, EncodedResource>();
    for (const [name, message] of set[kind]) map.set(name, lazyResource(kind, name, message));
    out[kind] = map.size === 0 ? NO_RESOURCES : compactMap(map);
  }
  return out;
}
