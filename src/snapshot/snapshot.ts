// An immutable snapshot: the shared resources every proxy gets, plus the mesh model from which
// each proxy's own resources (inbound listener, outbound listener) are derived on demand.
import type { Mesh } from '../mesh/types.js';
import { RESOURCE_KINDS, type ResourceKind } from '../protos/envoy.js';
import { contentHash, type EncodedResource } from './encoded-resource.js';
import { digestOf, type VersionDigest } from './version-digest.js';

export type ResourceMap = ReadonlyMap<string, EncodedResource>;
export type KindMaps = { readonly [K in ResourceKind]: ResourceMap };

/** SotW entries of a set of resources (copied into the response as they are), and a digest. */
export interface SotwBlock {
  /** Pre-framed DiscoveryResponse.resources elements, in a few contiguous parts. */
  readonly parts: readonly Buffer[];
  readonly digest: string;
  readonly count: number;
  /**
   * Set when this very object goes to every proxy that needs it in this snapshot (memoized
   * here): a response made from it can then be made once and shared too.
   */
  readonly shared?: boolean;
}

/**
 * The digest is made at once, the bytes on first use of `parts`: a proxy that already holds
 * this digest (a reconnect) is sent nothing, so its own resources need never be encoded.
 */
export function sotwBlockOf(resources: Iterable<EncodedResource>): SotwBlock {
  let list: EncodedResource[] | undefined = [];
  const ids: string[] = [];
  for (const r of resources) {
    list.push(r);
    ids.push(`${r.name}@${r.version}`);
  }
  let parts: readonly Buffer[] | undefined;
  return {
    get parts(): readonly Buffer[] {
      if (!parts) {
        parts = [concatUnpooled(list!.map((r) => r.sotwEntry))];
        list = undefined;
      }
      return parts;
    },
    digest: contentHash(ids.join('\n')),
    count: ids.length,
  };
}

/**
 * A block of a few resources whose entries are sent as they are (one part each), with a
 * digest known already (sotwBlockOf's for the same resources): nothing is copied or kept.
 */
export function listBlock(
  resources: ReadonlyMap<string, EncodedResource>,
  digest: string,
): SotwBlock {
  return {
    get parts(): readonly Buffer[] {
      return Array.from(resources.values(), (r) => r.sotwEntry);
    },
    digest,
    count: resources.size,
  };
}

/** Buffer.concat for bytes kept a long time: small results are not slices of the shared pool. */
export function concatUnpooled(parts: readonly Buffer[]): Buffer {
  let size = 0;
  for (const p of parts) size += p.length;
  const out = Buffer.allocUnsafeSlow(size);
  let at = 0;
  for (const p of parts) at += p.copy(out, at);
  return out;
}

/** Two blocks sent as one (shared resources followed by a proxy's own), without copying. */
export function joinBlocks(a: SotwBlock, b: SotwBlock): SotwBlock {
  return {
    get parts(): readonly Buffer[] {
      return [...a.parts, ...b.parts]; // b's bytes may not exist until now
    },
    digest: `${a.digest}.${b.digest}`,
    count: a.count + b.count,
  };
}

const EMPTY_DIFF: KindDiff = { changed: new Set(), removed: new Set() };

/** Names that differ between two versions of a resource map. */
export interface KindDiff {
  /** Added or modified. */
  readonly changed: ReadonlySet<string>;
  readonly removed: ReadonlySet<string>;
}

export function diffMaps(prev: ResourceMap, next: ResourceMap): KindDiff {
  // Own resources are cached per proxy: an unchanged proxy keeps the very same map.
  if (prev === next) return EMPTY_DIFF;
  const changed = new Set<string>();
  const removed = new Set<string>();
  for (const [name, r] of next) if (prev.get(name)?.version !== r.version) changed.add(name);
  for (const name of prev.keys()) if (!next.has(name)) removed.add(name);
  return { changed, removed };
}

/** Digests of resource maps, which are never changed once a snapshot holds them. */
const kindDigests = new WeakMap<ResourceMap, string>();

function kindDigest(kind: ResourceKind, map: ResourceMap): string {
  let digest = kindDigests.get(map);
  if (digest === undefined) {
    const ids: string[] = [];
    for (const r of map.values()) ids.push(`${kind}/${r.name}@${r.version}`);
    // Empty maps are shared across kinds: their digest must not depend on the kind.
    digest = ids.length === 0 ? '' : contentHash(ids.join('\n'));
    kindDigests.set(map, digest);
  }
  return digest;
}

export class Snapshot {
  private readonly blocks = new Map<ResourceKind, SotwBlock>();
  /** Blocks of named subscriptions, per kind and (interned) set of names. */
  private readonly namedBlocks = new Map<ResourceKind, WeakMap<object, SotwBlock>>();
  /** Blocks of a few changed names (what a fan-out sends to every proxy), per kind and names. */
  private readonly partialBlocks = new Map<ResourceKind, Map<string, SotwBlock>>();
  // Every stream diffs against the snapshot it last saw, which is nearly always the same one:
  // compute each shared diff once, not once per proxy.
  private readonly diffs = new WeakMap<Snapshot, Map<ResourceKind, KindDiff>>();
  /** Digests of what a reconnecting sidecar should hold (version-digest.ts), made on first use. */
  private readonly sharedDigests = new Map<ResourceKind, VersionDigest>();
  private readonly namedDigests = new Map<ResourceKind, WeakMap<object, VersionDigest>>();

