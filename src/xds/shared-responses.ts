// SotW responses made once per snapshot and written to every stream that is owed the same
// bytes (the EDS change a thousand proxies subscribe to, the route table, ...), so a fan-out
// costs each stream a write, not an allocation and a copy of the response.
//
// That needs a nonce that is not per stream. A nonce only has to tell a stream's responses
// apart, so one derived from the content serves: two responses with the same nonce are the
// same bytes, and an ACK of either means the same thing.
import { discoveryResponse } from '../protos/wire.js';
import type { SotwBlock } from '../snapshot/snapshot.js';

export interface PreparedResponse {
  readonly nonce: string;
  readonly bytes: Buffer;
}

const responses = new WeakMap<SotwBlock, Map<string, PreparedResponse>>();
let sequence = 0;

/**
 * Shared nonces start with '~', which a per-stream nonce (base 36) never contains, so they
 * cannot collide with one another on a stream.
 */
export const SHARED_NONCE_PREFIX = '~';

/** The response carrying `block` under `version`, built on first use (block.shared only). */
export function sharedSotwResponse(
  block: SotwBlock,
  version: string,
  typeUrl: string,
): PreparedResponse {
  let byVersion = responses.get(block);
  if (!byVersion) responses.set(block, (byVersion = new Map()));
  let response = byVersion.get(version);
  if (!response) {
    const nonce = `${SHARED_NONCE_PREFIX}${(++sequence).toString(36)}`;
    response = { nonce, bytes: discoveryResponse(version, typeUrl, nonce, block.parts) };
    byVersion.set(version, response);
  }
  return response;
}
