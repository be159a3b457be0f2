// `token issue` and `token revoke` pointed at a data directory no control plane serves from
// (a mistyped --data-dir, or the default one while serve runs with another): revoking there
// printed "Revoked" and exit 0 while the token stayed valid where it is checked; issuing there
// minted, silently, a token signed by a new key. Now revoke refuses (exit 1, one line, nothing
// created) unless that store issued the token, and issue says why the token may be refused.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli-process.js';

describe('token commands on a data directory no control plane serves from', () => {
  const root = mkdtempSync(join(tmpdir(), 'lucid-token-dir-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('issue: the token on stdout, a note on stderr naming the store; none where a CA is', async () => {
    const fresh = join(root, 'fresh');
    const r = await runCli(['token', 'issue', '--service', 'web', '--data-dir', fresh]);
    expect(r.code, r.stderr).toBe(0);
    expect(decodeJwt(r.stdout.trim()).sub).toBe('web');
    expect(r.stderr).toBe(
      `lucid-mesh token issue: note: no control plane has served from ${join(fresh, 'ca')} yet: ` +
        'one serving from another --data-dir (or --state store) refuses this token\n',
    );

    const served = join(root, 'served');
    const rotate = await runCli(['ca', 'rotate', '--data-dir', served]); // creates the CA
    expect(rotate.code, rotate.stderr).toBe(0);
    const quiet = await runCli(['token', 'issue', '--service', 'web', '--data-dir', served]);
    expect(quiet).toMatchObject({ code: 0, stderr: '' });
  });

  it('revoke: refused (exit 1, nothing created) where the token was not issued; done where it was', async () => {
    const issuedIn = join(root, 'issued-in');
    const issued = await runCli(['token', 'issue', '--operator', '--data-dir', issuedIn]);
    expect(issued.code, issued.stderr).toBe(0);
    const id = decodeJwt(issued.stdout.trim()).jti!;

    const elsewhere = join(root, 'typo');
    const r = await runCli(['token', 'revoke', '--id', id, '--data-dir', elsewhere]);
    expect(r).toMatchObject({
      code: 1,
      stdout: '',
      stderr:
        `lucid-mesh token revoke: no control plane has served from ${join(elsewhere, 'ca')} and ` +
        `no token ${id} was issued there, so revoking it there changes nothing: give serve's ` +
        '--data-dir (or --state flags)\n',
    });
    expect(existsSync(elsewhere)).toBe(false);

    const done = await runCli(['token', 'revoke', '--id', id, '--data-dir', issuedIn]);
    expect(done).toMatchObject({ code: 0, stdout: `Revoked ${id}.\n` });
  });
});
