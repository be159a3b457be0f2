// Decoding SotW DiscoveryRequests without decoding their resource names every time. Envoy
// repeats its whole subscription (a thousand EDS names in a large mesh) in every ACK; the
// server only needs to know whether it changed. So the names are kept as their raw bytes
// (compared with memcmp, see requested-names.ts) and decoded only when asked for.
import protobuf from 'protobufjs';
import { JSON_OPTIONS, RESOURCE_KINDS, TYPE_URLS, messageType } from '../protos/envoy.js';
import type { DiscoveryRequest } from './message-types.js';

export interface SotwRequest extends DiscoveryRequest {
  /**
   * The resource_names fields exactly as encoded (empty when there are none): equal lists in
   * equal order have equal bytes. A view into the request, valid while it is handled.
   */
  readonly resourceNamesBytes: Buffer;
}

const nodeType = messageType('envoy.config.core.v3.Node');
const statusType = messageType('google.rpc.Status');

// Field numbers: envoy/service/discovery/v3/discovery.proto, DiscoveryRequest.
const VERSION_INFO = 1;
const NODE = 2;
const RESOURCE_NAMES = 3;
const TYPE_URL = 4;
const RESPONSE_NONCE = 5;
const ERROR_DETAIL = 6;

/** type_url fields as Envoy encodes them (tag, length, text), to find the end of the names. */
const TYPE_URL_FIELDS = RESOURCE_KINDS.map((kind) => {
  const w = protobuf.Writer.create();
  w.uint32((TYPE_URL << 3) | 2).string(TYPE_URLS[kind]);
  return Buffer.from(w.finish());
});

const NO_BYTES = Buffer.alloc(0);
const TYPE_URL_TEXT = Buffer.from('type.googleapis.com/');

/**
 * Envoy writes fields in number order, so the names (3) run up to the type_url (4). Finding
 * that with a native search skips walking a thousand names in JavaScript; the rest of the
 * message is then parsed normally from there, and anything unexpected falls back to the walk.
 */
function endOfNames(bytes: Buffer, from: number): number {
  // Only the nonce and error detail follow the type_url: one search from the end finds it.
  const at = bytes.lastIndexOf(TYPE_URL_TEXT) - 2; // tag and one-byte length come first
  if (at > from) {
    for (const field of TYPE_URL_FIELDS) {
      const end = at + field.length;
      if (end <= bytes.length && field.compare(bytes, at, end) === 0) return at;
    }
  }
  // The last type_url field in the message is the real one: names come before it.
  let end = -1;
  for (const field of TYPE_URL_FIELDS) end = Math.max(end, bytes.lastIndexOf(field));
  return end > from ? end : -1;
}

export function decodeSotwRequest(bytes: Buffer): SotwRequest {
  return decodeFast(bytes) ?? decodeWalking(bytes);
}

/** The common shape: [version][node][names...][type_url][nonce][error]. */
function decodeFast(bytes: Buffer): SotwRequest | undefined {
  const reader = protobuf.Reader.create(bytes);
  const req: Record<string, unknown> = {};
  let namesStart = -1;
  let namesEnd = -1;
  try {
    while (reader.pos < reader.len) {
      const tagStart = reader.pos;
      const tag = reader.uint32();
      const field = tag >>> 3;
      if (field === RESOURCE_NAMES) {
        if (namesStart >= 0) return undefined; // names after other fields: walk instead
        namesStart = tagStart;
        namesEnd = endOfNames(bytes, tagStart);
        if (namesEnd < 0) return undefined;
        reader.pos = namesEnd;
        continue;
      }
      readField(reader, field, tag, req);
    }
  } catch {
    return undefined;
  }
  if (namesStart < 0) return withNames(req, bytes, [], NO_BYTES);
  const region = bytes.subarray(namesStart, namesEnd);
  return withNames(req, bytes, undefined, region, region);
}

/** Reads one non-name field into `req` (unknown fields are skipped). */
function readField(
  reader: protobuf.Reader,
  field: number,
  tag: number,
  req: Record<string, unknown>,
): void {
  switch (field) {
    case VERSION_INFO:
      req.versionInfo = reader.string();
      return;
    case NODE:
      req.node = nodeType.toObject(nodeType.decode(reader, reader.uint32()), JSON_OPTIONS);
      return;
    case TYPE_URL:
      req.typeUrl = reader.string();
      return;
    case RESPONSE_NONCE:
      req.responseNonce = reader.string();
      return;
    case ERROR_DETAIL:
      req.errorDetail = statusType.toObject(
        statusType.decode(reader, reader.uint32()),
        JSON_OPTIONS,
      );
      return;
    default:
      reader.skipType(tag & 7);
  }
}

function namesIn(region: Buffer): string[] {
  const reader = protobuf.Reader.create(region);
  const names: string[] = [];
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    if (tag >>> 3 === RESOURCE_NAMES) names.push(reader.string());
    else reader.skipType(tag & 7);
  }
  return names;
}

function withNames(
  req: Record<string, unknown>,
  bytes: Buffer,
  ranges: Array<[number, number]> | undefined,
  namesBytes: Buffer,
  region?: Buffer,
): SotwRequest {
  let decoded: string[] | undefined;
  const decode = (): string[] =>
    region
      ? namesIn(region)
      : (ranges ?? []).map(([start, end]) => bytes.toString('utf8', start, end));
  return Object.defineProperties(req as unknown as SotwRequest, {
    resourceNamesBytes: { value: namesBytes, enumerable: false },
    resourceNames: { enumerable: true, get: () => (decoded ??= decode()) },
  });
}

/** Any field order: every field visited, names located one by one. */
function decodeWalking(bytes: Buffer): SotwRequest {
  const reader = protobuf.Reader.create(bytes);
  const req: Record<string, unknown> = {};
  const names: Array<[number, number]> = [];
  const runs: Buffer[] = [];
  let runStart = -1;
  let runEnd = -1;
  while (reader.pos < reader.len) {
    const tagStart = reader.pos;
    const tag = reader.uint32();
    if (tag >>> 3 !== RESOURCE_NAMES) {
      readField(reader, tag >>> 3, tag, req);
      continue;
    }
    const length = reader.uint32();
    names.push([reader.pos, reader.pos + length]);
    reader.skip(length);
    // Adjacent name fields are kept as one run of bytes.
    if (tagStart !== runEnd) {
      if (runStart >= 0) runs.push(bytes.subarray(runStart, runEnd));
      runStart = tagStart;
    }
    runEnd = reader.pos;
  }
  if (runStart >= 0) runs.push(bytes.subarray(runStart, runEnd));
  return withNames(req, bytes, names, runs.length === 1 ? runs[0]! : Buffer.concat(runs));
}
