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

// Where the last varint or string field read ended: the readers below return their value and
// leave the position here, so a thousand entries allocate no [value, position] pairs.
let cursor = 0;

/** A varint at `pos` (at most 5 bytes, below 2^31), or -1; `cursor` is past it. */
function varint(bytes: Buffer, pos: number, end: number): number {
  let value = 0;
  for (let shift = 0; shift < 31; shift += 7) {
    if (pos >= end) return -1;
    const b = bytes[pos++]!;
    value |= (b & 0x7f) << shift;
    if (b < 0x80) {
      cursor = pos;
      return value;
    }
  }
  return -1;
}

/** Whether bytes[from, to) are ASCII (resource names and versions nearly always are). */
function ascii(bytes: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (bytes[i]! >= 0x80) return false;
  return true;
}

/** A string field with `tag` at `pos`, or undefined if it is not one; `cursor` is past it. */
function stringField(bytes: Buffer, pos: number, end: number, tag: number): string | undefined {
  if (pos >= end || bytes[pos] !== tag) return undefined;
  const size = varint(bytes, pos + 1, end);
  if (size < 0) return undefined;
  const from = cursor;
  const to = from + size;
  if (to > end) return undefined;
  // Not valid UTF-8: protobufjs reads it (and refuses it) as it always did. ASCII is checked
  // in place; only other text needs a view for isUtf8.
  if (!ascii(bytes, from, to) && !isUtf8(bytes.subarray(from, to))) return undefined;
  cursor = to;
  return bytes.toString('utf8', from, to);
}

/** One entry exactly as Envoy writes it: key, then value, nothing else. */
function readEntry(bytes: Buffer, from: number, end: number, into: Map<string, string>): boolean {
  const key = stringField(bytes, from, end, KEY_TAG);
  if (key === undefined) return false;
  const value = stringField(bytes, cursor, end, VALUE_TAG);
  if (value === undefined || cursor !== end) return false;
  into.set(key, value);
  return true;
}
