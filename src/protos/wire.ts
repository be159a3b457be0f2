// Hand-framed xDS envelopes. Resources are encoded once into their final wire form
// (a DiscoveryResponse.resources / DeltaDiscoveryResponse.resources element); a response is
// those pre-encoded bytes concatenated with a few small fields. Protobuf allows fields in any
// order and repeated fields spread over the message, which is what makes this valid.
// Field numbers: envoy/service/discovery/v3/discovery.proto.
import protobuf from 'protobufjs';

const LEN = 2; // wire type: length-delimited

function tag(field: number): number {
  return (field << 3) | LEN;
}

/** google.protobuf.Any { type_url = 1; value = 2; } wrapped as length-delimited `field`. */
function writeAny(w: protobuf.Writer, field: number, typeUrl: string, value: Uint8Array): void {
  w.uint32(tag(field)).fork();
  w.uint32(tag(1)).string(typeUrl);
  w.uint32(tag(2)).bytes(value);
  w.ldelim();
}

/** One element of DiscoveryResponse.resources (field 2, Any). */
export function sotwResourceEntry(typeUrl: string, value: Uint8Array): Buffer {
  const w = protobuf.Writer.create();
  writeAny(w, 2, typeUrl, value);
  return Buffer.from(w.finish());
}

/** One element of DeltaDiscoveryResponse.resources (field 2, Resource{version=1, resource=2, name=3}). */
export function deltaResourceEntry(
  typeUrl: string,
  name: string,
  version: string,
  value: Uint8Array,
): Buffer {
  const w = protobuf.Writer.create();
  w.uint32(tag(2)).fork();
  w.uint32(tag(1)).string(version);
  writeAny(w, 2, typeUrl, value);
  w.uint32(tag(3)).string(name);
  w.ldelim();
  return Buffer.from(w.finish());
}

/** Bytes of a length-delimited string field (empty strings are omitted, as proto3 does). */
export function stringFieldLength(value: string | undefined): number {
  if (!value) return 0;
  const n = Buffer.byteLength(value);
  return 1 + varintLength(n) + n;
}

/** Bytes a varint of `n` takes. */
export function varintLength(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n >>>= 7;
    len++;
  }
  return len;
}

/** Writes `n` as a varint at `at`; returns the end. */
export function writeVarint(out: Uint8Array, at: number, n: number): number {
  while (n >= 0x80) {
    out[at++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  out[at++] = n;
  return at;
}

/** Writes a string field at `at` (nothing for an empty one); returns the end. */
export function writeStringField(
  out: Buffer,
  at: number,
  field: number,
  value: string | undefined,
): number {
  if (!value) return at;
  out[at++] = tag(field);
  at = writeVarint(out, at, Buffer.byteLength(value));
  return at + out.write(value, at);
}

/**
 * A message made of string fields and pre-encoded parts, written into one buffer: the
 * response to a thousand proxies is then one allocation and one copy each, not a chain of
 * concatenations.
 */
function assemble(
  head: ReadonlyArray<readonly [number, string]>,
  parts: readonly Buffer[],
  tail: ReadonlyArray<readonly [number, string]>,
): Buffer {
  let size = 0;
  for (const [, value] of head) size += stringFieldLength(value);
  for (const part of parts) size += part.length;
  for (const [, value] of tail) size += stringFieldLength(value);
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const [field, value] of head) at = writeStringField(out, at, field, value);
  for (const part of parts) at += part.copy(out, at);
  for (const [field, value] of tail) at = writeStringField(out, at, field, value);
  return out;
}

/** DiscoveryResponse{version_info=1, resources=2 (pre-encoded), type_url=4, nonce=5}. */
export function discoveryResponse(
  versionInfo: string,
  typeUrl: string,
  nonce: string,
  resourceEntries: readonly Buffer[],
): Buffer {
  return assemble([[1, versionInfo]], resourceEntries, [
    [4, typeUrl],
    [5, nonce],
  ]);
}

/** DeltaDiscoveryResponse{system_version_info=1, resources=2, type_url=4, nonce=5, removed_resources=6}. */
export function deltaDiscoveryResponse(
  systemVersionInfo: string,
  typeUrl: string,
  nonce: string,
  resourceEntries: readonly Buffer[],
  removed: readonly string[],
): Buffer {
  return assemble([[1, systemVersionInfo]], resourceEntries, [
    [4, typeUrl],
    [5, nonce],
    ...removed.map((name) => [6, name] as const),
  ]);
}
