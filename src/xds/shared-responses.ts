// SotW responses made once per snapshot and written to every stream that is owed the same
// bytes (the EDS change a thousand proxies subscribe to, the route table, ...), so a fan-out
// costs each stream a write, not an allocation and a copy of the response.
//
// That needs a nonce that is not per stream. A nonce only has to tell a stream's responses
// apart, so one derived from the content serves: two responses with the same nonce are the
// same bytes, and an ACK of either means the same thing.
import { deltaDiscoveryResponse, discoveryResponse } from '../protos/wire.js';
import type { EncodedResource } from '../snapshot/encoded-resource.js';
import type { Snapshot, SotwBlock } from '../snapshot/snapshot.js';

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
    // Bounded: a partial block is sent under the version of each subscription it is part of,
    // and subscriptions are the clients' to vary (a block lives as long as its snapshot).
    if (byVersion.size >= 64) byVersion.clear();
    byVersion.set(version, response);
  }
  return response;
}

/** A shared delta response, with the names it upserts (one list for every stream sent it). */
export interface PreparedDeltaResponse extends PreparedResponse {
  readonly names: readonly string[];
}

const deltaResponses = new WeakMap<Snapshot, Map<string, PreparedDeltaResponse>>();

/** Delta responses this small are shared (a change fanned out); bigger ones are per stream. */
export const MAX_SHARED_DELTA_UPSERTS = 16;

/**
 * The delta response upserting `upserts` (nothing removed) in `snapshot`'s version, built on
 * first use: every stream the change reaches is owed the same bytes.
 */
export function sharedDeltaResponse(
  snapshot: Snapshot,
  typeUrl: string,
  upserts: readonly EncodedResource[],
): PreparedDeltaResponse {
  let bySet = deltaResponses.get(snapshot);
  if (!bySet) deltaResponses.set(snapshot, (bySet = new Map()));
  // One flat string (a += loop leaves a tree of cons strings as the map's key).
  const key = [typeUrl, ...upserts.map((r) => `${r.name}@${r.version}`)].join('\u0000');
  let response = bySet.get(key);
  if (!response) {
    const nonce = `${SHARED_NONCE_PREFIX}${(++sequence).toString(36)}`;
    const entries = upserts.map((r) => r.deltaEntry);
    response = {
      nonce,
      bytes: deltaDiscoveryResponse(snapshot.version, typeUrl, nonce, entries, []),
      names: upserts.map((r) => r.name),
    };
    // Bounded: a snapshot sees a handful of distinct change sets, not one per proxy.
    if (bySet.size >= 64) bySet.clear();
    bySet.set(key, response);
  }
  return response;
}
