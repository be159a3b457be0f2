// Decoding DeltaDiscoveryRequests, with a fast path for initial_resource_versions. A sidecar
// that reconnects (to another replica after a failover) lists every resource it holds: in a
// 1,000-service mesh a thousand clusters and a thousand assignments. protobufjs's map decoding
// and toObject were most of what a replica spent taking such a sidecar over (bench --workload
// failover --profile), and then a Map of those strings was. Entries written the way Envoy
// writes them (key, then value, valid UTF-8) are checked and digested in one pass over the
// bytes (HeldVersions): the stream compares the digest with what it would send, and only when
// they differ are the entries read into a Map. Every other field goes through protobufjs as
// before, and a request with any other kind of entry is decoded by protobufjs whole.
import { isUtf8 } from 'node:buffer';
import protobuf from 'protobufjs';
import { JSON_OPTIONS, messageType } from '../protos/envoy.js';
import { DigestSum, type VersionDigest } from '../snapshot/version-digest.js';
import type { DeltaDiscoveryRequest } from './message-types.js';

/** A decoded request; `held` holds initial_resource_versions when the fast path read them. */
export type DecodedDeltaRequest = DeltaDiscoveryRequest & {
  held?: HeldVersions;
};

/**
 * initial_resource_versions, checked and digested but not read: the request's bytes and
 * where its entries are. `toMap()` reads them (a repeated name: the last wins, as protobuf).
 */
export class HeldVersions {
  constructor(
    private readonly bytes: Buffer,
    /** Start and end of each entry's key and value: four numbers per entry. */
    private readonly bounds: Uint32Array,
    /** Of the entries as listed (a repeated name counts each time). */
    readonly digest: VersionDigest,
  ) {}

  /** Entries listed (a repeated name counts each time). */
  get count(): number {
    return this.digest.count;
  }

  toMap(): Map<string, string> {
    const map = new Map<string, string>();
    const { bytes, bounds } = this;
    for (let i = 0; i < bounds.length; i += 4) {
      map.set(
        bytes.toString('utf8', bounds[i], bounds[i + 1]),
        bytes.toString('utf8', bounds[i + 2], bounds[i + 3]),
      );
    }
    return map;
  }
}

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
  const entries = new Entries();
  const rest: Buffer[] = [];
  const reader = protobuf.Reader.create(bytes);
  try {
    while (reader.pos < reader.len) {
      const start = reader.pos;
      const tag = reader.uint32();
      if (tag === ENTRY_TAG) {
        const size = reader.uint32();
        const end = reader.pos + size;
        if (end > reader.len || !entries.read(bytes, reader.pos, end)) {
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
  if (entries.count > 0) req.held = entries.held(bytes);
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

/** A string field with `tag` at `pos` (its start), or -1 if it is not one; `cursor` is past it. */
function stringField(bytes: Buffer, pos: number, end: number, tag: number): number {
  if (pos >= end || bytes[pos] !== tag) return -1;
  const size = varint(bytes, pos + 1, end);
  if (size < 0) return -1;
  const from = cursor;
  if (from + size > end) return -1;
  cursor = from + size;
  return from;
}

/** The entries read so far: where they are, and their digest. */
class Entries {
  private bounds = new Uint32Array(64);
  private length = 0;
  private readonly sum = new DigestSum();

  get count(): number {
    return this.length / 4;
  }

  /** One entry exactly as Envoy writes it (key, then value, nothing else), or false. */
  read(bytes: Buffer, from: number, end: number): boolean {
    const keyFrom = stringField(bytes, from, end, KEY_TAG);
    if (keyFrom < 0) return false;
    const keyTo = cursor;
    const valueFrom = stringField(bytes, keyTo, end, VALUE_TAG);
    if (valueFrom < 0 || cursor !== end) return false;
    if (this.length + 4 > this.bounds.length) {
      const grown = new Uint32Array(this.bounds.length * 2);
      grown.set(this.bounds);
      this.bounds = grown;
    }
    // The digest's loop tells ASCII (resource names and versions nearly always are); other
    // text must be UTF-8, or protobufjs reads (and refuses) the request as it always did.
    if (
      !this.sum.addBytes(bytes, keyFrom, keyTo, valueFrom, end) &&
      !(isUtf8(bytes.subarray(keyFrom, keyTo)) && isUtf8(bytes.subarray(valueFrom, end)))
    ) {
      return false;
    }
    const b = this.bounds;
    b[this.length++] = keyFrom;
    b[this.length++] = keyTo;
    b[this.length++] = valueFrom;
    b[this.length++] = end;
    return true;
  }

  held(bytes: Buffer): HeldVersions {
    return new HeldVersions(bytes, this.bounds.subarray(0, this.length), this.sum.digest);
  }
}
