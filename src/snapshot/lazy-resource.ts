// A proxy's own resource (its inbound listener, local app cluster, identity secret, ...),
// versioned at once but protobuf-encoded only when a response first needs its bytes. A sidecar
// that fails over to this replica says what it holds; when that is this version nothing is
// sent, and the encode (protobufjs fromObject/verify/encode: ~10× the JSON and its hash, bench
// --workload failover) would be wasted. Encoded at most once, then shared like any other.
import { TYPE_URLS, encodeMessage, type ResourceKind } from '../protos/envoy.js';
import { deltaResourceEntry, sotwResourceEntry, stringFieldLength } from '../protos/wire.js';
import type { ResourceMessage } from '../translate/types.js';
import { contentHash, type EncodedResource } from './encoded-resource.js';

/**
 * The version of a lazily encoded resource: a hash of its JSON (translators build objects with
 * a fixed key order, so equal content gives equal JSON on every replica running this code).
 * Prefixed so that it never equals a hash of encoded bytes.
 */
export function lazyVersion(json: string): string {
  return `j${contentHash(json)}`;
}

class LazyResource implements EncodedResource {
  /** Kept until the first encode, then dropped for the bytes. */
  private message: ResourceMessage | undefined;
  /**
   * The entries, each made when a response first needs it: a proxy speaks SotW or delta, so
   * it holds one of the two (W9: ~1.5 KB a proxy for its own resources). Each is one exact
   * allocation, outside Node's shared Buffer pool.
   */
  private sotw: Buffer | undefined;
  private delta: Buffer | undefined;
  /** The encoded message (Any.value): a view into whichever entry was made first. */
  private raw: Uint8Array | undefined;

  constructor(
    readonly kind: ResourceKind,
    readonly name: string,
    readonly version: string,
    message: ResourceMessage,
  ) {
    this.message = message;
  }

  /** The message's bytes: encoded once (the expensive part), or read back from an entry. */
  private messageBytes(): Uint8Array {
    if (this.raw) return this.raw;
    const bytes = encodeMessage(TYPE_URLS[this.kind], this.message!, `"${this.name}"`);
    this.message = undefined;
    return bytes;
  }

  get value(): Uint8Array {
    if (!this.raw) void this.sotwEntry;
    return this.raw!;
  }

  get sotwEntry(): Buffer {
    if (!this.sotw) {
      const value = this.messageBytes();
      const entry = exact(sotwResourceEntry(TYPE_URLS[this.kind], value));
      this.sotw = entry;
      // Any.value is the entry's last field.
      this.raw ??= entry.subarray(entry.length - value.length);
    }
    return this.sotw;
  }

  get deltaEntry(): Buffer {
    if (!this.delta) {
      const value = this.messageBytes();
      // The delta entry carries this resource's version, not the bytes' hash.
      const entry = exact(deltaResourceEntry(TYPE_URLS[this.kind], this.name, this.version, value));
      this.delta = entry;
      // Resource{version, resource: Any{…, value}, name}: the value ends where the name starts.
      // (deltaResourceEntry writes the name even when empty: a tag and a zero length.)
      const end = entry.length - (this.name === '' ? 2 : stringFieldLength(this.name));
      this.raw ??= entry.subarray(end - value.length, end);
    }
    return this.delta;
  }

  get isEncoded(): boolean {
    return this.message === undefined;
  }
}

/** An exact-size copy outside the shared pool (a small slice would keep an 8 KiB block alive). */
function exact(bytes: Buffer): Buffer {
  const out = Buffer.allocUnsafeSlow(bytes.length);
  bytes.copy(out);
  return out;
}

/**
 * `message` as a resource whose bytes are made on first use. `json` is its JSON.stringify
 * (the encoder has it already, for change detection).
 */
export function lazyResource(
  kind: ResourceKind,
  name: string,
  message: ResourceMessage,
  json = JSON.stringify(message),
): EncodedResource {
  return new LazyResource(kind, name, lazyVersion(json), message);
}

/** Whether `r` is a per-proxy resource not encoded yet (tests). */
export function isPendingEncode(r: EncodedResource): boolean {
  return r instanceof LazyResource && !r.isEncoded;
}

/** Whether `r` is a per-proxy resource encoded on first use (tests). */
export function isLazyResource(r: EncodedResource): boolean {
  return r instanceof LazyResource;
}
