// Tokens: signed JWTs (ES256) of two kinds, told apart by their audience.
// - Proxy tokens (`lucid-mesh token issue --service NAME`, aud `lucid-mesh-xds`) name one
//   service identity: the xDS server verifies the one a proxy sends as gRPC metadata and serves
//   that stream only the config and secrets of the named service.
// - Operator tokens (`lucid-mesh token issue --operator`, aud `lucid-mesh-admin`) carry a name
//   and a scope (`read` or `admin`): the admin API's /v1/ takes them.
// One signing key for both, in the CA store next to the roots (and with it to Consul KV for
// HA). Each token has a random `jti`, is recorded in the store's token log when issued, and
// is refused once that id is revoked (revocations.ts); a serving authority watches the log.
import { createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import type { JWTPayload } from 'jose';
import type { Logger } from '../telemetry/logger.js';
import { systemClock, type Clock } from './clock.js';
import { newP256KeyPem, randomSerialHex } from './crypto.js';
import {
  OPERATOR_SCOPES,
  TOKEN_ID,
  pruneExpired,
  revokedIds,
  withRevoked,
  type OperatorScope,
  type TokenKind,
  type TokenRecord,
} from './revocations.js';
import { DEFAULT_TOKEN_TTL_MS } from './settings.js';
import { assertServiceName, isServiceName } from './spiffe.js';
import type { CaStore } from './store.js';

const ISSUER = 'lucid-mesh';
export const AUDIENCES: Readonly<Record<TokenKind, string>> = {
  proxy: 'lucid-mesh-xds',
  operator: 'lucid-mesh-admin',
};
const ALG = 'ES256';
/** Ten years: "forever" tokens are a mistake nobody should be able to make by typo. */
export const MAX_TOKEN_TTL_MS = 3650 * 86_400_000;
/** Least privilege: a token that can change state is asked for by name. */
export const DEFAULT_OPERATOR_SCOPE: OperatorScope = 'read';
export const DEFAULT_OPERATOR_NAME = 'operator';
/** Who an operator token is for (audit only): a user name, an e-mail address, a job name. */
const OPERATOR_NAME = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$/;

export type TokenFailure =
  | 'malformed'
  | 'expired'
  | 'bad-signature'
  | 'invalid-claims'
  /** A proxy token where an operator token is needed, or the reverse. */
  | 'wrong-kind'
  | 'revoked';

/** Why a token was refused; `reason` is stable (metric labels), the message is for humans. */
export class TokenError extends Error {
  override readonly name = 'TokenError';
  constructor(
    readonly reason: TokenFailure,
    message: string,
  ) {
    super(message);
  }
}

export interface VerifiedProxyToken {
  readonly service: string;
  /** The token's `jti` (what `token revoke --id` takes). */
  readonly id: string;
  readonly expiresAt: Date;
}

export interface VerifiedOperatorToken {
  readonly name: string;
  readonly scope: OperatorScope;
  readonly id: string;
  readonly expiresAt: Date;
}

export interface OperatorTokenRequest {
  /** Default DEFAULT_OPERATOR_NAME. */
  readonly name?: string;
  /** Default DEFAULT_OPERATOR_SCOPE (`read`). */
  readonly scope?: OperatorScope;
  /** Default 24 h. */
  readonly ttlMs?: number;
}

export interface TokenAuthorityOptions {
  readonly clock?: Clock;
  /** `--token-key`: sign with this PKCS#8 PEM key instead of the store's own. */
  readonly keyPem?: string;
  /** Follow the store's token log (a serving control plane): revocations apply at once. */
  readonly watch?: boolean;
  readonly logger?: Logger;
}

export function isOperatorName(name: string): boolean {
  return OPERATOR_NAME.test(name);
}

export function isOperatorScope(scope: unknown): scope is OperatorScope {
  return (OPERATOR_SCOPES as readonly unknown[]).includes(scope);
}

const label = (kind: TokenKind): string => `${kind} token`;

export class TokenAuthority {
  private revoked: ReadonlySet<string> = new Set();
  private readonly revocationListeners = new Set<(revoked: ReadonlySet<string>) => void>();
  private unwatch: (() => void) | undefined;
  private reloads: Promise<void> = Promise.resolve();

  private constructor(
    private readonly store: CaStore,
    private readonly privateKey: KeyObject,
    private readonly publicKey: KeyObject,
    /** RFC 7638 thumbprint of the public key: lets a later key rotation verify by `kid`. */
    readonly keyId: string,
    private readonly clock: Clock,
    private readonly logger: Logger | undefined,
  ) {}

  /** Loads the signing key from the store (creating it on first use) and the revocations. */
  static async open(store: CaStore, opts: TokenAuthorityOptions = {}): Promise<TokenAuthority> {
    const pem =
      opts.keyPem ?? (await store.loadOrCreateTokenKey(() => Promise.resolve(newP256KeyPem())));
    const privateKey = createPrivateKey(pem);
    const publicKey = createPublicKey(privateKey);
    const jwk = publicKey.export({ format: 'jwk' });
    const canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y });
    const keyId = createHash('sha256').update(canonical).digest('base64url');
    const authority = new TokenAuthority(
      store,
      privateKey,
      publicKey,
      keyId,
      opts.clock ?? systemClock,
      opts.logger,
    );
    authority.revoked = revokedIds(await store.loadTokens());
    if (opts.watch) authority.unwatch = store.watchTokens(() => void authority.reload());
    return authority;
  }

  /** Mints a proxy token for `service`, valid for `ttlMs` (default 24 h). */
  async issue(service: string, ttlMs: number = DEFAULT_TOKEN_TTL_MS): Promise<string> {
    assertServiceName(service);
    return this.mint('proxy', service, {}, ttlMs);
  }

  /** Mints an operator token for the admin API. */
  async issueOperator(request: OperatorTokenRequest = {}): Promise<string> {
    const name = request.name ?? DEFAULT_OPERATOR_NAME;
    const scope = request.scope ?? DEFAULT_OPERATOR_SCOPE;
    if (!isOperatorName(name)) {
      throw new RangeError(
        `operator name must be 1-64 of A-Z a-z 0-9 . _ @ + - (starting with a letter or digit), got ${JSON.stringify(name)}`,
      );
    }
    if (!isOperatorScope(scope)) {
      throw new RangeError(
        `operator scope must be ${OPERATOR_SCOPES.join(' or ')}, got ${JSON.stringify(scope)}`,
      );
    }
    return this.mint('operator', name, { scope }, request.ttlMs ?? DEFAULT_TOKEN_TTL_MS);
  }

  /** The service a proxy token names; throws TokenError otherwise. */
  async verify(token: string): Promise<VerifiedProxyToken> {
    const payload = await this.verifyKind(token, 'proxy');
    const service = payload.sub ?? '';
    if (!isServiceName(service)) {
      throw new TokenError(
        'invalid-claims',
        `proxy token names an invalid service ${JSON.stringify(service)}`,
      );
    }
    return { service, id: payload.jti!, expiresAt: new Date(payload.exp! * 1000) };
  }

  /** Who an operator token is for and its scope; throws TokenError otherwise. */
  async verifyOperator(token: string): Promise<VerifiedOperatorToken> {
    const payload = await this.verifyKind(token, 'operator');
    const scope = payload.scope;
    if (!isOperatorScope(scope)) {
      throw new TokenError(
        'invalid-claims',
        `operator token claim "scope": expected ${OPERATOR_SCOPES.join(' or ')}, got ${JSON.stringify(scope)}`,
      );
    }
    return {
      name: payload.sub ?? '',
      scope,
      id: payload.jti!,
      expiresAt: new Date(payload.exp! * 1000),
    };
  }

  /** Marks `id` revoked in the store; every authority watching it refuses the token. */
  async revoke(id: string): Promise<{ known: boolean; alreadyRevoked: boolean }> {
    if (!TOKEN_ID.test(id)) {
      throw new RangeError(`a token id is 32 lowercase hex digits, got ${JSON.stringify(id)}`);
    }
    let known = false;
    let alreadyRevoked = false;
    await this.store.updateTokens((current) => {
      const record = current.find((r) => r.id === id);
      known = record?.kind !== undefined;
      alreadyRevoked = record?.revokedAt !== undefined;
      if (alreadyRevoked) return undefined;
      return withRevoked(pruneExpired(current, this.clock.now()), id, this.clock.now());
    });
    await this.reload();
    return { known, alreadyRevoked };
  }

  /** The token log: every token issued and not long expired, and the revocations. */
  list(): Promise<TokenRecord[]> {
    return this.store.loadTokens();
  }

  isRevoked(id: string): boolean {
    return this.revoked.has(id);
  }

  /**
   * Calls `listener` with the revoked ids each time the set grows (this process or another
   * revoked a token). Returns an unsubscribe function.
   */
  onRevoked(listener: (revoked: ReadonlySet<string>) => void): () => void {
    this.revocationListeners.add(listener);
    return () => this.revocationListeners.delete(listener);
  }

  /** Stops following the store. */
  stop(): void {
    this.unwatch?.();
    this.unwatch = undefined;
  }

  /** Re-reads the revocations (serialised, so an older read never wins). */
  reload(): Promise<void> {
    const run = this.reloads.then(async () => {
      let next: Set<string>;
      try {
        next = revokedIds(await this.store.loadTokens());
      } catch (err) {
        // A broken token log keeps the revocations last read: none is forgotten.
        this.logger?.warn(
          { store: this.store.location, error: (err as Error).message },
          'cannot read the token log; keeping the revocations last read',
        );
        return;
      }
      const grew = [...next].some((id) => !this.revoked.has(id));
      // Ids only leave the log once their token expired: keep refusing them until then.
      this.revoked = new Set([...this.revoked, ...next]);
      if (!grew) return;
      for (const listener of [...this.revocationListeners]) {
        try {
          listener(this.revoked);
        } catch (err) {
          this.logger?.error({ err }, 'revocation listener failed');
        }
      }
    });
    this.reloads = run.catch(() => undefined);
    return run;
  }

  private async mint(
    kind: TokenKind,
    subject: string,
    claims: Record<string, string>,
    ttlMs: number,
  ): Promise<string> {
    if (!(ttlMs >= 1000 && ttlMs <= MAX_TOKEN_TTL_MS)) {
      throw new RangeError(`token TTL must be between 1 s and 3650 d, got ${ttlMs} ms`);
    }
    const now = this.clock.now();
    const id = randomSerialHex();
    const iat = Math.floor(now / 1000);
    const exp = Math.floor((now + ttlMs) / 1000);
    const { SignJWT } = await loadJose();
    const token = await new SignJWT(claims)
      .setProtectedHeader({ alg: ALG, typ: 'JWT', kid: this.keyId })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCES[kind])
      .setSubject(subject)
      .setJti(id)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .sign(this.privateKey);
    const record: TokenRecord = {
      id,
      kind,
      subject,
      ...(claims.scope !== undefined ? { scope: claims.scope as OperatorScope } : {}),
      issuedAt: new Date(iat * 1000).toISOString(),
      expiresAt: new Date(exp * 1000).toISOString(),
    };
    // Recorded before it is handed out: `token list` knows every token that can be presented.
    await this.store.updateTokens((current) => [...pruneExpired(current, now), record]);
    return token;
  }

  private async verifyKind(token: string, kind: TokenKind): Promise<JWTPayload> {
    if (typeof token !== 'string' || token.trim() === '') {
      throw new TokenError('malformed', `${label(kind)} is empty`);
    }
    const { jwtVerify, errors } = await loadJose();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token.trim(), this.publicKey, {
        algorithms: [ALG],
        issuer: ISSUER,
        requiredClaims: ['sub', 'exp', 'jti', 'aud'],
        currentDate: new Date(this.clock.now()),
      }));
    } catch (err) {
      throw translate(err, kind, errors);
    }
    const audiences = typeof payload.aud === 'string' ? [payload.aud] : (payload.aud ?? []);
    if (!audiences.includes(AUDIENCES[kind])) {
      const other: TokenKind = kind === 'proxy' ? 'operator' : 'proxy';
      if (audiences.includes(AUDIENCES[other])) {
        throw new TokenError('wrong-kind', wrongKindMessage(other, payload.sub));
      }
      throw new TokenError(
        'invalid-claims',
        `${label(kind)} claim "aud": expected ${JSON.stringify(AUDIENCES[kind])}, got ${JSON.stringify(payload.aud)}`,
      );
    }
    if (this.revoked.has(payload.jti!)) {
      throw new TokenError(
        'revoked',
        `${label(kind)} ${payload.jti} (${JSON.stringify(payload.sub)}) was revoked`,
      );
    }
    return payload;
  }
}

