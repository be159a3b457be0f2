// Proxy tokens: round trip, and every way a token can be wrong gets a clear, typed refusal.
import { createPrivateKey } from 'node:crypto';
import { SignJWT, UnsecuredJWT, decodeJwt, decodeProtectedHeader } from 'jose';
import { describe, expect, it } from 'vitest';
import { MemoryCaStore } from '../../src/ca/store.js';
import { TokenAuthority, tokenExpiryOf, tokenIdOf } from '../../src/ca/tokens.js';
import { ManualClock } from './manual-clock.js';
import { refusal } from './token-refusal.js';

const HOUR = 3_600_000;

describe('proxy tokens', () => {
  it('round-trips the service and expiry; ES256 with a key id', async () => {
    const clock = new ManualClock(Date.UTC(2030, 0, 1));
    const tokens = await TokenAuthority.open(new MemoryCaStore(), { clock });
    const token = await tokens.issue('web');
    expect(await tokens.verify(token)).toEqual({
      service: 'web',
      id: decodeJwt(token).jti,
      expiresAt: new Date(Date.UTC(2030, 0, 2)),
    });
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'ES256', typ: 'JWT', kid: tokens.keyId });
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({ iss: 'lucid-mesh', aud: 'lucid-mesh-xds', sub: 'web' });
    expect(claims.jti).toMatch(/^[0-9a-f]{32}$/);
    // Surrounding whitespace (a token read from a file) is fine.
    expect((await tokens.verify(`${token}\n`)).service).toBe('web');
  });

  it("reads a token's id and expiry without verifying it, as jose decodes them", async () => {
    const tokens = await TokenAuthority.open(new MemoryCaStore());
    const token = await tokens.issue('web');
    const { jti, exp } = decodeJwt(token);
    expect([tokenIdOf(` ${token}\n`), tokenExpiryOf(token)]).toEqual([jti, exp! * 1000]);
    const unsigned = new UnsecuredJWT({ jti: 'x' }).encode();
    expect(tokenIdOf(unsigned)).toBe('x');
    for (const bad of ['', 'a.b', 'a.b.c', `a.${Buffer.from('[1]').toString('base64url')}.c`]) {
      expect([tokenIdOf(bad), tokenExpiryOf(bad)]).toEqual([undefined, undefined]);
    }
  });

  it('shares the key through the store: another process verifies what this one issued', async () => {
    const store = new MemoryCaStore();
    const cli = await TokenAuthority.open(store);
    const server = await TokenAuthority.open(store);
    expect((await server.verify(await cli.issue('wallet', 7 * 24 * HOUR))).service).toBe('wallet');
  });

  it('refuses an expired token (reason "expired")', async () => {
    const clock = new ManualClock();
    const tokens = await TokenAuthority.open(new MemoryCaStore(), { clock });
    const token = await tokens.issue('web', HOUR);
    await clock.advance(HOUR + 1000);
    const err = await refusal(tokens.verify(token));
    expect(err.reason).toBe('expired');
    expect(err.message).toMatch(/^proxy token for "web" expired at \d{4}-/);
  });

  it('refuses a token signed by another CA store (reason "bad-signature")', async () => {
    const ours = await TokenAuthority.open(new MemoryCaStore());
    const theirs = await TokenAuthority.open(new MemoryCaStore());
    const err = await refusal(ours.verify(await theirs.issue('web')));
    expect(err.reason).toBe('bad-signature');
    expect(err.message).toContain('signature does not verify');
  });

  it('refuses a token whose service was edited (reason "bad-signature")', async () => {
    const tokens = await TokenAuthority.open(new MemoryCaStore());
    const [header, payload, signature] = (await tokens.issue('web')).split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString());
    const forged = Buffer.from(JSON.stringify({ ...claims, sub: 'wallet' })).toString('base64url');
    expect((await refusal(tokens.verify(`${header}.${forged}.${signature}`))).reason).toBe(
      'bad-signature',
    );
  });

  it('refuses garbage, empty and unsigned tokens (reason "malformed")', async () => {
    const tokens = await TokenAuthority.open(new MemoryCaStore());
    expect((await refusal(tokens.verify(''))).message).toBe('proxy token is empty');
    expect((await refusal(tokens.verify('not-a-jwt'))).reason).toBe('malformed');
    const unsigned = new UnsecuredJWT({})
      .setIssuer('lucid-mesh')
      .setAudience('lucid-mesh-xds')
      .setSubject('web')
      .setExpirationTime('1h')
      .encode();
    expect((await refusal(tokens.verify(unsigned))).reason).toBe('malformed');
  });

  it('refuses a validly signed token for another audience (reason "invalid-claims")', async () => {
    const store = new MemoryCaStore();
    const tokens = await TokenAuthority.open(store);
    const key = createPrivateKey(await store.loadOrCreateTokenKey(async () => ''));
    const other = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256' })
      .setIssuer('lucid-mesh')
      .setAudience('someone-else')
      .setSubject('web')
      .setJti('0123456789abcdef0123456789abcdef')
      .setExpirationTime('1h')
      .sign(key);
    const err = await refusal(tokens.verify(other));
    expect(err.reason).toBe('invalid-claims');
    expect(err.message).toContain('"aud"');
  });

  it('will not mint tokens for invalid services or silly lifetimes', async () => {
    const tokens = await TokenAuthority.open(new MemoryCaStore());
    await expect(tokens.issue('Web')).rejects.toThrow(/"Web"/);
    await expect(tokens.issue('web', 0)).rejects.toThrow(/between 1 s and 3650 d/);
  });
});
