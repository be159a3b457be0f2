// A proxy's own resource (its inbound listener, local app cluster, identity secret, ...),
// versioned at once but protobuf-encoded only when a response first needs its bytes. A sidecar
// that fails over to this replica says what it holds; when that is this version nothing is
// sent, and the encode (protobufjs fromObject/verify/encode: ~10× the JSON and its hash, bench
// --workload failover) would be wasted. Encoded at most once, then shared like any other.
import { TYPE_URLS, encodeMessage, type ResourceKind } from '../protos/envoy.js';
import { deltaResourceEntry, sotwResourceEntry } from '../protos/wire.js';
import type { ResourceMessage } from '../translate/types.js';
import { contentHash, flatAscii, type EncodedResource } from './encoded-resource.js';
import { joinPieces, splitOn, type Pieces } from './shared-segments.js';
import {
  fromSibling,
  remember,
  siblingPieces,
  templateKeyOf,
  type TemplateSource,
} from './sibling-encoding.js';

/**
 * The version of a lazily encoded resource: a hash of its JSON (translators build objects with
 * a fixed key order, so equal content gives equal JSON on every replica running this code).
 * Prefixed so that it never equals a hash of encoded bytes. One flat string: every proxy's own
 * resources keep theirs (and the encoder's cache the same string, as its fingerprint).
 */
export function lazyVersion(json: string): string {
  return flatAscii(`j${contentHash(json)}`);
}

class LazyResource implements EncodedResource, TemplateSource {
  /** Kept until the first encode, then dropped for the bytes. */
  private message: ResourceMessage | undefined;
  /**
   * The entries, each made when a response first needs it: a proxy speaks SotW or delta, so
   * it holds one of the two (W9: ~1.5 KB a proxy for its own resources). Kept as pieces shared
   * with the same resource of other instances (shared-segments.ts: only the instance's name
   * and the version differ), or as a one-byte string (a byte per character) when nothing is
   * shared: a Buffer costs two objects beside its bytes (~185 B). Each use gets a Buffer of
   * them (a copy of ~1 KB, only when a response carries the resource).
   */
  private sotw: Pieces | string | undefined;
  private delta: Pieces | string | undefined;
  /**
   * Until its first encode: the key it shares a template with its siblings by
   * (sibling-encoding.ts). After an encode of its own: its JSON, until it is offered to its
   * siblings as their template.
   */
  private template: string | undefined;

  constructor(
    readonly kind: ResourceKind,
    readonly name: string,
    readonly version: string,
    message: ResourceMessage,
    templateKey: string | undefined,
  ) {
    this.message = message;
    this.template = templateKey;
  }

  /** The message's bytes: read back from an entry (made now if there is none yet). */
  get value(): Uint8Array {
    // DiscoveryResponse.resources = Any{type_url = 1, value = 2}; the delta entry wraps the
    // Any in Resource{version = 1, resource = 2, name = 3}.
    const sotw = this.sotw !== undefined || this.delta === undefined;
    const entry = sotw ? this.sotwEntry : this.deltaEntry;
    let [start, end] = lengthDelimited(entry, 0, entry.length, 2);
    if (!sotw) [start, end] = lengthDelimited(entry, start, end, 2);
    [start, end] = lengthDelimited(entry, start, end, 2);
    return entry.subarray(start, end);
  }

  /** Encoded once (the expensive part), then read back from the entry made first. */
  private messageBytes(): Uint8Array {
    const message = this.message;
    if (!message) return this.value;
    this.message = undefined;
    // Another instance's same resource, with this instance's id (sibling-encoding.ts).
    const key = this.template;
    const copied = key === undefined ? undefined : fromSibling(this.name, key);
    if (copied) {
      this.template = undefined;
      return copied;
    }
    const bytes = encodeMessage(TYPE_URLS[this.kind], message, `"${this.name}"`);
    // The first of its kind (rare): its JSON again, to count the id in it for its siblings.
    if (key !== undefined) this.template = `${key}\u0000${JSON.stringify(message)}`;
    return bytes;
  }

