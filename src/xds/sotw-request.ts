// Decoding SotW DiscoveryRequests without decoding their resource names every time. Envoy
// repeats its whole subscription (a thousand EDS names in a large mesh) in every ACK; the
// server only needs to know whether it changed. So the names are fingerprinted from their
// bytes and decoded only when asked for.
import { createHash } from 'node:crypto';
import protobuf from 'protobufjs';
import { JSON_OPTIONS, messageType } from '../protos/envoy.js';
import type { DiscoveryRequest, NodeMessage, StatusMessage } from './messages.js';

export interface SotwRequest extends DiscoveryRequest {
  /** Hash of the resource_names bytes: equal lists in equal order give equal digests. */
  readonly resourceNamesDigest: string;
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

export function decodeSotwRequest(bytes: Buffer): SotwRequest {
  const reader = protobuf.Reader.create(bytes);
  const req: {
    versionInfo?: string;
    node?: NodeMessage;
    typeUrl?: string;
    responseNonce?: string;
    errorDetail?: StatusMessage;
  } = {};
  const names: Array<[number, number]> = [];
  const hash = createHash('sha1');
  let runStart = -1;
  let runEnd = -1;
  while (reader.pos < reader.len) {
    const tagStart = reader.pos;
    const tag = reader.uint32();
    switch (tag >>> 3) {
      case VERSION_INFO:
        req.versionInfo = reader.string();
        break;
      case NODE:
        req.node = nodeType.toObject(
          nodeType.decode(reader, reader.uint32()),
          JSON_OPTIONS,
        ) as NodeMessage;
        break;
      case RESOURCE_NAMES: {
        const length = reader.uint32();
        names.push([reader.pos, reader.pos + length]);
        reader.skip(length);
        // Adjacent name fields are hashed as one run of bytes.
        if (tagStart !== runEnd) {
          if (runStart >= 0) hash.update(bytes.subarray(runStart, runEnd));
          runStart = tagStart;
        }
        runEnd = reader.pos;
        break;
      }
      case TYPE_URL:
        req.typeUrl = reader.string();
        break;
      case RESPONSE_NONCE:
        req.responseNonce = reader.string();
        break;
      case ERROR_DETAIL:
        req.errorDetail = statusType.toObject(
          statusType.decode(reader, reader.uint32()),
          JSON_OPTIONS,
        ) as StatusMessage;
        break;
      default:
        reader.skipType(tag & 7);
    }
  }
  if (runStart >= 0) hash.update(bytes.subarray(runStart, runEnd));
  const digest = names.length === 0 ? '' : hash.digest('base64url');
  let decoded: string[] | undefined;
  return Object.defineProperties(req as SotwRequest, {
    resourceNamesDigest: { value: digest, enumerable: true },
    resourceNames: {
      enumerable: true,
      get: () => (decoded ??= names.map(([start, end]) => bytes.toString('utf8', start, end))),
    },
  });
}
