// The messages of the mesh event stream: one JSON envelope per event, published to the topic
// exchange with the event's routing key. docs/events.md documents each key's `data`.
import type { ResourceChange } from '../telemetry/events.js';

export const EVENT_KEYS = [
  'mesh.changed',
  'proxy.connected',
  'proxy.disconnected',
  'proxy.nacked',
  'cert.issued',
  'cert.rotated',
  'config.rejected',
] as const;
export type EventKey = (typeof EVENT_KEYS)[number];

export interface EventData {
  'mesh.changed': {
    readonly version: string;
    readonly previous?: string;
    readonly resources: readonly ResourceChange[];
    readonly proxies: readonly string[];
  };
  'proxy.connected': { readonly node: string; readonly mode: string };
  'proxy.disconnected': { readonly node: string; readonly mode: string; readonly reason?: string };
  'proxy.nacked': {
    readonly node: string;
    readonly type: string;
    readonly version: string;
    readonly error: string;
  };
  'cert.issued': CertData;
  'cert.rotated': CertData;
  'config.rejected': { readonly kind: string; readonly name: string; readonly message: string };
}

export interface CertData {
  readonly service: string;
  readonly serial: string;
  readonly root: string;
  readonly notBefore: string;
  readonly notAfter: string;
}

export interface EventEnvelope<K extends EventKey = EventKey> {
  /** Unique per event (a UUID); a redelivered event keeps its id. */
  readonly id: string;
  readonly key: K;
  /** The control-plane replica that saw it (--events-replica). */
  readonly replica: string;
  /** Per replica, +1 per event, kept across restarts by the outbox. */
  readonly seq: number;
  /** When it happened (ISO 8601). */
  readonly at: string;
  readonly data: EventData[K];
}

/** Any envelope, discriminated by key. */
export type AnyEventEnvelope = { [K in EventKey]: EventEnvelope<K> }[EventKey];
