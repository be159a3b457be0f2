// The shared resources of a build encoded: in full, or, after a patched translation (a few
// services changed), by copying the last build's maps and encoding only the patched names.
// Going through 20,000 unchanged resources took ~10 ms per change at 10,000 services (bench
// W10).
import type { PatchedNames, TranslationCache } from '../translate/index.js';
import { emptyResourceSet, type ResourceSet } from '../translate/types.js';
import { encodeSet, NO_RESOURCES } from './encode-set.js';
import type { EncodedResource } from './encoded-resource.js';
import type { ResourceEncoder } from './encoder.js';
import type { KindMaps, ResourceMap } from './snapshot.js';

/** At most this many patched builds in a row (see encode). */
const FULL_ENCODE_EVERY = 256;

export class SharedResources {
  /**
   * Shared names whose encoded resource the last build changed (undefined: a full encode).
   * What touched.ts reads to visit only what a change touched.
   */
  changes: PatchedNames | undefined;
  /** The last build's encoded shared resources. */
  private last: KindMaps | undefined;
  /** Builds encoded by patching since the last full pass. */
  private patchedBuilds = 0;

  constructor(
    private readonly encoder: ResourceEncoder,
    private readonly translationCache: TranslationCache,
  ) {}

  /**
   * `set` (the translation of the current build) encoded. Patched builds sweep only
   * per-proxy entries (what departed proxies left); shared ones untouched since are still in
   * use. Every FULL_ENCODE_EVERY builds a full pass sweeps the rest too (entries of caller
   * localities or scopes no longer asked for).
   */
  encode(set: ResourceSet): KindMaps {
    const patched = this.translationCache.patched;
    const last = this.last;
    let shared: KindMaps;
    if (patched && last && this.patchedBuilds < FULL_ENCODE_EVERY) {
      this.patchedBuilds++;
      this.encoder.nextProxyGeneration();
      // A kind none of whose patched names changed keeps the very map (and its digest).
      const changes = { clusters: [], endpoints: [], listeners: [], routes: [] } as {
        [K in keyof PatchedNames]: string[];
      };
      const patch = (kind: keyof PatchedNames): ResourceMap => {
        const from = last[kind];
        let map: Map<string, EncodedResource> | undefined;
        for (const name of patched[kind]) {
          const message = set[kind].get(name);
          const r = message && this.encoder.encode(kind, name, message);
          if (r === from.get(name)) continue;
          changes[kind].push(name);
          map ??= new Map(from);
          if (r) map.set(name, r);
          else map.delete(name);
        }
        if (!map) return from;
        return map.size === 0 ? NO_RESOURCES : map;
      };
      const encoded = encodeSet(this.encoder, {
        ...emptyResourceSet(),
        secrets: set.secrets,
      }).secrets;
      // The same secrets keep the very map: a scope's snapshot is kept only with it.
      const secrets = sameEntries(last.secrets, encoded) ? last.secrets : encoded;
      shared = {
        ...last,
        clusters: patch('clusters'),
        endpoints: patch('endpoints'),
        listeners: patch('listeners'),
        routes: patch('routes'),
        secrets,
      };
      this.changes = changes;
    } else {
      this.changes = undefined;
      this.patchedBuilds = 0;
      this.encoder.nextGeneration();
      shared = encodeSet(this.encoder, set);
    }
    this.last = shared;
    return shared;
  }

  /** A build failed: the next one encodes in full (nothing patched onto what it left). */
  forget(): void {
    this.last = undefined;
  }
}

/** The same names, in the same order, with the very same resources. */
function sameEntries(a: ResourceMap, b: ResourceMap): boolean {
  if (a === b) return true;
  if (a.size !== b.size) return false;
  const other = b.entries();
  for (const [name, r] of a) {
    const [n, s] = other.next().value as [string, EncodedResource];
    if (n !== name || s !== r) return false;
  }
  return true;
}
