// A proxy's own resource (its inbound listener, local app cluster, identity secret, ...),
// versioned at once but protobuf-encoded only when a response first needs its bytes. A sidecar
// that fails over to this replica says what it holds; when that is this version nothing is
// sent, and the encode (protobufjs fromObject/verify/encode: ~10× the JSON and its hash, bench
// --workload failover) would be wasted. Encoded at most once, then shared like any other.
import type { ResourceKind } from '../protos/envoy.js';
import type { ResourceMessage } from '../translate/types.js';
import { contentHash, encodeResource, type EncodedResource } from './encoded-resource.js';

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
  private encoded: EncodedResource | undefined;

  constructor(
    readonly kind: ResourceKind,
    readonly name: string,
    readonly version: string,
    message: ResourceMessage,
  ) {
    this.message = message;
  }

  private bytes(): EncodedResource {
    if (!this.encoded) {
      // The delta entry carries this resource's version, not the bytes' hash.
      this.encoded = encodeResource(this.kind, this.name, this.message!, this.version);
      this.message = undefined;
    }
    return this.encoded;
  }

  get value(): Uint8Array {
    return this.bytes().value;
  }

  get sotwEntry(): Buffer {
    return this.bytes().sotwEntry;
  }

  get deltaEntry(): Buffer {
    return this.bytes().deltaEntry;
  }

  get isEncoded(): boolean {
    return this.encoded !== undefined;
  }
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
