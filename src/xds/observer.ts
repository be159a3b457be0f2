// Everything the protocol layer reports, so logging and metrics live outside it.
import type { ResourceKind } from '../protos/envoy.js';
import type { StreamInfo } from './type-status.js';

/** The snapshot a response was built from (for convergence: source change → ACK). */
export interface SnapshotRef {
  readonly version: string;
  readonly changedAt: number;
}

export interface ResponseReport {
  readonly kind: ResourceKind;
  readonly version: string;
  readonly nonce: string;
  readonly resources: number;
  /** Delta only: names upserted and removed by this response. */
  readonly upserted?: readonly string[];
  readonly removed: readonly string[];
  readonly bytes: number;
  /** Time to assemble and write the response. */
  readonly durationMs: number;
  readonly snapshot: SnapshotRef;
}

export interface XdsObserver {
  streamOpened(stream: StreamInfo): void;
  /** The stream's first request named its node (and its token, if any, was accepted). */
  proxyIdentified?(stream: StreamInfo): void;
  streamClosed(stream: StreamInfo, reason: string): void;
  responseSent(stream: StreamInfo, report: ResponseReport): void;
  acked(
    stream: StreamInfo,
    kind: ResourceKind,
    version: string,
    snapshot: SnapshotRef | undefined,
  ): void;
  nacked(stream: StreamInfo, kind: ResourceKind, version: string, message: string): void;
  staleNonce(stream: StreamInfo, kind: ResourceKind, nonce: string): void;
  badRequest(stream: StreamInfo, problem: string): void;
  /**
   * A stream refused: no/invalid token (UNAUTHENTICATED), before it was admitted (`stream`
   * undefined: it never opened), or a claim it may not make or a revoked token (its stream).
   */
  authFailed(stream: StreamInfo | undefined, reason: string, message: string): void;
  /** A request held back: its stream sends faster than the per-stream request rate. */
  throttled(stream: StreamInfo, delayMs: number): void;
  /** A new stream refused (RESOURCE_EXHAUSTED) before it started: `--max-streams` or `--stream-rate`. */
  streamRefused(reason: StreamRefusal, peer: string): void;
}

export type StreamRefusal = 'max-streams' | 'stream-rate';

/** Counts what happened; the default observer and the basis of tests' assertions. */
export class XdsCounters implements XdsObserver {
  streamsOpened = 0;
  streamsClosed = 0;
  responses = 0;
  responseBytes = 0;
  acks = 0;
  nacks = 0;
  staleNonces = 0;
  badRequests = 0;
  authFailures = 0;
  throttledRequests = 0;
  readonly streamsRefused: Record<StreamRefusal, number> = { 'max-streams': 0, 'stream-rate': 0 };
  readonly responsesByKind = new Map<ResourceKind, number>();

  streamOpened(): void {
    this.streamsOpened++;
  }
  streamClosed(): void {
    this.streamsClosed++;
  }
  responseSent(_s: StreamInfo, r: ResponseReport): void {
    this.responses++;
    this.responseBytes += r.bytes;
    this.responsesByKind.set(r.kind, (this.responsesByKind.get(r.kind) ?? 0) + 1);
  }
  acked(): void {
    this.acks++;
  }
  nacked(): void {
    this.nacks++;
  }
  staleNonce(): void {
    this.staleNonces++;
  }
  badRequest(): void {
    this.badRequests++;
  }
  authFailed(): void {
    this.authFailures++;
  }
  throttled(): void {
    this.throttledRequests++;
  }
  streamRefused(reason: StreamRefusal): void {
    this.streamsRefused[reason]++;
  }
}

/** Fans one report out to several observers (counters, logs, metrics). */
export function combineObservers(...observers: XdsObserver[]): XdsObserver {
  return {
    streamOpened: (s) => observers.forEach((o) => o.streamOpened(s)),
    proxyIdentified: (s) => observers.forEach((o) => o.proxyIdentified?.(s)),
    streamClosed: (s, r) => observers.forEach((o) => o.streamClosed(s, r)),
    responseSent: (s, r) => observers.forEach((o) => o.responseSent(s, r)),
    acked: (s, k, v, t) => observers.forEach((o) => o.acked(s, k, v, t)),
    nacked: (s, k, v, m) => observers.forEach((o) => o.nacked(s, k, v, m)),
    staleNonce: (s, k, n) => observers.forEach((o) => o.staleNonce(s, k, n)),
    badRequest: (s, p) => observers.forEach((o) => o.badRequest(s, p)),
    authFailed: (s, r, m) => observers.forEach((o) => o.authFailed(s, r, m)),
    throttled: (s, d) => observers.forEach((o) => o.throttled(s, d)),
    streamRefused: (r, p) => observers.forEach((o) => o.streamRefused(r, p)),
  };
}
