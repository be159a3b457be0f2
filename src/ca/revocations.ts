// The token log kept with the CA state (`ca/tokens.json` in the file store): one record per
// token issued (id, kind, subject, scope, expiry) and the revocations. `lucid-mesh token list`
// reads it, `lucid-mesh token revoke --id` writes it, and every serving control plane watches
// it and refuses a revoked id on both ports. Records of tokens long expired are pruned on each
// write, so the log stays as large as the set of tokens that could still be presented.

export const TOKEN_KINDS = ['proxy', 'operator'] as const;
export type TokenKind = (typeof TOKEN_KINDS)[number];

/**
 * What an operator token allows on the admin API. `read`: every GET under /v1/; `admin`:
 * `read` plus anything that changes state (src/admin/auth.ts decides which is which).
 */
export const OPERATOR_SCOPES = ['read', 'admin'] as const;
export type OperatorScope = (typeof OPERATOR_SCOPES)[number];

/** A token id (`jti`): 128 random bits in lowercase hex, as `token list` shows it. */
export const TOKEN_ID = /^[0-9a-f]{32}$/;

export interface TokenRecord {
  /** The token's `jti`. */
  readonly id: string;
  /** Unknown for an id revoked without having been recorded (a token from before the log). */
  readonly kind?: TokenKind;
  /** The service of a proxy token, the name of an operator token. */
  readonly subject?: string;
  readonly scope?: OperatorScope;
  /** ISO 8601. */
  readonly issuedAt?: string;
  /** ISO 8601. */
  readonly expiresAt?: string;
  /** ISO 8601; set once the token is revoked. */
  readonly revokedAt?: string;
}

export type TokensMutation = (
  current: readonly TokenRecord[],
) => readonly TokenRecord[] | undefined | Promise<readonly TokenRecord[] | undefined>;

/**
 * How long a record outlives its token: `token list` still shows a token that expired
 * recently (and a revocation stays visible), then it goes. An expired token is refused for
 * its `exp` alone, so dropping its revocation loses nothing.
 */
export const KEEP_EXPIRED_MS = 86_400_000;

/** `records` without those whose token expired more than KEEP_EXPIRED_MS before `now`. */
export function pruneExpired(records: readonly TokenRecord[], now: number): TokenRecord[] {
  return records.filter(
    (r) => r.expiresAt === undefined || Date.parse(r.expiresAt) + KEEP_EXPIRED_MS > now,
  );
}

/** The revoked ids among `records`. */
export function revokedIds(records: readonly TokenRecord[]): Set<string> {
  return new Set(records.flatMap((r) => (r.revokedAt !== undefined ? [r.id] : [])));
}

/** `records` with `id` marked revoked at `now` (added when unknown); the same list if it was. */
export function withRevoked(
  records: readonly TokenRecord[],
  id: string,
  now: number,
): TokenRecord[] {
  const revokedAt = new Date(now).toISOString();
  const known = records.some((r) => r.id === id);
  if (!known) return [...records, { id, revokedAt }];
  return records.map((r) => (r.id === id && r.revokedAt === undefined ? { ...r, revokedAt } : r));
}

/** What `token list` says of a record at `now`. */
export function tokenState(record: TokenRecord, now: number): 'valid' | 'expired' | 'revoked' {
  if (record.revokedAt !== undefined) return 'revoked';
  if (record.expiresAt !== undefined && Date.parse(record.expiresAt) <= now) return 'expired';
  return 'valid';
}
