// `lucid-mesh ca show|rotate` and `lucid-mesh token issue`: in-process for the details, as real
// processes for exit codes and for the cross-process rotation a running server must notice.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { CertificateAuthority } from '../../src/ca/authority.js';
import { FileCaStore } from '../../src/ca/file-store.js';
import { LeafManager, type CaChange } from '../../src/ca/leaf-manager.js';
import { TokenAuthority } from '../../src/ca/tokens.js';
import { caCommand, tokenCommand, type CaCommandIo } from '../../src/cli/ca-command.js';
import { runCommand } from '../support/run-command.js';
import { cliEntry } from '../support/tools.js';
import { hasOpenssl, openssl, tempDir } from './helpers.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const entry = cliEntry;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

const run = (make: (io: CaCommandIo) => Command, args: string[]): Promise<Result> =>
  runCommand(make, args);

const ca = (...args: string[]) => run(caCommand, args);
const token = (...args: string[]) => run(tokenCommand, args);

function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', entry, ...args],
      { cwd: repoRoot, timeout: 30_000, env: { ...process.env, ...env } },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe('lucid-mesh ca', () => {
  it('show: roots and issued leaves, as a table and as JSON', async () => {
    const dir = tempDir();
    const store = new FileCaStore(dir);
    const authority = await CertificateAuthority.open({ store });
    const manager = await LeafManager.start({ ca: authority, watchStore: false });
    const leaf = await manager.current('web');
    await manager.whenIdle();
    manager.stop();

    const text = await ca('show', '--data-dir', dir);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`CA store: ${store.location}`);
    const root = authority.activeRoot();
    expect(text.stdout).toMatch(
      new RegExp(
        `${root.serial}\\s+active\\s+generated\\s+${root.notAfter.toISOString()}\\s+in (3649d 23h|3650d)\\s`,
      ),
    );
    expect(text.stdout).toContain(root.subject);
    expect(text.stdout).toMatch(
      new RegExp(
        `web\\s+${leaf.serial}\\s+${leaf.notAfter.toISOString()}\\s+in (23h 59m|1d)\\s+${root.serial}`,
      ),
    );

    const json = JSON.parse((await ca('show', '--data-dir', dir, '--json')).stdout);
    expect(json.roots).toEqual([expect.objectContaining({ serial: root.serial, state: 'active' })]);
    expect(json.leaves).toEqual([expect.objectContaining({ service: 'web', serial: leaf.serial })]);
  });

  it('show on an empty data dir says how a CA comes to be, exit 1, creates nothing', async () => {
    const dir = `${tempDir()}/none`;
    const res = await ca('show', '--data-dir', dir);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^lucid-mesh ca show: no CA in .*none\/ca yet/);
    expect(await new FileCaStore(dir).loadRoots()).toEqual([]);
  });

  it('rotate: new active root, old one retiring; creates the first root on an empty store', async () => {
    const dir = tempDir();
    const created = await ca('rotate', '--data-dir', dir);
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/^No CA in .* yet: created root [0-9a-f]{32}/);
    const [first] = await new FileCaStore(dir).loadRoots();

    const rotated = await ca('rotate', '--data-dir', dir);
    expect(rotated.code).toBe(0);
    const roots = await new FileCaStore(dir).loadRoots();
    const active = roots.find((r) => r.state === 'active')!;
    expect(rotated.stdout).toContain(`New active root: ${active.serial}`);
    expect(rotated.stdout).toContain(`Retiring: ${first!.serial}.`);
    expect(rotated.stdout).toContain(`Every control plane serving from ${dir}`);
    expect(roots.map((r) => [r.serial, r.state])).toEqual([
      [first!.serial, 'retiring'],
      [active.serial, 'active'],
    ]);
  });

  it.skipIf(!hasOpenssl)('rotate to an operator CA; then a bare rotate is refused', async () => {
    const dir = tempDir();
    await ca('rotate', '--data-dir', dir);
    const pki = tempDir();
    openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key'], pki);
    openssl(
      [
        'req',
        '-x509',
        '-new',
        '-key',
        'ca.key',
        '-days',
        '30',
        '-subj',
        '/CN=Ops Root',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign',
        '-out',
        'ca.crt',
      ],
      pki,
    );
    const rotateToOpsRoot = () =>
      ca('rotate', '--data-dir', dir, '--ca-cert', `${pki}/ca.crt`, '--ca-key', `${pki}/ca.key`);
    const res = await rotateToOpsRoot();
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('(CN=Ops Root)');
    const again = await rotateToOpsRoot();
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(
      /^lucid-mesh ca rotate: --ca-cert: [0-9a-f]+ is already the active root\n$/,
    );
    const bare = await ca('rotate', '--data-dir', dir);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toMatch(
      /the active root [0-9a-f]+ is operator-provided: give the new CA with --ca-cert\/--ca-key/,
    );
  });

  it('rotate: usage errors name the flag and value, exit 2', async () => {
    const dir = tempDir();
    const res = await ca(
      'rotate',
      '--data-dir',
      dir,
      '--ca-cert',
      '/nonexistent/ca.crt',
      '--ca-key',
      '/x',
    );
    expect(res).toMatchObject({
      code: 2,
      stderr: 'lucid-mesh ca rotate: --ca-cert: cannot read "/nonexistent/ca.crt" (ENOENT)\n',
    });
    const half = await ca('rotate', '--data-dir', dir, '--ca-key', '/x');
    expect(half).toMatchObject({
      code: 2,
      stderr: 'lucid-mesh ca rotate: --ca-cert: required with --ca-key "/x"\n',
    });
    const unknown = await ca('show', '--bogus');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown option '--bogus'");
  });
});

