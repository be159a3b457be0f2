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

function stringFields(fields: ReadonlyArray<readonly [number, string]>): Buffer {
  const w = protobuf.Writer.create();
  for (const [field, value] of fields) if (value !== '') w.uint32(tag(field)).string(value);
  return Buffer.from(w.finish());
}

/** DiscoveryResponse{version_info=1, resources=2 (pre-encoded), type_url=4, nonce=5}. */
export function discoveryResponse(
  versionInfo: string,
  typeUrl: string,
  nonce: string,
  resourceEntries: readonly Buffer[],
): Buffer {
  return Buffer.concat([
    stringFields([[1, versionInfo]]),
    ...resourceEntries,
    stringFields([
      [4, typeUrl],
      [5, nonce],
    ]),
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
  const w = protobuf.Writer.create();
  for (const name of removed) w.uint32(tag(6)).string(name);
  return Buffer.concat([
    stringFields([[1, systemVersionInfo]]),
    ...resourceEntries,
    stringFields([
      [4, typeUrl],
      [5, nonce],
    ]),
    Buffer.from(w.finish()),
  ]);
}
