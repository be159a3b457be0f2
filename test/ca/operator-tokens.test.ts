// Operator tokens (the admin API's) next to proxy tokens (the xDS port's): one key, two kinds
// that refuse each other, scopes, and revocation through the store's token log, followed by
// every authority watching it (another process included).
import { createPrivateKey } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { SignJWT, decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import {
  OperatorTokenAuthorizer,
  requiredScope,
  scopeAllows,
  type AdminRefusal,
} from '../../src/admin/auth.js';
import { FILE_STORE_LAYOUT, FileCaStore } from '../../src/ca/file-store.js';
import { KEEP_EXPIRED_MS } from '../../src/ca/revocations.js';
import { MemoryCaStore } from '../../src/ca/store.js';
import { TokenAuthority } from '../../src/ca/tokens.js';
import { TokenAuthenticator } from '../../src/security/token-authenticator.js';
import { AuthError } from '../../src/xds/auth.js';
import { tempDir } from './helpers.js';
import { ManualClock } from './manual-clock.js';
import { refusal } from './token-refusal.js';

const HOUR = 3_600_000;

function bearer(token: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${token}`);
  return metadata;
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('operator tokens', () => {
  it('carry aud lucid-mesh-admin, the name as sub, a scope (default read) and a jti', async () => {
    const clock = new ManualClock(Date.UTC(2030, 0, 1));
    const tokens = await TokenAuthority.open(new MemoryCaStore(), { clock });
    const token = await tokens.issueOperator({ name: 'alice@example.com' });
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({
      iss: 'lucid-mesh',
      aud: 'lucid-mesh-admin',
      sub: 'alice@example.com',
      scope: 'read',
    });
    expect(claims.jti).toMatch(/^[0-9a-f]{32}$/);
    expect(await tokens.verifyOperator(token)).toEqual({
      name: 'alice@example.com',
      scope: 'read',
      id: claims.jti,
      expiresAt: new Date(Date.UTC(2030, 0, 2)),
    });
    const admin = await tokens.issueOperator({ scope: 'admin', ttlMs: HOUR });
    expect(await tokens.verifyOperator(admin)).toMatchObject({ name: 'operator', scope: 'admin' });
  });

  it('a proxy token is refused where an operator token is needed, and the reverse ("wrong-kind")', async () => {
    const tokens = await TokenAuthority.open(new MemoryCaStore());
    const proxy = await tokens.issue('web');
    const operator = await tokens.issueOperator();
    const asOperator = await refusal(tokens.verifyOperator(proxy));
    expect(asOperator.reason).toBe('wrong-kind');
    expect(asOperator.message).toContain('this is a proxy token for service "web"');
    const asProxy = await refusal(tokens.verify(operator));
    expect(asProxy.reason).toBe('wrong-kind');
    expect(asProxy.message).toContain('this is an operator token');
  });

  it('refuses forged claims: no jti, an unknown scope (signed with the right key)', async () => {
    const store = new MemoryCaStore();
    const tokens = await TokenAuthority.open(store);
    const key = createPrivateKey(await store.loadOrCreateTokenKey(async () => ''));
    const sign = (claims: Record<string, string>, jti?: string) => {
      const jwt = new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256' })
        .setIssuer('lucid-mesh')
        .setAudience('lucid-mesh-admin')
        .setSubject('mallory')
        .setExpirationTime('1h');
      return (jti ? jwt.setJti(jti) : jwt).sign(key);
    };
    const noJti = await refusal(tokens.verifyOperator(await sign({ scope: 'admin' })));
    expect(noJti.reason).toBe('invalid-claims');
    expect(noJti.message).toContain('"jti"');
    const root = await refusal(
      tokens.verifyOperator(await sign({ scope: 'root' }, '0123456789abcdef0123456789abcdef')),
    );
    expect(root.reason).toBe('invalid-claims');
    expect(root.message).toContain('claim "scope": expected read or admin, got "root"');
  });

  it('will not mint for bad names or scopes', async () => {
    const tokens = await TokenAuthority.open(new MemoryCaStore());
    await expect(tokens.issueOperator({ name: 'has space' })).rejects.toThrow(/"has space"/);
    await expect(tokens.issueOperator({ scope: 'root' as 'admin' })).rejects.toThrow(
      /read or admin, got "root"/,
    );
    await expect(tokens.issueOperator({ ttlMs: 0 })).rejects.toThrow(/between 1 s and 3650 d/);
  });
});

describe('scopes: decided in one place', () => {
  it('GET and HEAD need read; anything else admin; admin includes read', () => {
    expect(requiredScope('GET')).toBe('read');
    expect(requiredScope('HEAD')).toBe('read');
    for (const m of ['POST', 'PUT', 'DELETE', 'PATCH', undefined])
      expect(requiredScope(m)).toBe('admin');
    expect(scopeAllows('read', 'read')).toBe(true);
    expect(scopeAllows('admin', 'read')).toBe(true);
    expect(scopeAllows('admin', 'admin')).toBe(true);
    expect(scopeAllows('read', 'admin')).toBe(false);
  });

  it('the authorizer: 401 without/invalid/revoked, 403 for a proxy token or too small a scope', async () => {
    const tokens = await TokenAuthority.open(new MemoryCaStore());
    const auth = new OperatorTokenAuthorizer(tokens);
    const read = await tokens.issueOperator();
    const admin = await tokens.issueOperator({ scope: 'admin' });
    const refused = async (header: string | undefined, method = 'GET') => {
      const r = await auth.authorize(header, method);
      expect(r.ok).toBe(false);
      const { status, reason } = r as AdminRefusal;
      return { status, reason };
    };
    expect(await refused(undefined)).toEqual({ status: 401, reason: 'missing-token' });
    expect(await refused(`Basic ${read}`)).toEqual({ status: 401, reason: 'missing-token' });
    expect(await refused('Bearer nope')).toEqual({ status: 401, reason: 'malformed' });
    expect(await refused(`Bearer ${await tokens.issue('web')}`)).toEqual({
      status: 403,
      reason: 'wrong-kind',
    });
    expect(await refused(`Bearer ${read}`, 'POST')).toEqual({
      status: 403,
      reason: 'insufficient-scope',
    });
    expect(await auth.authorize(`Bearer ${read}`, 'GET')).toMatchObject({
      ok: true,
      scope: 'read',
    });
    expect(await auth.authorize(`bearer ${admin}`, 'POST')).toMatchObject({
      ok: true,
      scope: 'admin',
      name: 'operator',
    });
    await tokens.revoke(decodeJwt(read).jti!);
    expect(await refused(`Bearer ${read}`)).toEqual({ status: 401, reason: 'revoked' });
  });
});

describe('revocation', () => {
  it('a revoked token is refused by this authority and, through the store, by a watching one', async () => {
    const store = new MemoryCaStore();
    const cli = await TokenAuthority.open(store);
    const server = await TokenAuthority.open(store, { watch: true });
    const proxy = await cli.issue('web');
    const operator = await cli.issueOperator({ name: 'bob' });
    const seen: string[][] = [];
    server.onRevoked((ids) => seen.push([...ids]));
    expect((await server.verify(proxy)).service).toBe('web');

    const id = decodeJwt(proxy).jti!;
    expect(await cli.revoke(id)).toEqual({ known: true, alreadyRevoked: false });
    expect((await refusal(cli.verify(proxy))).reason).toBe('revoked');
    await until(() => server.isRevoked(id), 'the server to see the revocation');
    const err = await refusal(server.verify(proxy));
    expect(err.reason).toBe('revoked');
    expect(err.message).toBe(`proxy token ${id} ("web") was revoked`);
    expect(seen).toEqual([[id]]);
    // Other tokens are untouched.
    expect((await server.verifyOperator(operator)).name).toBe('bob');
    expect(await cli.revoke(id)).toEqual({ known: true, alreadyRevoked: true });
    server.stop();
  });

  it('the log lists every token issued (kind, subject, scope, expiry, revocation)', async () => {
    const clock = new ManualClock(Date.UTC(2030, 0, 1));
    const store = new MemoryCaStore();
    const tokens = await TokenAuthority.open(store, { clock });
    const web = decodeJwt(await tokens.issue('web', 2 * HOUR)).jti!;
    const ops = decodeJwt(await tokens.issueOperator({ name: 'ci', scope: 'admin' })).jti!;
    await tokens.revoke(ops);
    expect(await tokens.list()).toEqual([
      {
        id: web,
        kind: 'proxy',
        subject: 'web',
        issuedAt: '2030-01-01T00:00:00.000Z',
        expiresAt: '2030-01-01T02:00:00.000Z',
      },
      {
        id: ops,
        kind: 'operator',
        subject: 'ci',
        scope: 'admin',
        issuedAt: '2030-01-01T00:00:00.000Z',
        expiresAt: '2030-01-02T00:00:00.000Z',
        revokedAt: '2030-01-01T00:00:00.000Z',
      },
    ]);
    // An id the log never saw (a token from elsewhere) can still be revoked.
    const stranger = 'ffffffffffffffffffffffffffffffff';
    expect(await tokens.revoke(stranger)).toEqual({ known: false, alreadyRevoked: false });
    expect(tokens.isRevoked(stranger)).toBe(true);
    await expect(tokens.revoke('not-an-id')).rejects.toThrow(/32 lowercase hex digits/);

    // Records go once their token is long expired: the log stays bounded.
    await clock.advance(2 * HOUR + KEEP_EXPIRED_MS + 1000);
    await tokens.issue('api');
    const ids = (await tokens.list()).map((r) => r.subject ?? r.id);
    expect(ids).toEqual(['ci', stranger, 'api']);
  });

  it('file store: tokens.json (0644, no secrets), followed across "processes"', async () => {
    const dir = tempDir();
    const server = await TokenAuthority.open(new FileCaStore(dir, { pollIntervalMs: 100 }), {
      watch: true,
    });
    const cli = await TokenAuthority.open(new FileCaStore(dir));
    const token = await cli.issueOperator({ name: 'alice' });
    const id = decodeJwt(token).jti!;
    const path = join(dir, FILE_STORE_LAYOUT.tokens);
    expect(statSync(path).mode & 0o777).toBe(0o644);
    expect((await server.verifyOperator(token)).name).toBe('alice');
    await cli.revoke(id);
    await until(() => server.isRevoked(id), 'the server to read the revocation from tokens.json');
    expect((await refusal(server.verifyOperator(token))).reason).toBe('revoked');
    // A restarted server starts with the revocation.
    const restarted = await TokenAuthority.open(new FileCaStore(dir));
    expect(restarted.isRevoked(id)).toBe(true);
    server.stop();
  });
});

describe('xDS authenticator', () => {
  it('refuses an operator token and a revoked proxy token (UNAUTHENTICATED)', async () => {
    const tokens = await TokenAuthority.open(new MemoryCaStore());
    const authenticator = new TokenAuthenticator(tokens);
    const operator = await authenticator
      .authenticate(bearer(await tokens.issueOperator()))
      .catch((e: AuthError) => e);
    expect(operator).toBeInstanceOf(AuthError);
    expect(operator).toMatchObject({ code: grpc.status.UNAUTHENTICATED, reason: 'wrong-kind' });
    const proxy = await tokens.issue('web');
    expect(await authenticator.authenticate(bearer(proxy))).toBe('web');
    await tokens.revoke(decodeJwt(proxy).jti!);
    const revoked = await authenticator.authenticate(bearer(proxy)).catch((e: AuthError) => e);
    expect(revoked).toMatchObject({ code: grpc.status.UNAUTHENTICATED, reason: 'revoked' });
  });

  it("watch: tells an open stream its token was revoked, once; not other streams'", async () => {
    const store = new MemoryCaStore();
    const tokens = await TokenAuthority.open(store, { watch: true });
    const authenticator = new TokenAuthenticator(tokens);
    const web = await tokens.issue('web');
    const api = await tokens.issue('api');
    const calls: Array<[string, AuthError]> = [];
    const stopWeb = authenticator.watch(bearer(web), (e) => calls.push(['web', e]));
    authenticator.watch(bearer(api), (e) => calls.push(['api', e]));
    const other = await TokenAuthority.open(store);
    await other.revoke(decodeJwt(web).jti!);
    await until(() => calls.length > 0, 'the revocation to reach the watcher');
    await other.revoke('ffffffffffffffffffffffffffffffff');
    await new Promise((r) => setTimeout(r, 20));
    expect(calls.map(([who, e]) => [who, e.code, e.reason])).toEqual([
      ['web', grpc.status.UNAUTHENTICATED, 'revoked'],
    ]);
    stopWeb();
    // Already revoked when the stream starts watching: at once.
    const late: AuthError[] = [];
    authenticator.watch(bearer(web), (e) => late.push(e));
    expect(late.map((e) => e.reason)).toEqual(['revoked']);
    tokens.stop();
  });
});
