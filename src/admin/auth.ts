// Who may use the admin API. `/health` (and `/healthz`), `/ready` and `/metrics` are open
// (probes, Prometheus); everything else (`/v1/*`, and any path added later) needs
// `Authorization: Bearer <operator token>` (`lucid-mesh token issue --operator`) unless the
// server runs `--admin-auth none`.
// Which scope a request needs is decided here and only here (`requiredScope`).
import type { OperatorScope } from '../ca/revocations.js';
import { TokenError, type TokenAuthority, type TokenFailure } from '../ca/tokens.js';

export const ADMIN_AUTH_MODES = ['token', 'none'] as const;
export type AdminAuthMode = (typeof ADMIN_AUTH_MODES)[number];

/**
 * Paths anyone may read: liveness and readiness probes, Prometheus. `/healthz` is `/health`
 * under the name Kubernetes components use, which probes and people try first: it answered 401,
 * which read as a token problem. Any other path, even one that does not exist, still needs a
 * token (nothing is learnt about the API without one).
 */
export const OPEN_PATHS: ReadonlySet<string> = new Set([
  '/health',
  '/healthz',
  '/ready',
  '/metrics',
]);

/**
 * The scope a request needs. Reading (GET, HEAD) needs `read`; anything that could change state
 * (any other method: a later `ca rotate` or `token revoke` over HTTP) needs `admin`.
 */
export function requiredScope(method: string | undefined): OperatorScope {
  return method === 'GET' || method === 'HEAD' ? 'read' : 'admin';
}

/** Whether a token of scope `granted` may do what needs `needed` (`admin` includes `read`). */
export function scopeAllows(granted: OperatorScope, needed: OperatorScope): boolean {
  return granted === 'admin' || needed === 'read';
}

export type AdminAuthFailure = 'missing-token' | TokenFailure | 'insufficient-scope';

export interface AdminGrant {
  readonly ok: true;
  /** The token's id: a request in flight (an event stream) ends when it is revoked. */
  readonly id: string;
  readonly name: string;
  readonly scope: OperatorScope;
}

export interface AdminRefusal {
  readonly ok: false;
  /** 401: no usable token; 403: a valid token that may not do this (a proxy token, a scope). */
  readonly status: 401 | 403;
  readonly reason: AdminAuthFailure;
  readonly message: string;
}

/** What the admin server asks about each request to a protected path. */
export interface AdminAuthorizer {
  authorize(
    authorization: string | undefined,
    method: string | undefined,
  ): Promise<AdminGrant | AdminRefusal>;
  /** Calls `listener` once if the token `id` is revoked; returns the unsubscribe function. */
  onRevoked(id: string, listener: () => void): () => void;
}

const FORBIDDEN: ReadonlySet<AdminAuthFailure> = new Set(['wrong-kind', 'insufficient-scope']);

/** Operator tokens signed by the CA's token key, minus the revoked ones. */
export class OperatorTokenAuthorizer implements AdminAuthorizer {
  constructor(private readonly tokens: TokenAuthority) {}

  async authorize(
    authorization: string | undefined,
    method: string | undefined,
  ): Promise<AdminGrant | AdminRefusal> {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization?.trim() ?? '');
    if (!match) {
      return refuse(
        'missing-token',
        authorization === undefined
          ? 'no operator token: send `Authorization: Bearer <token>` (lucid-mesh token issue --operator)'
          : 'the Authorization header is not `Bearer <token>`',
      );
    }
    let token;
    try {
      token = await this.tokens.verifyOperator(match[1]!);
    } catch (err) {
      if (err instanceof TokenError) return refuse(err.reason, err.message);
      throw err;
    }
    const needed = requiredScope(method);
    if (!scopeAllows(token.scope, needed)) {
      return refuse(
        'insufficient-scope',
        `operator token ${JSON.stringify(token.name)} has scope ${token.scope}; ${method ?? 'this request'} needs ${needed} (lucid-mesh token issue --operator --scope ${needed})`,
      );
    }
    return { ok: true, id: token.id, name: token.name, scope: token.scope };
  }

  onRevoked(id: string, listener: () => void): () => void {
    // Revoked between the check and this call: at once.
    if (this.tokens.isRevoked(id)) {
      listener();
      return () => undefined;
    }
    const stop = this.tokens.onRevoked((revoked) => {
      if (!revoked.has(id)) return;
      stop();
      listener();
    });
    return stop;
  }
}

function refuse(reason: AdminAuthFailure, message: string): AdminRefusal {
  return { ok: false, status: FORBIDDEN.has(reason) ? 403 : 401, reason, message };
}
