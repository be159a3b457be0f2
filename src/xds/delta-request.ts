// Decoding DeltaDiscoveryRequests, with a fast path for initial_resource_versions. A sidecar
// that reconnects (to another replica after a failover) lists every resource it holds: in a
// 1,000-service mesh a thousand clusters and a thousand assignments. protobufjs's map decoding
// and toObject were most of what a replica spent taking such a sidecar over (bench --workload
// failover --profile). Entries written the way Envoy writes them (key, then value, valid
// UTF-8) are read here straight into a Map; every other field goes through protobufjs as
// before, and a request with any other kind of entry is decoded by protobufjs whole.
import { isUtf8 } from 'node:buffer';
import protobuf from 'protobufjs';
import { JSON_OPTIONS, messageType } from '../protos/envoy.js';
import type { DeltaDiscoveryRequest } from './message-types.js';

/** A decoded request; `initialVersions` holds initial_resource_versions when the fast path read them. */
export type DecodedDeltaRequest = DeltaDiscoveryRequest & {
  initialVersions?: Map<string, string>;
};

const type = messageType('envoy.service.discovery.v3.DeltaDiscoveryRequest');

// Field numbers: envoy/service/discovery/v3/discovery.proto, DeltaDiscoveryRequest.
const INITIAL_RESOURCE_VERSIONS = 5;
const LENGTH_DELIMITED = 2;
const ENTRY_TAG = (INITIAL_RESOURCE_VERSIONS << 3) | LENGTH_DELIMITED;
/** A map entry: key = 1, value = 2, both strings. */
const KEY_TAG = (1 << 3) | LENGTH_DELIMITED;
const VALUE_TAG = (2 << 3) | LENGTH_DELIMITED;
const START_GROUP = 3;
const END_GROUP = 4;

/** protobufjs, as before: the whole request. */
function decodeWhole(bytes: Buffer): DecodedDeltaRequest {
  return type.toObject(type.decode(bytes), JSON_OPTIONS) as DecodedDeltaRequest;
}

export function decodeDeltaRequest(bytes: Buffer): DecodedDeltaRequest {
  // Most requests (ACKs) carry no entries at all.
  if (bytes.indexOf(ENTRY_TAG) < 0) return decodeWhole(bytes);
  const versions = new Map<string, string>();
  const rest: Buffer[] = [];
  const reader = protobuf.Reader.create(bytes);
  try {
    while (reader.pos < reader.len) {
      const start = reader.pos;
      const tag = reader.uint32();
      if (tag === ENTRY_TAG) {
        const size = reader.uint32();
        const end = reader.pos + size;
        if (end > reader.len || !readEntry(bytes, reader.pos, end, versions)) {
          return decodeWhole(bytes);
        }
        reader.pos = end;
        continue;
      }
      const wire = tag & 7;
      // Field 5 written another way, or groups: protobufjs decides what they mean.
      if (tag >>> 3 === INITIAL_RESOURCE_VERSIONS || wire === START_GROUP || wire === END_GROUP) {
        return decodeWhole(bytes);
      }
      reader.skipType(wire);
      rest.push(bytes.subarray(start, reader.pos));
    }
  } catch {
    return decodeWhole(bytes); // malformed: protobufjs's own error
  }
  const req = decodeWhole(rest.length === 1 ? rest[0]! : Buffer.concat(rest));
  if (versions.size > 0) req.initialVersions = versions;
  return req;
}

/** A varint at `pos` (at most 5 bytes, below 2^31): [value, next position], or undefined. */
function varint(bytes: Buffer, pos: number, end: number): [number, number] | undefined {
  let value = 0;
  for (let shift = 0; shift < 31; shift += 7) {
    if (pos >= end) return undefined;
    const b = bytes[pos++]!;
    value |= (b & 0x7f) << shift;
    if (b < 0x80) return [value, pos];
  }
  return undefined;
}

/** A string field with `tag` at `pos`: [text, next position], or undefined if it is not one. */
function stringField(
  bytes: Buffer,
  pos: number,
  end: number,
  tag: number,
): [string, number] | undefined {
  if (pos >= end || bytes[pos] !== tag) return undefined;
  const len = varint(bytes, pos + 1, end);
  if (!len) return undefined;
  const [size, from] = len;
  if (from + size > end) return undefined;
  const raw = bytes.subarray(from, from + size);
  // Not valid UTF-8: protobufjs reads it (and refuses it) as it always did.
  if (!isUtf8(raw)) return undefined;
  return [raw.toString('utf8'), from + size];
}

/** One entry exactly as Envoy writes it: key, then value, nothing else. */
function readEntry(bytes: Buffer, from: number, end: number, into: Map<string, string>): boolean {
  const key = stringField(bytes, from, end, KEY_TAG);
  if (!key) return false;
  const value = stringField(bytes, key[1], end, VALUE_TAG);
  if (!value || value[1] !== end) return false;
  into.set(key[0], value[0]);
  return true;
}