describe('lucid-mesh token issue', () => {
  it('prints a token the server verifies for that service', async () => {
    const dir = tempDir();
    const res = await token('issue', '--service', 'web', '--ttl', '2h', '--data-dir', dir);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    const verified = await (await TokenAuthority.open(new FileCaStore(dir))).verify(res.stdout);
    expect(verified.service).toBe('web');
    const left = verified.expiresAt.getTime() - Date.now();
    expect(left).toBeGreaterThan(2 * 3_600_000 - 5_000);
    expect(left).toBeLessThanOrEqual(2 * 3_600_000);
  });

  it('defaults to 24 h', async () => {
    const dir = tempDir();
    const res = await token('issue', '--service', 'api', '--data-dir', dir);
    const verified = await (await TokenAuthority.open(new FileCaStore(dir))).verify(res.stdout);
    expect(verified.expiresAt.getTime() - Date.now()).toBeGreaterThan(24 * 3_600_000 - 5_000);
  });

  it('usage errors name the flag and value, exit 2', async () => {
    const dir = tempDir();
    expect(await token('issue', '--data-dir', dir)).toMatchObject({
      code: 2,
      stderr: 'lucid-mesh token issue: --service: required (or --operator for an operator token)\n',
    });
    expect(await token('issue', '--service', 'Web_1', '--data-dir', dir)).toMatchObject({
      code: 2,
      stderr:
        'lucid-mesh token issue: --service: expected a DNS label (a-z, 0-9, -), got "Web_1"\n',
    });
    const ttl = await token('issue', '--service', 'web', '--ttl', '5 weeks', '--data-dir', dir);
    expect(ttl.code).toBe(2);
    expect(ttl.stderr).toContain(
      '--ttl: expected a duration from 1s to 3650d like 30m, 24h or 7d, got "5 weeks"',
    );
  });
});

