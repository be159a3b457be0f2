// Per stream and per resource type: what was sent, what the proxy accepted or rejected.
// The operator surface reads these; the streams write them.
import type { ProxyIdentity } from '../catalog/model.js';
import type { ResourceKind } from '../protos/envoy.js';

export interface NackRecord {
  readonly version: string;
  readonly nonce: string;
  readonly message: string;
  readonly at: number;
}

export interface TypeStatus {
  sentVersion?: string;
  sentNonce?: string;
  sentAt?: number;
  /** The snapshot the last response was built from (reported with its ACK, for convergence). */
  sentFrom?: { readonly version: string; readonly changedAt: number };
  ackedVersion?: string;
  ackedNonce?: string;
  ackedAt?: number;
  /** The last rejection; cleared when a later response is accepted. */
  nack?: NackRecord;
}

/** A status with every field present from the start: one object shape for all streams. */
export function newTypeStatus(): TypeStatus {
  return {
    sentVersion: undefined,
    sentNonce: undefined,
    sentAt: undefined,
    sentFrom: undefined,
    ackedVersion: undefined,
    ackedNonce: undefined,
    ackedAt: undefined,
    nack: undefined,
  };
}

export type SyncState = 'SYNCED' | 'STALE' | 'NACKED' | 'NOT_SENT';

export function syncState(t: TypeStatus | undefined): SyncState {
  if (!t || t.sentNonce === undefined) return 'NOT_SENT';
  if (t.nack && t.nack.nonce === t.sentNonce) return 'NACKED';
  if (t.ackedNonce === t.sentNonce) return 'SYNCED';
  return 'STALE';
}

export type StreamMode = 'sotw' | 'delta';

export interface StreamInfo {
  readonly id: number;
  readonly mode: StreamMode;
  readonly peer: string;
  readonly connectedAt: number;
  proxy?: ProxyIdentity;
  readonly types: Map<ResourceKind, TypeStatus>;
  /** Why the proxy's own resources could not be built (it keeps its last good config). */
  buildError?: { readonly message: string; readonly at: number };
  /** Requests held back because the stream sent faster than the per-stream request rate. */
  throttled: number;
}
