// Proxy tokens: a signed JWT (ES256) naming one service identity. `lucid-mesh token issue`
// mints them; the xDS server verifies the one a proxy sends as gRPC metadata and serves that
// stream only the config and secrets of the named service. The signing key lives in the CA
// store next to the roots (and goes with it to Consul KV for HA).
import { createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { SignJWT, errors, exportJWK, jwtVerify } from 'jose';
import { systemClock, type Clock } from './clock.js';
import { generateKeyPair, privateKeyToPem, randomSerialHex } from './crypto.js';
import { DEFAULT_TOKEN_TTL_MS } from './settings.js';
import { assertServiceName, isServiceName } from './spiffe.js';
import type { CaStore } from './store.js';

const ISSUER = 'lucid-mesh';
const AUDIENCE = 'lucid-mesh-xds';
const ALG = 'ES256';
/** Ten years: "forever" tokens are a mistake nobody should be able to make by typo. */
export const MAX_TOKEN_TTL_MS = 3650 * 86_400_000;

export type ProxyTokenFailure = 'malformed' | 'expired' | 'bad-signature' | 'invalid-claims';

/** Why a token was refused; `reason` is stable (metric labels), the message is for humans. */
export class ProxyTokenError extends Error {
  override readonly name = 'ProxyTokenError';
  constructor(
    readonly reason: ProxyTokenFailure,
    message: string,
  ) {
    super(message);
  }
}

export interface VerifiedProxyToken {
  readonly service: string;
  readonly expiresAt: Date;
}

export class ProxyTokenAuthority {
  private constructor(
    private readonly privateKey: KeyObject,
    private readonly publicKey: KeyObject,
    /** RFC 7638 thumbprint of the public key: lets a later key rotation verify by `kid`. */
    readonly keyId: string,
    private readonly clock: Clock,
  ) {}

  /** Loads the signing key from the store, creating it on first use. */
  static async open(store: CaStore, opts: { clock?: Clock } = {}): Promise<ProxyTokenAuthority> {
    const pem = await store.loadOrCreateTokenKey(async () =>
      privateKeyToPem((await generateKeyPair('ecdsa-p256')).privateKey),
    );
    const privateKey = createPrivateKey(pem);
    const publicKey = createPublicKey(privateKey);
    const jwk = await exportJWK(publicKey);
    const canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y });
    const keyId = createHash('sha256').update(canonical).digest('base64url');
    return new ProxyTokenAuthority(privateKey, publicKey, keyId, opts.clock ?? systemClock);
  }

  /** Mints a token for `service`, valid for `ttlMs` (default 24 h). */
  async issue(service: string, ttlMs: number = DEFAULT_TOKEN_TTL_MS): Promise<string> {
    assertServiceName(service);
    if (!(ttlMs >= 1000 && ttlMs <= MAX_TOKEN_TTL_MS)) {
      throw new RangeError(`token TTL must be between 1 s and 3650 d, got ${ttlMs} ms`);
    }
    const now = this.clock.now();
    return new SignJWT({})
      .setProtectedHeader({ alg: ALG, typ: 'JWT', kid: this.keyId })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject(service)
      .setJti(randomSerialHex())
      .setIssuedAt(Math.floor(now / 1000))
      .setExpirationTime(Math.floor((now + ttlMs) / 1000))
      .sign(this.privateKey);
  }

  /** The service a token names and when it expires; throws ProxyTokenError otherwise. */
  async verify(token: string): Promise<VerifiedProxyToken> {
    if (typeof token !== 'string' || token.trim() === '') {
      throw new ProxyTokenError('malformed', 'proxy token is empty');
    }
    let payload;
    try {
      ({ payload } = await jwtVerify(token.trim(), this.publicKey, {
        algorithms: [ALG],
        issuer: ISSUER,
        audience: AUDIENCE,
        requiredClaims: ['sub', 'exp'],
        currentDate: new Date(this.clock.now()),
      }));
    } catch (err) {
      throw translate(err);
    }
    const service = payload.sub ?? '';
    if (!isServiceName(service)) {
      throw new ProxyTokenError(
        'invalid-claims',
        `proxy token names an invalid service ${JSON.stringify(service)}`,
      );
    }
    return { service, expiresAt: new Date(payload.exp! * 1000) };
  }
}

function translate(err: unknown): ProxyTokenError {
  if (err instanceof errors.JWTExpired) {
    const exp = typeof err.payload.exp === 'number' ? new Date(err.payload.exp * 1000) : undefined;
    return new ProxyTokenError(
      'expired',
      `proxy token for ${JSON.stringify(err.payload.sub)} expired${exp ? ` at ${exp.toISOString()}` : ''}`,
    );
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) {
    return new ProxyTokenError(
      'bad-signature',
      'proxy token signature does not verify (signed by another CA store, or altered)',
    );
  }
  if (err instanceof errors.JWTClaimValidationFailed) {
    return new ProxyTokenError(
      'invalid-claims',
      `proxy token claim "${err.claim}": ${err.message}`,
    );
  }
  if (err instanceof errors.JOSEAlgNotAllowed) {
    return new ProxyTokenError('malformed', `proxy token algorithm not allowed (expected ${ALG})`);
  }
  return new ProxyTokenError(
    'malformed',
    `proxy token is not a valid JWT (${(err as Error).message})`,
  );
}
