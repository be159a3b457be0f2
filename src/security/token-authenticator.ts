// ADS callers authenticate with a proxy token from `lucid-mesh token issue --service NAME`,
// sent by Envoy as gRPC initial metadata (`authorization: Bearer <token>`, written by
// `lucid-mesh bootstrap --token`). Operator tokens are refused here (they are for /v1/), and so
// is a revoked token; `watch` tells a stream that its token was revoked after it was opened.
import { TokenError, tokenExpiryOf, tokenIdOf, type TokenAuthority } from '../ca/tokens.js';
import type { CallMetadata } from '../xds/ads-call.js';
import { AuthError, type ProxyAuthenticator } from '../xds/auth.js';
import { GrpcStatus } from '../xds/grpc-status-codes.js';

export const TOKEN_METADATA_KEY = 'authorization';

export class TokenAuthenticator implements ProxyAuthenticator {
  constructor(private readonly tokens: TokenAuthority) {}

  async authenticate(metadata: CallMetadata): Promise<string> {
    const token = bearerToken(metadata);
    if (token === undefined) {
      throw new AuthError(
        GrpcStatus.UNAUTHENTICATED,
        'missing-token',
        'no proxy token: expected `authorization: Bearer <token>` metadata (lucid-mesh bootstrap --token)',
      );
    }
    try {
      return (await this.tokens.verify(token)).service;
    } catch (err) {
      const reason = err instanceof TokenError ? err.reason : 'bad-token';
      throw new AuthError(
        GrpcStatus.UNAUTHENTICATED,
        reason,
        `invalid proxy token: ${(err as Error).message}`,
      );
    }
  }

  /**
   * For a stream `authenticate` accepted: calls `revoked` (once) when its token is revoked,
   * at once if it already is. Returns the function that stops watching (the stream closed).
   */
  expiresAt(metadata: CallMetadata): number | undefined {
    const token = bearerToken(metadata);
    return token === undefined ? undefined : tokenExpiryOf(token);
  }

  watch(metadata: CallMetadata, revoked: (err: AuthError) => void): () => void {
    const token = bearerToken(metadata);
    const id = token === undefined ? undefined : tokenIdOf(token);
    if (id === undefined) return () => undefined;
    const fire = (): void => {
      stop();
      revoked(
        new AuthError(
          GrpcStatus.UNAUTHENTICATED,
          'revoked',
          `proxy token ${id} was revoked (lucid-mesh token revoke); the stream is closed`,
        ),
      );
    };
    const stop = this.tokens.onRevoked((ids) => {
      if (ids.has(id)) fire();
    });
    if (this.tokens.isRevoked(id)) fire();
    return stop;
  }
}

function bearerToken(metadata: CallMetadata): string | undefined {
  const header = metadata.get(TOKEN_METADATA_KEY)[0];
  const match = typeof header === 'string' ? /^Bearer\s+(\S+)$/i.exec(header.trim()) : null;
  return match?.[1];
}
