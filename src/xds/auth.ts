// Who may open an ADS stream, and as which service. The server only asks; how callers prove
// who they are (signed tokens) lives outside the protocol layer.
import type { GrpcStatus } from './grpc-status-codes.js';
import type { CallMetadata } from './ads-call.js';

export type AuthFailureCode =
  typeof GrpcStatus.UNAUTHENTICATED | typeof GrpcStatus.PERMISSION_DENIED;

export class AuthError extends Error {
  override readonly name: string = 'AuthError';
  constructor(
    readonly code: AuthFailureCode,
    /** Short, stable, for metrics: missing-token, bad-token, expired, wrong-service... */
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export interface ProxyAuthenticator {
  /** The service the caller is authenticated as; throws AuthError (UNAUTHENTICATED). */
  authenticate(metadata: CallMetadata): Promise<string>;
  /**
   * Optional, for a stream `authenticate` accepted: calls `revoked` if its credential stops
   * being valid (a revoked token); the stream is then closed with that error. Returns the
   * function that stops watching (called when the stream closes).
   */
  watch?(metadata: CallMetadata, revoked: (err: AuthError) => void): () => void;
  /**
   * Optional, for a stream `authenticate` accepted: when its credential expires (ms since the
   * epoch). An open stream outlives it; its next reconnect is refused (status shows it).
   */
  expiresAt?(metadata: CallMetadata): number | undefined;
}
