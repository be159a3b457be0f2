// Replicas with separate data dirs accept each other's proxy tokens when they share --token-key.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openCa } from '../../src/ca/open.js';

const dir = () => mkdtempSync(join(tmpdir(), 'lucid-token-key-'));

describe('--token-key', () => {
  it('makes tokens from one replica valid on another; without it they are not', async () => {
    const keyFile = join(dir(), 'token.key');
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const r1 = await openCa({ dataDir: dir(), tokenKeyFile: keyFile });
    const r2 = await openCa({ dataDir: dir(), tokenKeyFile: keyFile });
    const lonely = await openCa({ dataDir: dir() });
    const token = await r1.tokens.issue('web');
    expect((await r2.tokens.verify(token)).service).toBe('web');
    await expect(lonely.tokens.verify(token)).rejects.toThrow();
    for (const ca of [r1, r2, lonely]) ca.stop();
  });

  it('rejects a key that cannot sign ES256, naming the flag and the file', async () => {
    const keyFile = join(dir(), 'rsa.key');
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    await expect(openCa({ dataDir: dir(), tokenKeyFile: keyFile })).rejects.toThrow(
      `--token-key: ${JSON.stringify(keyFile)}: expected an EC P-256 key (ES256), got rsa`,
    );
  });
});