describe('lucid-mesh token issue --operator, revoke, list', () => {
  it('--operator [--scope] [--name]: an operator token; read by default', async () => {
    const dir = tempDir();
    const tokens = await TokenAuthority.open(new FileCaStore(dir));
    const plain = await token('issue', '--operator', '--data-dir', dir);
    expect(plain.code).toBe(0);
    expect(await tokens.verifyOperator(plain.stdout)).toMatchObject({
      name: 'operator',
      scope: 'read',
    });
    const admin = await token(
      'issue',
      '--operator',
      '--scope',
      'admin',
      '--name',
      'deploy-bot',
      '--ttl',
      '1h',
      '--data-dir',
      dir,
    );
    const verified = await tokens.verifyOperator(admin.stdout);
    expect(verified).toMatchObject({ name: 'deploy-bot', scope: 'admin' });
    expect(verified.expiresAt.getTime() - Date.now()).toBeLessThanOrEqual(3_600_000);
    // Not a proxy token.
    await expect(tokens.verify(admin.stdout)).rejects.toThrow(/this is an operator token/);
  });

  it('usage errors: kinds mixed, scope or name without --operator, bad values', async () => {
    const dir = tempDir();
    const cases: Array<[string[], string]> = [
      [
        ['--operator', '--service', 'web'],
        '--service: a token is for a service or an operator, not both',
      ],
      [['--service', 'web', '--scope', 'admin'], '--scope: only with --operator'],
      [['--service', 'web', '--name', 'x'], '--name: only with --operator'],
      [['--operator', '--scope', 'root'], '--scope: expected one of read | admin, got "root"'],
      [
        ['--operator', '--name', 'a b'],
        '--name: expected 1-64 of A-Z a-z 0-9 . _ @ + - starting with a letter or digit, got "a b"',
      ],
    ];
    for (const [args, message] of cases) {
      const res = await token('issue', ...args, '--data-dir', dir);
      expect(res.code, args.join(' ')).toBe(2);
      expect(res.stderr).toMatch(/^lucid-mesh token issue: .*\n$/);
      expect(res.stderr).toContain(message);
    }
  });

  it('list shows ids, kinds, subjects, scopes, expiry and state; revoke --id marks one revoked', async () => {
    const dir = tempDir();
    const web = await token('issue', '--service', 'web', '--data-dir', dir);
    const alice = await token('issue', '--operator', '--name', 'alice', '--data-dir', dir);
    const webId = decodeJwt(web.stdout.trim()).jti!;
    const aliceId = decodeJwt(alice.stdout.trim()).jti!;

    const revoked = await token('revoke', '--id', aliceId, '--data-dir', dir);
    expect(revoked).toMatchObject({ code: 0, stdout: `Revoked ${aliceId}.\n` });
    expect((await token('revoke', '--id', aliceId, '--data-dir', dir)).stdout).toBe(
      `Token ${aliceId} was already revoked.\n`,
    );
    await expect(
      (await TokenAuthority.open(new FileCaStore(dir))).verifyOperator(alice.stdout),
    ).rejects.toThrow(/was revoked/);

    const list = await token('list', '--data-dir', dir);
    expect(list.code).toBe(0);
    const lines = list.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ {2}ID +KIND +SUBJECT +SCOPE +EXPIRES AT +EXPIRES +STATE$/);
    expect(lines[1]).toMatch(
      new RegExp(`^  ${webId} +proxy +web +- +\\S+Z +in (1d|23h 59m) +valid$`),
    );
    expect(lines[2]).toMatch(
      new RegExp(`^  ${aliceId} +operator +alice +read +\\S+Z +in (1d|23h 59m) +revoked \\d{4}-`),
    );
    const json = JSON.parse((await token('list', '--json', '--data-dir', dir)).stdout) as {
      tokens: Array<{ id: string; state: string; kind: string }>;
    };
    expect(json.tokens.map((t) => [t.id, t.kind, t.state])).toEqual([
      [webId, 'proxy', 'valid'],
      [aliceId, 'operator', 'revoked'],
    ]);
  });

  it('revoke: --id required and checked; an unknown id is revoked with a note', async () => {
    const dir = tempDir();
    expect(await token('revoke', '--data-dir', dir)).toMatchObject({
      code: 2,
      stderr: 'lucid-mesh token revoke: --id: required (see `token list`)\n',
    });
    expect(await token('revoke', '--id', 'abc', '--data-dir', dir)).toMatchObject({
      code: 2,
      stderr:
        'lucid-mesh token revoke: --id: expected a token id (32 lowercase hex digits, as `token list` shows), got "abc"\n',
    });
    // A store a control plane serves from (it holds a root); elsewhere: test/cli/token-data-dir.
    expect((await ca('rotate', '--data-dir', dir)).code).toBe(0);
    const unknown = 'ffffffffffffffffffffffffffffffff';
    const res = await token('revoke', '--id', unknown, '--data-dir', dir);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain(`Revoked ${unknown} (not in the token log of`);
    expect((await token('list', '--data-dir', dir)).stdout).toContain(`${unknown}  ?`);
  });
});

describe('as processes', () => {
  it('exit codes: 0 ok, 2 usage, 1 failure; LUCID_DATA_DIR picks the store', async () => {
    const dir = tempDir();
    const env = { LUCID_DATA_DIR: dir };
    expect((await runCli(['ca', 'show'], env)).code).toBe(1);
    expect((await runCli(['ca', 'rotate'], env)).code).toBe(0);
    const show = await runCli(['ca', 'show'], env);
    expect(show.code).toBe(0);
    expect(show.stdout).toContain(`CA store: ${dir}/ca`);
    expect((await runCli(['token', 'issue', '--service', 'BAD'], env)).code).toBe(2);
    expect((await runCli(['ca', 'show', '--nope'], env)).code).toBe(2);
    expect((await runCli(['ca', 'rotate', '--help'], env)).code).toBe(0);
  });

  it('a server notices `lucid-mesh ca rotate` run as another process', async () => {
    const dir = tempDir();
    const authority = await CertificateAuthority.open({ store: new FileCaStore(dir) });
    const manager = await LeafManager.start({ ca: authority, rotationDelayMs: 60_000 });
    try {
      const oldRoot = authority.activeRoot().serial;
      await manager.current('web');
      const changes: CaChange[] = [];
      manager.onChange((c) => changes.push(c));
      const res = await runCli(['ca', 'rotate', '--data-dir', dir]);
      expect(res.code).toBe(0);
      const deadline = Date.now() + 5000;
      while (changes.length === 0 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      expect(changes).toEqual([{ bundleChanged: true }]);
      expect(authority.activeRoot().serial).not.toBe(oldRoot);
      expect(authority.roots().map((r) => r.serial)).toContain(oldRoot);
    } finally {
      manager.stop();
    }
  });
});
