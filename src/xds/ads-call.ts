// What an ADS stream needs of its call, and nothing more: grpc-js's ServerDuplexStream and the
// node:http2 transport's own call (http2-transport/) both satisfy it, so the SotW and delta
// streams run unchanged on either transport (serve --xds-transport).
import type { GrpcStatus } from './grpc-status-codes.js';

/** Request metadata (HTTP/2 headers) as the authenticator reads it; grpc.Metadata is one. */
export interface CallMetadata {
  /** The values of `key` (lower case), none when absent. */
  get(key: string): Array<string | Buffer>;
}

/** The status a stream ends with: `call.emit('error', status)` sends it as gRPC trailers. */
export interface CallStatus {
  readonly code: GrpcStatus;
  readonly details: string;
  /** Accepted (grpc-js takes trailing metadata here) and not sent by the http2 transport. */
  readonly metadata?: unknown;
}

export interface AdsCall<Req> {
  readonly metadata: CallMetadata;
  /** The client went away (RST_STREAM or connection lost) before the call ended. */
  readonly cancelled: boolean;
  /** host:port of the client, as grpc-js prints it. */
  getPeer(): string;
  on(event: 'data', listener: (req: Req) => void): this;
  on(event: 'end' | 'cancelled' | 'drain', listener: () => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  once(event: 'drain', listener: () => void): this;
  /** Ends the call with this status (and tells the 'error' listeners, as grpc-js does). */
  emit(event: 'error', status: CallStatus): boolean;
  /** Stop and restart reading requests (backpressure on the client). */
  pause(): this;
  resume(): this;
  /** Writes one encoded response; false: buffers are full, wait for 'drain'. */
  write(message: Buffer): boolean;
  /** Ends the call with status OK. */
  end(): void;
}
