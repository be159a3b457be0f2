// Decoding SotW DiscoveryRequests without decoding their resource names every time. Envoy
// repeats its whole subscription (a thousand EDS names in a large mesh) in every ACK; the
// server only needs to know whether it changed. So the names are kept as their raw bytes
// (compared with memcmp, see requested-names.ts) and decoded only when asked for.
//
// Everything else reads exactly as protobufjs's generated decoder does (pinned 8.8.1), which
// test/xds/fuzz-decode.test.ts checks on 10,000 generated and mutated requests: a field with
// another wire type than its own is skipped as unknown, strings must be valid UTF-8, an empty
// string clears the field, a message field given twice is merged, unknown fields (and groups)
// are skipped with protobufjs's own checks.
import protobuf from 'protobufjs';
import { JSON_OPTIONS, messageType } from '../protos/envoy.js';
import type { DiscoveryRequest, NodeMessage, StatusMessage } from './message-types.js';

export interface SotwRequest extends DiscoveryRequest {
  /**
   * The resource_names fields exactly as encoded (empty when there are none): equal lists in
   * equal order have equal bytes. A view into the request, valid while it is handled.
   */
  readonly resourceNamesBytes: Buffer;
}

const nodeType = messageType('envoy.config.core.v3.Node');
const statusType = messageType('google.rpc.Status');
const locatorType = messageType('envoy.service.discovery.v3.ResourceLocator');

// Field numbers: envoy/service/discovery/v3/discovery.proto, DiscoveryRequest.
const VERSION_INFO = 1;
const NODE = 2;
const RESOURCE_NAMES = 3;
const TYPE_URL = 4;
const RESPONSE_NONCE = 5;
const ERROR_DETAIL = 6;
/** Not used by the server (xDS-TP), but protobufjs checks it, so it is checked here too. */
const RESOURCE_LOCATORS = 7;
const LENGTH_DELIMITED = 2;
/** resource_names' tag as Envoy writes it: field 3, length-delimited, in one byte. */
const NAME_TAG = (RESOURCE_NAMES << 3) | LENGTH_DELIMITED;

const NO_BYTES = Buffer.alloc(0);

/** protobufjs's skipType takes the depth and field number too (for groups); its types do not say so. */
type Skipper = (wireType: number, depth: number, fieldNumber: number) => protobuf.Reader;

/**
 * One class for every decoded request (~80,000 in a 10,000-sidecar storm, bench W9): fields
 * in a fixed shape, the names decoded on first use by a getter on the prototype. A plain
 * object given that getter with Object.defineProperties cost a closure, two descriptor
 * objects and a shape transition per request.
 */
class DecodedSotwRequest implements SotwRequest {
  versionInfo: string | undefined = undefined;
  node: NodeMessage | undefined = undefined;
  typeUrl: string | undefined = undefined;
  responseNonce: string | undefined = undefined;
  errorDetail: StatusMessage | undefined = undefined;
  resourceNamesBytes: Buffer = NO_BYTES;
  private decodedNames: string[] | undefined = undefined;

  get resourceNames(): string[] {
    return (this.decodedNames ??= namesIn(this.resourceNamesBytes));
  }
}