  get sotwEntry(): Buffer {
    if (this.sotw === undefined) {
      const pieces = this.piecesOfSibling('sotw');
      if (pieces) return joinPieces((this.sotw = pieces), this.variables);
      const entry = sotwResourceEntry(TYPE_URLS[this.kind], this.messageBytes());
      this.sotw = this.keep(entry);
      this.offerTemplate();
      return entry;
    }
    return this.bytesOf(this.sotw);
  }

  get deltaEntry(): Buffer {
    if (this.delta === undefined) {
      const pieces = this.piecesOfSibling('delta');
      if (pieces) return joinPieces((this.delta = pieces), this.variables);
      // The delta entry carries this resource's version, not the bytes' hash.
      const entry = deltaResourceEntry(
        TYPE_URLS[this.kind],
        this.name,
        this.version,
        this.messageBytes(),
      );
      this.delta = this.keep(entry);
      this.offerTemplate();
      return entry;
    }
    return this.bytesOf(this.delta);
  }

  /** Its entry as kept, when that is pieces (a template for its siblings, sibling-encoding.ts). */
  keptPieces(which: 'sotw' | 'delta'): Pieces | undefined {
    const kept = which === 'sotw' ? this.sotw : this.delta;
    return typeof kept === 'object' ? kept : undefined;
  }

  /**
   * Before its first encode, a sibling's kept pieces of that entry, shared as they are (the
   * message is not needed then: dropped). Undefined when there is no such sibling.
   */
  private piecesOfSibling(which: 'sotw' | 'delta'): Pieces | undefined {
    const key = this.template;
    if (key === undefined || this.message === undefined) return undefined;
    const pieces = siblingPieces(this.name, this.version, key, which);
    if (pieces) {
      this.message = undefined;
      this.template = undefined;
    }
    return pieces;
  }

  /** What differs between instances: the name's instance part ("inbound|web-1"), the version. */
  private get variables(): readonly string[] {
    const bar = this.name.indexOf('|');
    return [bar < 0 ? this.name : this.name.slice(bar + 1), this.version];
  }

  private keep(entry: Buffer): Pieces | string {
    return splitOn(entry, this.variables) ?? entry.toString('latin1');
  }

  /** Offers it to its siblings as their template, once it has an entry to read bytes from. */
  private offerTemplate(): void {
    // Before its first encode the field holds the bare key, after a copy nothing.
    const pending = this.message === undefined ? this.template : undefined;
    if (pending === undefined) return;
    this.template = undefined;
    const cut = pending.indexOf('\u0000');
    remember(this.name, pending.slice(0, cut), pending.slice(cut + 1), this);
  }

  private bytesOf(kept: Pieces | string): Buffer {
    return typeof kept === 'string'
      ? Buffer.from(kept, 'latin1')
      : joinPieces(kept, this.variables);
  }

  get isEncoded(): boolean {
    return this.message === undefined;
  }
}

/**
 * Where the content of length-delimited field `field` (the first of that number) lies in
 * bytes[from, to): [start, end). Our entries use field numbers under 16: one-byte tags.
 */
function lengthDelimited(
  bytes: Uint8Array,
  from: number,
  to: number,
  field: number,
): [number, number] {
  let at = from;
  while (at < to) {
    const tag = bytes[at++]!;
    let length = 0;
    for (let shift = 0; ; shift += 7) {
      const b = bytes[at++]!;
      length += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) break;
    }
    if (tag === ((field << 3) | 2)) return [at, at + length];
    at += length;
  }
  throw new Error(`encoded entry: no field ${field}`);
}

/**
 * `message` as a resource whose bytes are made on first use. `json` is its JSON and `version`
 * lazyVersion of it (the encoder has both already, the version as its fingerprint: one string
 * for both); the sibling template key is made from the same JSON.
 */
export function lazyResource(
  kind: ResourceKind,
  name: string,
  message: ResourceMessage,
  json = JSON.stringify(message),
  version = lazyVersion(json),
): EncodedResource {
  return new LazyResource(kind, name, version, message, templateKeyOf(kind, name, json));
}

/** Whether `r` is a per-proxy resource not encoded yet (tests). */
export function isPendingEncode(r: EncodedResource): boolean {
  return r instanceof LazyResource && !r.isEncoded;
}

/** Whether `r` is a per-proxy resource encoded on first use (tests). */
export function isLazyResource(r: EncodedResource): boolean {
  return r instanceof LazyResource;
}
