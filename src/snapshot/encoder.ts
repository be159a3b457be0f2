// Encodes translator output, skipping resources whose content did not change since the last
// time they were encoded. A catalog edit therefore re-encodes only what it changed, and a
// resource shared by any number of proxies is encoded once.
import type { ResourceKind } from '../protos/envoy.js';
import type { ResourceMessage } from '../translate/types.js';
import { encodeResource, type EncodedResource } from './encoded-resource.js';
import { lazyResource, lazyVersion } from './lazy-resource.js';

interface Entry {
  /**
   * The message last encoded (shared resources only): handed the same object again, nothing
   * needs comparing. Per-proxy messages are not kept (a thousand proxies' listeners).
   */
  message: ResourceMessage | undefined;
  /**
   * Per-proxy resources: the message last seen, weakly. One that every proxy is handed as
   * the same object (the DNS listener, memoized per set of names: ~1,000 entries) is then
   * neither stringified nor hashed again per proxy (the largest share of a failover
   * survivor's time, bench --workload failover --profile).
   */
  seen: WeakRef<ResourceMessage> | undefined;
  fingerprint: string;
  resource: EncodedResource;
  generation: number;
}

export interface EncoderCounters {
  /** Resources (re)made: protobuf-encoded at once, or on first use for per-proxy ones. */
  encoded: number;
  /** Requests served from the cache (content unchanged). */
  reused: number;
}

export class ResourceEncoder {
  private readonly entries = new Map<string, Entry>();
  private generation = 0;
  readonly counters: EncoderCounters = { encoded: 0, reused: 0 };

  /**
   * `cacheKey` (default: the name) tells apart same-named resources of different proxies.
   * `compact` keeps a hash of the content instead of its JSON: for per-proxy resources, whose
   * JSON kept for a thousand proxies would cost more memory than the hash costs time. Those
   * are versioned by that hash and encoded on first use (lazy-resource.ts).
   */
  encode(
    kind: ResourceKind,
    name: string,
    message: ResourceMessage,
    cacheKey = name,
    compact = false,
  ): EncodedResource {
    const key = `${kind}\u0000${cacheKey}`;
    const entry = this.entries.get(key);
    if (entry && (entry.message === message || entry.seen?.deref() === message)) {
      entry.generation = this.generation;
      this.counters.reused++;
      return entry.resource;
    }
    // Translators build objects with a fixed key order, so equal content stringifies equally;
    // this is much cheaper than encoding.
    const json = JSON.stringify(message);
    // A per-proxy resource is versioned by its JSON's hash (also its fingerprint) and encoded
    // only when first sent: a proxy failing over to this replica usually holds it already.
    const fingerprint = compact ? lazyVersion(json) : json;
    if (entry && entry.fingerprint === fingerprint) {
      if (compact) entry.seen = new WeakRef(message);
      else entry.message = message;
      entry.generation = this.generation;
      this.counters.reused++;
      return entry.resource;
    }
    const resource = compact
      ? lazyResource(kind, name, message, json)
      : encodeResource(kind, name, message);
    this.counters.encoded++;
    this.entries.set(key, {
      message: compact ? undefined : message,
      seen: compact ? new WeakRef(message) : undefined,
      fingerprint,
      resource,
      generation: this.generation,
    });
    return resource;
  }

  /**
   * Starts a new generation and forgets entries not used in the previous one, so resources
   * of deleted services or departed proxies do not accumulate.
   */
  nextGeneration(): void {
    for (const [key, entry] of this.entries) {
      if (entry.generation < this.generation) this.entries.delete(key);
    }
    this.generation++;
  }

  get size(): number {
    return this.entries.size;
  }
}
