// Shared helpers for the CA tests: temp dirs, OpenSSL as an independent verifier.
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { splitPemCertificates } from '../../src/ca/crypto.js';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

export function tempDir(prefix = 'lucid-ca-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

export const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

export function openssl(args: string[], cwd?: string): string {
  return execFileSync('openssl', args, {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/**
 * `openssl verify -x509_strict` of a leaf chain (leaf first, then intermediates) against a
 * trust bundle, for a TLS purpose. Returns OpenSSL's output; throws when verification fails.
 */
export function opensslVerify(
  certChainPem: string,
  bundlePem: string,
  purpose: 'sslserver' | 'sslclient',
): string {
  const dir = tempDir('lucid-ca-verify-');
  const [leaf, ...intermediates] = splitPemCertificates(certChainPem);
  writeFileSync(join(dir, 'leaf.pem'), leaf + '\n');
  writeFileSync(join(dir, 'bundle.pem'), bundlePem);
  const args = ['verify', '-x509_strict', '-purpose', purpose, '-CAfile', 'bundle.pem'];
  if (intermediates.length > 0) {
    writeFileSync(join(dir, 'untrusted.pem'), intermediates.join('\n') + '\n');
    args.push('-untrusted', 'untrusted.pem');
  }
  return openssl([...args, 'leaf.pem'], dir);
}

/** Whether `certPem` was signed by one of the bundle's certificates (signature + names). */
export function chainsTo(certPem: string, bundlePem: string): boolean {
  const cert = new X509Certificate(certPem);
  return splitPemCertificates(bundlePem).some((pem) => {
    const root = new X509Certificate(pem);
    return cert.checkIssued(root) && cert.verify(root.publicKey);
  });
}

export function firstCert(pem: string): X509Certificate {
  return new X509Certificate(splitPemCertificates(pem)[0]!);
}
