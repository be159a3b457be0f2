// ADS callers authenticate with a token from `lucid-mesh token issue`, sent by Envoy as gRPC
// initial metadata (`authorization: Bearer <token>`, written by `lucid-mesh bootstrap --token`).
import * as grpc from '@grpc/grpc-js';
import { ProxyTokenError, type ProxyTokenAuthority } from '../ca/tokens.js';
import { AuthError, type ProxyAuthenticator } from '../xds/auth.js';

export const TOKEN_METADATA_KEY = 'authorization';

export class TokenAuthenticator implements ProxyAuthenticator {
  constructor(private readonly tokens: ProxyTokenAuthority) {}

  async authenticate(metadata: grpc.Metadata): Promise<string> {
    const header = metadata.get(TOKEN_METADATA_KEY)[0];
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)$/i.exec(header.trim()) : null;
    if (!match) {
      throw new AuthError(
        grpc.status.UNAUTHENTICATED,
        'missing-token',
        'no proxy token: expected `authorization: Bearer <token>` metadata (lucid-mesh bootstrap --token)',
      );
    }
    try {
      return (await this.tokens.verify(match[1]!)).service;
    } catch (err) {
      const reason = err instanceof ProxyTokenError ? err.reason : 'bad-token';
      throw new AuthError(
        grpc.status.UNAUTHENTICATED,
        reason,
        `invalid proxy token: ${(err as Error).message}`,
      );
    }
  }
}