function wrongKindMessage(presented: TokenKind, subject: string | undefined): string {
  return presented === 'operator'
    ? `this is an operator token (${JSON.stringify(subject)}), for the admin API's /v1/; ` +
        'the xDS port takes proxy tokens (lucid-mesh token issue --service NAME)'
    : `this is a proxy token for service ${JSON.stringify(subject)}; ` +
        'the admin API takes operator tokens (lucid-mesh token issue --operator)';
}

type Jose = typeof import('jose');
type JoseErrors = Jose['errors'];
let jose: Promise<Jose> | undefined;

/**
 * jose, imported when a token is first minted or checked: a control plane nobody has called
 * yet does not hold it (~0.4 MiB, issue 16: idle RSS).
 */
function loadJose(): Promise<Jose> {
  return (jose ??= import('jose'));
}

/**
 * A token's claims read without verifying it, for one that was verified already (the stream's
 * own); undefined if it is not a JWT. Only base64url and JSON: no need to load jose for it.
 */
function unverifiedClaims(token: string): JWTPayload | undefined {
  const parts = token.trim().split('.');
  if (parts.length !== 3) return undefined;
  try {
    const claims: unknown = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
    return typeof claims === 'object' && claims !== null && !Array.isArray(claims)
      ? (claims as JWTPayload)
      : undefined;
  } catch {
    return undefined;
  }
}

