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
  ackedVersion?: string;
  ackedNonce?: string;
  ackedAt?: number;
  /** The last rejection; cleared when a later response is accepted. */
  nack?: NackRecord;
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
}