  /** What a response built from this snapshot records (for convergence). */
  readonly ref: { readonly version: string; readonly changedAt: number };

  // mesh, changedAt, builtAt and ref say which build made the snapshot. A scoped snapshot that
  // later builds leave unchanged is kept as it is: which build it belongs to now is the
  // store's to say (its membership, see ProxyView.build), not the snapshot's.
  constructor(
    /** Content hash over every shared resource; equal on every replica for equal input. */
    readonly version: string,
    /** The mesh model it was translated from (proxies' own resources are derived from it). */
    readonly mesh: Mesh,
    readonly shared: KindMaps,
    /** When the oldest source change folded into this snapshot happened (ms epoch). */
    readonly changedAt: number,
    readonly builtAt: number,
    /**
     * The build that made this snapshot. A locality group's or a scope's snapshot (narrower
     * resources) shares its build's, so convergence counts every proxy of the build alike.
     */
    ref?: { readonly version: string; readonly changedAt: number },
  ) {
    this.ref = ref ?? { version, changedAt };
  }

  /**
   * A narrower snapshot of this build (a locality group's or a scope's): other shared
   * resources, its own content version, this build's mesh, times and ref.
   */
  narrowed(shared: KindMaps): Snapshot {
    return new Snapshot(
      Snapshot.versionOf(shared),
      this.mesh,
      shared,
      this.changedAt,
      this.builtAt,
      this.ref,
    );
  }

  /** The shared resources of one kind as one pre-concatenated block, built on first use. */
  sharedBlock(kind: ResourceKind): SotwBlock {
    let block = this.blocks.get(kind);
    if (!block) {
      block = { ...sotwBlockOf(this.shared[kind].values()), shared: true };
      this.blocks.set(kind, block);
    }
    return block;
  }

  /**
   * A block for a named subscription, built once per snapshot and set of names however many
   * proxies share that subscription. `build` computes it the first time.
   */
  namedBlock(kind: ResourceKind, names: object, build: () => SotwBlock): SotwBlock {
    let byNames = this.namedBlocks.get(kind);
    if (!byNames) this.namedBlocks.set(kind, (byNames = new WeakMap()));
    let block = byNames.get(names);
    if (!block) byNames.set(names, (block = { ...build(), shared: true }));
    return block;
  }

  /**
   * A block of a few names (a change pushed to every proxy subscribing to them), built once
   * per snapshot. Only for names that resolve the same for every proxy (no own resources).
   */
  partialBlock(kind: ResourceKind, names: readonly string[], build: () => SotwBlock): SotwBlock {
    let byNames = this.partialBlocks.get(kind);
    if (!byNames) this.partialBlocks.set(kind, (byNames = new Map()));
    const key = names.join('\n');
    let block = byNames.get(key);
    if (!block) {
      // Bounded: a snapshot sees a handful of distinct change sets, not one per proxy.
      if (byNames.size >= 64) byNames.clear();
      byNames.set(key, (block = { ...build(), shared: true }));
    }
    return block;
  }

  /** The digest of every shared resource of a kind, once per snapshot. */
  sharedDigest(kind: ResourceKind): VersionDigest {
    let digest = this.sharedDigests.get(kind);
    if (!digest) this.sharedDigests.set(kind, (digest = digestOf(this.shared[kind].values())));
    return digest;
  }

  /** A named subscription's digest, once per snapshot and (interned) set of names. */
  namedDigest(kind: ResourceKind, names: object, build: () => VersionDigest): VersionDigest {
    let byNames = this.namedDigests.get(kind);
    if (!byNames) this.namedDigests.set(kind, (byNames = new WeakMap()));
    let digest = byNames.get(names);
    if (!digest) byNames.set(names, (digest = build()));
    return digest;
  }

  /** What changed in the shared resources of `kind` since `prev`. */
  sharedDiffFrom(prev: Snapshot, kind: ResourceKind): KindDiff {
    let byKind = this.diffs.get(prev);
    if (!byKind) {
      byKind = new Map();
      this.diffs.set(prev, byKind);
    }
    let diff = byKind.get(kind);
    if (!diff) {
      diff = diffMaps(prev.shared[kind], this.shared[kind]);
      byKind.set(kind, diff);
    }
    return diff;
  }

  /**
   * A hash of each kind's resources (names and versions, in order), then of those: a kind
   * whose map is the very one of the last build (unchanged) is not hashed again (W10's
   * 20,000 resources took ~5 ms per change).
   */
  static versionOf(shared: KindMaps): string {
    return contentHash(RESOURCE_KINDS.map((kind) => kindDigest(kind, shared[kind])).join('\n'));
  }
}