/** When a token expires (ms since the epoch), read without verifying it; undefined if unreadable. */
export function tokenExpiryOf(token: string): number | undefined {
  const exp = unverifiedClaims(token)?.exp;
  return typeof exp === 'number' ? exp * 1000 : undefined;
}

/** The id of a token without verifying it (for a stream that already verified it). */
export function tokenIdOf(token: string): string | undefined {
  const jti = unverifiedClaims(token)?.jti;
  return typeof jti === 'string' ? jti : undefined;
}

function translate(err: unknown, kind: TokenKind, errors: JoseErrors): TokenError {
  const what = label(kind);
  if (err instanceof errors.JWTExpired) {
    const exp = typeof err.payload.exp === 'number' ? new Date(err.payload.exp * 1000) : undefined;
    return new TokenError(
      'expired',
      `${what} for ${JSON.stringify(err.payload.sub)} expired${exp ? ` at ${exp.toISOString()}` : ''}`,
    );
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) {
    return new TokenError(
      'bad-signature',
      `${what} signature does not verify (signed by another CA store, or altered)`,
    );
  }
  if (err instanceof errors.JWTClaimValidationFailed) {
    return new TokenError('invalid-claims', `${what} claim "${err.claim}": ${err.message}`);
  }
  if (err instanceof errors.JOSEAlgNotAllowed) {
    return new TokenError('malformed', `${what} algorithm not allowed (expected ${ALG})`);
  }
  return new TokenError('malformed', `${what} is not a valid JWT (${(err as Error).message})`);
}
