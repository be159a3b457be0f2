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
  /**
   * Entries per kind, by cache key: keys are names the translators already hold, whose hashes
   * V8 keeps, where one `${kind}\0${key}` string made per lookup had to be hashed anew
   * (~20,000 lookups per build at 10,000 services, bench W10).
   */
  private readonly entries = new Map<ResourceKind, Map<string, Entry>>();
  /**
   * Per-proxy (`compact`) entries apart, with a generation of their own: a build that patches
   * the shared resources sweeps only these (what departed proxies left), not the 20,000 shared
   * ones (nextProxyGeneration). Apart also because a proxy's own resource may have a shared
   * one's name (an upstream override's cluster).
   */
  private readonly proxyEntries = new Map<ResourceKind, Map<string, Entry>>();
  /**
   * Per-proxy resources by the message object: one the translators hand many proxies as the
   * same object (the DNS listener of a scope, the outbound listener of a port) is the same
   * resource whatever proxy asks, with no JSON, hash or encode per proxy. The entries above
   * are by name, one at a time: proxies of 1,000 scopes arriving interleaved each replaced the
   * last one's DNS listener there, so each was stringified, hashed and protobuf-encoded anew
   * (10,000 times in the W9 storm, ~1 s of its control-plane CPU).
   */
  private readonly byMessage = new WeakMap<ResourceMessage, EncodedResource>();
  private generation = 0;
  private proxyGeneration = 0;
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
    const table = compact ? this.proxyEntries : this.entries;
    const generation = compact ? this.proxyGeneration : this.generation;
    let entries = table.get(kind);
    if (!entries) table.set(kind, (entries = new Map()));
    const entry = entries.get(cacheKey);
    if (entry && (entry.message === message || entry.seen?.deref() === message)) {
      entry.generation = generation;
      this.counters.reused++;
      return entry.resource;
    }
    if (compact) {
      const known = this.byMessage.get(message);
      if (known && known.kind === kind && known.name === name) {
        this.counters.reused++;
        return known;
      }
    }
    // Translators build objects with a fixed key order, so equal content stringifies equally;
    // this is much cheaper than encoding.
    const json = JSON.stringify(message);
    // A per-proxy resource is versioned by its JSON's hash (also its fingerprint) and encoded
    // only when first sent: a proxy failing over to this replica usually holds it already.
    const fingerprint = compact ? lazyVersion(json) : json;
    if (entry && entry.fingerprint === fingerprint) {
      if (compact) {
        entry.seen = new WeakRef(message);
        this.byMessage.set(message, entry.resource);
      } else entry.message = message;
      entry.generation = generation;
      this.counters.reused++;
      return entry.resource;
    }
    const resource = compact
      ? lazyResource(kind, name, message, json, fingerprint)
      : encodeResource(kind, name, message);
    if (compact) this.byMessage.set(message, resource);
    this.counters.encoded++;
    entries.set(cacheKey, {
      message: compact ? undefined : message,
      seen: compact ? new WeakRef(message) : undefined,
      fingerprint,
      resource,
      generation,
    });
    return resource;
  }

  /**
   * Starts a new generation and forgets entries not used in the previous one, so resources
   * of deleted services or departed proxies do not accumulate.
   */
  nextGeneration(): void {
    sweep(this.entries, this.generation++);
    this.nextProxyGeneration();
  }

  /** The same for per-proxy entries only (a build that left the shared ones as they were). */
  nextProxyGeneration(): void {
    sweep(this.proxyEntries, this.proxyGeneration++);
  }

  get size(): number {
    let size = 0;
    for (const table of [this.entries, this.proxyEntries]) {
      for (const entries of table.values()) size += entries.size;
    }
    return size;
  }
}

/** Drops the entries not used since `generation` began. */
function sweep(table: Map<ResourceKind, Map<string, Entry>>, generation: number): void {
  for (const entries of table.values()) {
    for (const [key, entry] of entries) if (entry.generation < generation) entries.delete(key);
  }
}
