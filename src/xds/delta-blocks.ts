// The shared part of a delta stream's first responses, joined once per snapshot. A new stream
// is owed every resource of a wildcard kind (CDS, LDS) and every name it subscribes to (EDS,
// RDS): at W1 ~100 entries a response, each copied into it on its own (~20,000 small copies
// and their bookkeeping in a storm of 100 delta sidecars). The shared resources' entries are
// the same bytes for every proxy of a snapshot: joined once, they are one copy a response, as
// SotW's blocks are (snapshot.ts). The proxy's own entries follow them (a delta response's
// order carries no meaning).
import type { EncodedResource } from '../snapshot/encoded-resource.js';
import { sortedShared, type ProxyView } from '../snapshot/proxy-view.js';
import type { ResourceMap } from '../snapshot/snapshot.js';
import type { ResourceKind } from '../protos/envoy.js';
import type { NameSet } from './name-set.js';

/** By the snapshot's shared map of a kind (never edited once built): its entries joined. */
const wildcardBlocks = new WeakMap<ResourceMap, Buffer>();
/** By the shared map, then the interned subscription (one object for equal name lists). */
const namedBlocks = new WeakMap<ResourceMap, WeakMap<NameSet, Buffer>>();

/** Entries joined (one buffer). */
function join(resources: Iterable<EncodedResource>): Buffer {
  const entries: Buffer[] = [];
  for (const r of resources) entries.push(r.deltaEntry);
  return Buffer.concat(entries);
}

/**
 * The entries of `upserts` (every resource of `kind` in `view`, as allSorted lists them) as a
 * few parts: the shared block, then the proxy's own. Undefined when an own resource shadows a
 * shared one (then entry by entry).
 */
export function wildcardParts(
  view: ProxyView,
  kind: ResourceKind,
  upserts: readonly EncodedResource[],
): Buffer[] | undefined {
  const shared = view.snapshot.shared[kind];
  const own: Buffer[] = [];
  let sharedCount = 0;
  for (const r of upserts) {
    if (shared.get(r.name) === r) sharedCount++;
    else if (shared.has(r.name))
      return undefined; // shadowed
    else own.push(r.deltaEntry);
  }
  if (sharedCount !== shared.size) return undefined;
  let block = wildcardBlocks.get(shared);
  if (!block) wildcardBlocks.set(shared, (block = join(sortedShared(shared))));
  return [block, ...own];
}

/**
 * The entries of `upserts` (what `names` found in `view`, in the names' order) as one shared
 * block, when every one of them is a shared resource and every name found one; else undefined.
 */
export function namedParts(
  view: ProxyView,
  kind: ResourceKind,
  names: NameSet,
  upserts: readonly EncodedResource[],
): Buffer[] | undefined {
  if (upserts.length !== names.size || upserts.length === 0) return undefined;
  const shared = view.snapshot.shared[kind];
  for (const r of upserts) if (shared.get(r.name) !== r) return undefined;
  let bySet = namedBlocks.get(shared);
  if (!bySet) namedBlocks.set(shared, (bySet = new WeakMap()));
  let block = bySet.get(names);
  if (!block) bySet.set(names, (block = join(upserts)));
  return [block];
}
