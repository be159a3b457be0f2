// A resource in its final, shareable form: encoded once, versioned by content, with the bytes
// every stream that sends it will reuse.
import { createHash, hash } from 'node:crypto';
import type { ResourceKind } from '../protos/envoy.js';
import { TYPE_URLS, encodeMessage } from '../protos/envoy.js';
import { deltaResourceEntry, sotwResourceEntry } from '../protos/wire.js';
import { eachPiece, joinRouteParts, routeParts, type RouteParts } from './route-assembly.js';

export interface EncodedResource {
  readonly kind: ResourceKind;
  readonly name: string;
  /** Hash of the encoded bytes: identical content gives an identical version on any replica. */
  readonly version: string;
  /** The encoded message (Any.value). */
  readonly value: Uint8Array;
  /** Pre-framed DiscoveryResponse.resources element. */
  readonly sotwEntry: Buffer;
  /** Pre-framed DeltaDiscoveryResponse.resources element. */
  readonly deltaEntry: Buffer;
}

/**
 * The first 16 base64url characters of the SHA-256 (12 bytes), as one flat string: a slice of
 * the whole digest's text would keep the 43-character parent alive too (~100 B instead of
 * ~32 B for each version a proxy's state holds; bench --heap-snapshot, W9).
 */
export function contentHash(bytes: Uint8Array | string): string {
  return hash('sha256', bytes, 'buffer').toString('base64url', 0, 12);
}

/**
 * `text` as one sequential string: a concatenation of 13 characters or more is a tree of
 * parts in V8 (a cons string, ~32 B per join on top of the parts), which a string kept per
 * proxy (a version) should not be. Only for ASCII text.
 */
export function flatAscii(text: string): string {
  return Buffer.from(text, 'latin1').toString('latin1');
}

/** `knownVersion` replaces the bytes' hash (lazy-resource.ts versions by JSON instead). */
export function encodeResource(
  kind: ResourceKind,
  name: string,
  message: object,
  knownVersion?: string,
): EncodedResource {
  if (kind === 'routes') {
    // Route configurations from their virtual hosts' bytes (route-assembly.ts: one per scope).
    const parts = routeParts(message, `"${name}"`);
    if (parts) return new AssembledRoutes(name, parts, knownVersion);
  }
  return resourceOf(kind, name, encodeMessage(TYPE_URLS[kind], message, `"${name}"`), knownVersion);
}

/** A resource of these encoded bytes. */
export function resourceOf(
  kind: ResourceKind,
  name: string,
  encoded: Uint8Array,
  knownVersion?: string,
): EncodedResource {
  const version = knownVersion ?? contentHash(encoded);
  return { kind, name, version, ...entriesOf(kind, name, version, encoded) };
}

type Entries = Pick<EncodedResource, 'value' | 'sotwEntry' | 'deltaEntry'>;

function entriesOf(
  kind: ResourceKind,
  name: string,
  version: string,
  encoded: Uint8Array,
): Entries {
  const typeUrl = TYPE_URLS[kind];
  const sotw = sotwResourceEntry(typeUrl, encoded);
  const delta = deltaResourceEntry(typeUrl, name, version, encoded);
  // Kept as long as the resource is served, so not in slices of Node's shared 8 KiB Buffer
  // pool: one small resource would keep a whole pool block alive (measured: ~13 KB per proxy
  // for its own two resources). One exact-size allocation holds both entries; the message
  // itself is the tail of the SotW entry (Any.value is its last field).
  const block = Buffer.allocUnsafeSlow(sotw.length + delta.length);
  sotw.copy(block, 0);
  delta.copy(block, sotw.length);
  const sotwEntry = block.subarray(0, sotw.length);
  return {
    value: sotwEntry.subarray(sotw.length - encoded.length),
    sotwEntry,
    deltaEntry: block.subarray(sotw.length),
  };
}

/**
 * A route configuration assembled from its virtual hosts' bytes, versioned by the hash of
 * those bytes (the same as of the joined message) and joined only when a response first needs
 * them: a VHDS sidecar (snapshot/vhds.ts) is sent its hosts, never the joined configuration,
 * so a router edit at a mesh of VHDS sidecars joins and copies none (hundreds of KB a scope).
 */
class AssembledRoutes implements EncodedResource {
  readonly kind = 'routes' as const;
  readonly version: string;
  /** The configuration's hosts, as translated (snapshot/vhds.ts serves them one by one). */
  readonly hosts: readonly object[];
  private parts: RouteParts | undefined;
  private entries: Entries | undefined;

  constructor(
    readonly name: string,
    parts: RouteParts,
    knownVersion: string | undefined,
  ) {
    this.parts = parts;
    this.hosts = parts.hosts;
    if (knownVersion !== undefined) this.version = knownVersion;
    else {
      const digest = createHash('sha256');
      eachPiece(parts, (piece) => digest.update(piece));
      this.version = digest.digest().toString('base64url', 0, 12); // = contentHash(joined)
    }
  }

  private joined(): Entries {
    if (!this.entries) {
      this.entries = entriesOf('routes', this.name, this.version, joinRouteParts(this.parts!));
      this.parts = undefined;
    }
    return this.entries;
  }

  get value(): Uint8Array {
    return this.joined().value;
  }

  get sotwEntry(): Buffer {
    return this.joined().sotwEntry;
  }

  get deltaEntry(): Buffer {
    return this.joined().deltaEntry;
  }
}

/** The virtual hosts a route configuration was assembled from (undefined: none, or not so). */
export function virtualHostsOf(resource: EncodedResource): readonly object[] | undefined {
  return resource instanceof AssembledRoutes ? resource.hosts : undefined;
}