export function decodeSotwRequest(bytes: Buffer): SotwRequest {
  const reader = protobuf.Reader.create(bytes);
  const skip = reader.skipType as unknown as Skipper;
  const req = new DecodedSotwRequest();
  // Most requests (ACKs) carry one run of names and no node or error: no arrays for those.
  let nodes: Buffer[] | undefined;
  let errors: Buffer[] | undefined;
  // The first of each as its check decoded it: given once (always, from Envoy), it is not
  // decoded a second time for its object.
  let node: protobuf.Message | undefined;
  let error: protobuf.Message | undefined;
  let run: Buffer | undefined; // the first run of names
  let runs: Buffer[] | undefined; // every run, once there is a second
  while (reader.pos < reader.len) {
    const start = reader.pos;
    if (bytes[start] === NAME_TAG) {
      // A run of names as Envoy writes them: only their tags and lengths are looked at (a
      // thousand names in ~3 µs); the names are decoded, and checked, when asked for.
      const end = endOfNames(bytes, start);
      if (end > start) {
        const found = bytes.subarray(start, end);
        if (run === undefined) run = found;
        else (runs ??= [run]).push(found);
        reader.pos = end;
        continue;
      }
    }
    const tag = reader.tag();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field < VERSION_INFO || field > RESOURCE_LOCATORS || wire !== LENGTH_DELIMITED) {
      skip.call(reader, wire, 0, field);
      continue;
    }
    switch (field) {
      case RESOURCE_NAMES: {
        // One written some other way (an over-long tag, a length of 4 bytes or more).
        reader.skip(reader.size());
        const found = bytes.subarray(start, reader.pos);
        if (run === undefined) run = found;
        else (runs ??= [run]).push(found);
        break;
      }
      case NODE: {
        const decoded = message(reader, bytes, nodeType, (nodes ??= []));
        node ??= decoded;
        break;
      }
      case ERROR_DETAIL: {
        const decoded = message(reader, bytes, statusType, (errors ??= []));
        error ??= decoded;
        break;
      }
      case RESOURCE_LOCATORS:
        message(reader, bytes, locatorType, undefined);
        break;
      // As protobufjs: a string field's value, where a later empty one clears an earlier one.
      case VERSION_INFO:
        req.versionInfo = reader.stringVerify() || undefined;
        break;
      case TYPE_URL:
        req.typeUrl = reader.stringVerify() || undefined;
        break;
      case RESPONSE_NONCE:
        req.responseNonce = reader.stringVerify() || undefined;
        break;
    }
  }
  if (nodes) req.node = toObject(nodeType, nodes, node!) as NodeMessage;
  if (errors) req.errorDetail = toObject(statusType, errors, error!) as StatusMessage;
  if (run) req.resourceNamesBytes = runs ? Buffer.concat(runs) : run;
  return req;
}

/**
 * Where a run of names starting at `from` ends: after the last consecutive one-byte name tag
 * with a length of at most three bytes that fits in the message (anything else is read field
 * by field).
 */
function endOfNames(bytes: Buffer, from: number): number {
  const len = bytes.length;
  let pos = from;
  while (pos < len && bytes[pos] === NAME_TAG) {
    let p = pos + 1;
    let b = bytes[p++] ?? 0x80;
    let size = b & 0x7f;
    if (b >= 0x80) {
      b = bytes[p++] ?? 0x80;
      size |= (b & 0x7f) << 7;
      if (b >= 0x80) {
        b = bytes[p++] ?? 0x80;
        size |= (b & 0x7f) << 14;
        if (b >= 0x80) break;
      }
    }
    if (p + size > len) break;
    pos = p + size;
  }
  return pos;
}

/**
 * A message field, checked by decoding its bytes on their own: the decoded message, its bytes
 * added to `parts` (merged later if the field is repeated).
 */
function message(
  reader: protobuf.Reader,
  bytes: Buffer,
  type: protobuf.Type,
  parts: Buffer[] | undefined,
): protobuf.Message {
  const size = reader.size();
  const start = reader.pos;
  reader.skip(size);
  const value = bytes.subarray(start, reader.pos);
  parts?.push(value);
  return type.decode(value);
}

/**
 * A message given once (`first`, decoded already) or several times: protobuf merges repeats,
 * as decoding them joined does.
 */
function toObject(
  type: protobuf.Type,
  parts: Buffer[],
  first: protobuf.Message,
): Record<string, unknown> {
  const decoded = parts.length === 1 ? first : type.decode(Buffer.concat(parts));
  return type.toObject(decoded, JSON_OPTIONS);
}

/** The names in a run of resource_names fields (strict UTF-8, as protobufjs reads them). */
function namesIn(region: Buffer): string[] {
  const reader = protobuf.Reader.create(region);
  const names: string[] = [];
  while (reader.pos < reader.len) {
    reader.tag(); // a name tag: the runs hold nothing else
    names.push(reader.stringVerify());
  }
  return names;
}
