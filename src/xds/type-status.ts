// Per stream and per resource type: what was sent, what the proxy accepted or rejected.
// The operator surface reads these; the streams write them.
import type { ProxyIdentity } from '../catalog/model.js';
import type { ResourceKind } from '../protos/envoy.js';
import { KindSlots } from './kind-slots.js';

export interface NackRecord {
  readonly version: string;
  readonly nonce: string;
  readonly message: string;
  readonly at: number;
  /**
   * Delta: the rejected response was an earlier one (`rejectedNonce`), answered after a newer
   * one was sent; `nonce` is that newer one's, whose ACK does not clear this.
   */
  readonly earlier?: true;
  readonly rejectedNonce?: string;
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

/**
 * Times are kept as milliseconds since this module loaded: small integers, which V8 stores in
 * the object itself, where epoch milliseconds need a 16-byte box per field (two per type and
 * stream). Past ~24 days of uptime they are boxed again, as before.
 */
const EPOCH = Date.now();

/** One stream's status of one type. Every field present from the start: one object shape. */
class Status implements TypeStatus {
  sentVersion: string | undefined = undefined;
  sentNonce: string | undefined = undefined;
  sentFrom: { readonly version: string; readonly changedAt: number } | undefined = undefined;
  ackedVersion: string | undefined = undefined;
  ackedNonce: string | undefined = undefined;
  nack: NackRecord | undefined = undefined;
  private sent: number | undefined = undefined;
  private acked: number | undefined = undefined;

  get sentAt(): number | undefined {
    return this.sent === undefined ? undefined : EPOCH + this.sent;
  }
  set sentAt(ms: number | undefined) {
    this.sent = ms === undefined ? undefined : ms - EPOCH;
  }
  get ackedAt(): number | undefined {
    return this.acked === undefined ? undefined : EPOCH + this.acked;
  }
  set ackedAt(ms: number | undefined) {
    this.acked = ms === undefined ? undefined : ms - EPOCH;
  }
}

export function newTypeStatus(): TypeStatus {
  return new Status();
}

/**
 * A stream's status per type, read like a Map: one slot per kind, made when the type is first
 * asked for. A Map of four entries was ~200 B a stream (bench --heap-snapshot, W9).
 */
export class TypeStatuses extends KindSlots<TypeStatus> {
  /** The kind's status, made (NOT_SENT) if the stream had none. */
  open(kind: ResourceKind): TypeStatus {
    let s = this.get(kind);
    if (!s) this.set(kind, (s = newTypeStatus()));
    return s;
  }
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
  readonly types: TypeStatuses;
  /** Why the proxy's own resources could not be built (it keeps its last good config). */
  buildError?: { readonly message: string; readonly at: number };
  /** Requests held back because the stream sent faster than the per-stream request rate. */
  throttled: number;
  /** When the token the stream was accepted with expires (ms): its next reconnect is refused. */
  tokenExpiresAt?: number;
}
