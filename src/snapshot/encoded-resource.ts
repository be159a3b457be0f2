// A resource in its final, shareable form: encoded once, versioned by content, with the bytes
// every stream that sends it will reuse.
import { createHash } from 'node:crypto';
import type { ResourceKind } from '../protos/envoy.js';
import { TYPE_URLS, encodeMessage } from '../protos/envoy.js';
import { deltaResourceEntry, sotwResourceEntry } from '../protos/wire.js';

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

export function contentHash(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('base64url').slice(0, 16);
}

export function encodeResource(kind: ResourceKind, name: string, message: object): EncodedResource {
  const typeUrl = TYPE_URLS[kind];
  const value = encodeMessage(typeUrl, message, `"${name}"`);
  const version = contentHash(value);
  return {
    kind,
    name,
    version,
    value,
    sotwEntry: sotwResourceEntry(typeUrl, value),
    deltaEntry: deltaResourceEntry(typeUrl, name, version, value),
  };
}
