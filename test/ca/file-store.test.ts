// The file store: what lands on disk with which modes, surviving restarts, and several
// processes (here: store instances) updating the root set without losing each other's writes.
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CertificateAuthority } from '../../src/ca/authority.js';
import { FILE_STORE_LAYOUT, FileCaStore } from '../../src/ca/file-store.js';
import { generateRoot, withNewActive } from '../../src/ca/roots.js';
import { TokenAuthority } from '../../src/ca/tokens.js';
import { tempDir } from './helpers.js';

const mode = (path: string) => statSync(path).mode & 0o777;

describe('FileCaStore', () => {
  it('persists the root across restarts; keys 0600, directories 0700', async () => {
    const dataDir = join(tempDir(), 'state');
    const first = await CertificateAuthority.open({ store: new FileCaStore(dataDir) });
    const serial = first.activeRoot().serial;
    await TokenAuthority.open(new FileCaStore(dataDir));

    const keyFile = join(dataDir, FILE_STORE_LAYOUT.rootKey(serial));
    expect(mode(keyFile)).toBe(0o600);
    expect(mode(join(dataDir, FILE_STORE_LAYOUT.tokenKey))).toBe(0o600);
    expect(mode(join(dataDir, 'ca'))).toBe(0o700);
    expect(mode(join(dataDir, 'ca', 'keys'))).toBe(0o700);
    expect(mode(dataDir)).toBe(0o700);
    // roots.json and the bundle hold no secrets.
    const rootsJson = readFileSync(join(dataDir, FILE_STORE_LAYOUT.roots), 'utf8');
    expect(rootsJson).not.toContain('PRIVATE KEY');
    expect(readFileSync(join(dataDir, FILE_STORE_LAYOUT.bundle), 'utf8')).toBe(
      first.trustBundlePem(),
    );

    // A "restart": a new store object on the same directory uses the same root and key.
    const second = await CertificateAuthority.open({ store: new FileCaStore(dataDir) });
    expect(second.activeRoot().serial).toBe(serial);
    const leaf = await second.issueLeaf('web');
    const root = new X509Certificate(first.trustBundlePem());
    expect(new X509Certificate(leaf.certChainPem).verify(root.publicKey)).toBe(true);
  });

  it('keeps keys 0600 under a permissive umask', async () => {
    const old = process.umask(0o000);
    try {
      const dataDir = tempDir();
      const ca = await CertificateAuthority.open({ store: new FileCaStore(dataDir) });
      expect(mode(join(dataDir, FILE_STORE_LAYOUT.rootKey(ca.activeRoot().serial)))).toBe(0o600);
    } finally {
      process.umask(old);
    }
  });

  it('deletes a dropped root key only after roots.json stopped naming it', async () => {
    const dataDir = tempDir();
    const ca = await CertificateAuthority.open({ store: new FileCaStore(dataDir) });
    const old = ca.activeRoot().serial;
    await ca.rotateRoot();
    expect(existsSync(join(dataDir, FILE_STORE_LAYOUT.rootKey(old)))).toBe(true);
    await ca.retireRoot(old);
    expect(existsSync(join(dataDir, FILE_STORE_LAYOUT.rootKey(old)))).toBe(false);
    expect(readFileSync(join(dataDir, FILE_STORE_LAYOUT.roots), 'utf8')).not.toContain(old);
  });

  it('serialises concurrent root updates from different store instances (no lost update)', async () => {
    const dataDir = tempDir();
    await CertificateAuthority.open({ store: new FileCaStore(dataDir) });
    const stores = [1, 2, 3, 4].map(() => new FileCaStore(dataDir));
    const added = await Promise.all(
      stores.map(async (store) => {
        const root = await generateRoot({ now: Date.now() });
        await store.updateRoots(async (roots) => {
          await new Promise((r) => setTimeout(r, 15)); // widen the race window
          return withNewActive(roots, root, Date.now());
        });
        return root.serial;
      }),
    );
    const roots = await new FileCaStore(dataDir).loadRoots();
    expect(roots).toHaveLength(5);
    for (const serial of added) expect(roots.map((r) => r.serial)).toContain(serial);
    expect(roots.filter((r) => r.state === 'active')).toHaveLength(1);
    expect(existsSync(join(dataDir, 'ca', '.lock'))).toBe(false);
  });

  it('breaks a lock left behind by a dead process', async () => {
    const dataDir = tempDir();
    const store = new FileCaStore(dataDir, { lockTimeoutMs: 500 });
    await CertificateAuthority.open({ store });
    writeFileSync(join(dataDir, 'ca', '.lock'), '999999999\n');
    const root = await generateRoot({ now: Date.now() });
    const roots = await store.updateRoots((r) => withNewActive(r, root, Date.now()));
    expect(roots).toHaveLength(2);
  });

  it('waits for, then gives up on, a lock held by a live process', async () => {
    const dataDir = tempDir();
    const store = new FileCaStore(dataDir, { lockTimeoutMs: 200 });
    await CertificateAuthority.open({ store });
    writeFileSync(join(dataDir, 'ca', '.lock'), `${process.pid}\n`);
    await expect(store.updateRoots(() => [])).rejects.toThrow(
      `CA store is locked by pid ${process.pid}`,
    );
  });

  it('reports a damaged roots.json with the path and what is wrong', async () => {
    const dataDir = tempDir();
    await CertificateAuthority.open({ store: new FileCaStore(dataDir) });
    const path = join(dataDir, FILE_STORE_LAYOUT.roots);
    writeFileSync(path, '{"version":1,"roots":[{"serial":"zz"}]}');
    await expect(new FileCaStore(dataDir).loadRoots()).rejects.toThrow(
      `${path}: unexpected content at roots.0.serial`,
    );
    writeFileSync(path, '{nope');
    await expect(new FileCaStore(dataDir).loadRoots()).rejects.toThrow(`${path}: not valid JSON`);
  });

  it('watchRoots sees another instance rotate (file events), not our unrelated writes', async () => {
    const dataDir = tempDir();
    const server = new FileCaStore(dataDir);
    await CertificateAuthority.open({ store: server });
    let calls = 0;
    const unwatch = server.watchRoots(() => calls++);
    try {
      await new Promise((r) => setTimeout(r, 50));
      await server.saveLeaves([]);
      await new Promise((r) => setTimeout(r, 100));
      expect(calls).toBe(0);
      const cli = await CertificateAuthority.open({ store: new FileCaStore(dataDir) });
      await cli.rotateRoot();
      const deadline = Date.now() + 2000;
      while (calls === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(calls).toBeGreaterThan(0);
    } finally {
      unwatch();
    }
  });

  it('creates the token key once, even when several processes race for it', async () => {
    const dataDir = tempDir();
    const keys = await Promise.all(
      [1, 2, 3].map(() => TokenAuthority.open(new FileCaStore(dataDir))),
    );
    expect(new Set(keys.map((k) => k.keyId)).size).toBe(1);
  });
});
