// Leaf certificates as Envoy and OpenSSL see them: SANs, usages, serials, validity, chains.
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CertificateAuthority } from '../../src/ca/authority.js';
import { x509 } from '../../src/ca/x509.js';
import { leafTtlFromEnv, autoRotateFromEnv } from '../../src/ca/settings.js';
import { MemoryCaStore } from '../../src/ca/store.js';
import { chainsTo, firstCert, hasOpenssl, opensslVerify } from './helpers.js';

const HOUR = 3_600_000;

describe('CertificateAuthority', () => {
  it('creates one root on first open and reuses it afterwards', async () => {
    const store = new MemoryCaStore();
    const a = await CertificateAuthority.open({ store });
    const b = await CertificateAuthority.open({ store });
    expect(a.roots()).toHaveLength(1);
    expect(b.activeRoot().serial).toBe(a.activeRoot().serial);
    const root = new X509Certificate(a.trustBundlePem());
    expect(root.ca).toBe(true);
    expect(root.verify(root.publicKey)).toBe(true);
    // Roots live long (10 y); leaves are what rotate.
    expect(Date.parse(root.validTo) - Date.now()).toBeGreaterThan(9 * 365 * 24 * HOUR);
  });

  it('issues an ECDSA P-256 X.509-SVID with the SPIFFE URI SAN, DNS SAN and TLS usages', async () => {
    const ca = await CertificateAuthority.open({ store: new MemoryCaStore() });
    const leaf = await ca.issueLeaf('web');
    const cert = firstCert(leaf.certChainPem);

    expect(leaf.spiffeId).toBe('spiffe://lucid.internal/ns/default/svc/web');
    expect(cert.subjectAltName).toBe(
      'URI:spiffe://lucid.internal/ns/default/svc/web, DNS:web.lucid.internal',
    );
    expect(cert.ca).toBe(false);
    expect(cert.keyUsage?.sort()).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    const parsed = new x509.X509Certificate(cert.raw);
    expect(parsed.getExtension(x509.KeyUsagesExtension)?.usages).toBe(
      x509.KeyUsageFlags.digitalSignature,
    );
    const key = createPrivateKey(leaf.privateKeyPem);
    expect(key.asymmetricKeyType).toBe('ec');
    expect(key.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(leaf.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    // The key is the certificate's.
    expect(createPublicKey(key).export({ type: 'spki', format: 'der' })).toEqual(
      cert.publicKey.export({ type: 'spki', format: 'der' }),
    );
    // Signed by the active root, which the record names.
    expect(chainsTo(leaf.certChainPem, ca.trustBundlePem())).toBe(true);
    expect(leaf.rootSerial).toBe(ca.activeRoot().serial);
    // A root-signed leaf's chain is the leaf alone.
    expect(leaf.certChainPem.match(/BEGIN CERTIFICATE/g)).toHaveLength(1);
  });

  it('gives random, positive serials of at least 64 bits, as OpenSSL prints them', async () => {
    const ca = await CertificateAuthority.open({ store: new MemoryCaStore() });
    const serials = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const leaf = await ca.issueLeaf('web');
      const cert = firstCert(leaf.certChainPem);
      expect(leaf.serial).toBe(cert.serialNumber.toLowerCase());
      expect(leaf.serial).toMatch(/^[0-9a-f]{32}$/);
      // Positive DER integer: top bit of the first octet clear, and not a zero octet.
      const first = parseInt(leaf.serial.slice(0, 2), 16);
      expect(first).toBeGreaterThan(0);
      expect(first).toBeLessThan(0x80);
      serials.add(leaf.serial);
    }
    expect(serials.size).toBe(20);
  });

  it('defaults to a 24 h lifetime, backdated a little for clock skew', async () => {
    const ca = await CertificateAuthority.open({ store: new MemoryCaStore() });
    const before = Date.now();
    const leaf = await ca.issueLeaf('api');
    const cert = firstCert(leaf.certChainPem);
    expect(new Date(cert.validTo).getTime()).toBe(
      Math.floor(leaf.notAfter.getTime() / 1000) * 1000,
    );
    expect(leaf.notAfter.getTime() - before).toBeGreaterThanOrEqual(24 * HOUR - 1000);
    expect(leaf.notAfter.getTime() - before).toBeLessThanOrEqual(24 * HOUR + 1000);
    expect(before - leaf.notBefore.getTime()).toBeGreaterThanOrEqual(59_000);
    expect(before - leaf.notBefore.getTime()).toBeLessThanOrEqual(61_000);
  });

  it('never issues a leaf that outlives its root', async () => {
    const ca = await CertificateAuthority.open({
      store: new MemoryCaStore(),
      rootTtlMs: 2 * HOUR,
    });
    const leaf = await ca.issueLeaf('web');
    expect(leaf.notAfter.getTime()).toBeLessThanOrEqual(ca.activeRoot().notAfter.getTime());
  });

  it('issues RSA 2048 leaves with keyEncipherment when asked', async () => {
    const ca = await CertificateAuthority.open({ store: new MemoryCaStore(), keyType: 'rsa-2048' });
    const leaf = await ca.issueLeaf('legacy');
    const key = createPrivateKey(leaf.privateKeyPem);
    expect(key.asymmetricKeyType).toBe('rsa');
    expect(key.asymmetricKeyDetails?.modulusLength).toBe(2048);
    const parsed = new x509.X509Certificate(firstCert(leaf.certChainPem).raw);
    expect(parsed.getExtension(x509.KeyUsagesExtension)?.usages).toBe(
      x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
    );
    expect(chainsTo(leaf.certChainPem, ca.trustBundlePem())).toBe(true);
  });

  it('uses the configured trust domain, namespace and DNS domain', async () => {
    const ca = await CertificateAuthority.open({
      store: new MemoryCaStore(),
      trustDomain: 'prod.example.org',
      namespace: 'payments',
      dnsDomain: 'mesh.example.org',
    });
    const leaf = await ca.issueLeaf('wallet');
    expect(firstCert(leaf.certChainPem).subjectAltName).toBe(
      'URI:spiffe://prod.example.org/ns/payments/svc/wallet, DNS:wallet.mesh.example.org',
    );
  });

  it('refuses bad service names and settings with messages that show the value', async () => {
    const ca = await CertificateAuthority.open({ store: new MemoryCaStore() });
    await expect(ca.issueLeaf('Web')).rejects.toThrow(/DNS label.*"Web"/);
    await expect(ca.issueLeaf('a/b')).rejects.toThrow(/"a\/b"/);
    await expect(
      CertificateAuthority.open({ store: new MemoryCaStore(), trustDomain: 'Bad Domain' }),
    ).rejects.toThrow(/trust domain.*"Bad Domain"/);
  });

  it.skipIf(!hasOpenssl)(
    'produces chains `openssl verify -x509_strict` accepts for both TLS roles',
    async () => {
      const ca = await CertificateAuthority.open({ store: new MemoryCaStore() });
      for (const service of ['web', 'api']) {
        const leaf = await ca.issueLeaf(service);
        expect(opensslVerify(leaf.certChainPem, ca.trustBundlePem(), 'sslserver')).toMatch(/OK/);
        expect(opensslVerify(leaf.certChainPem, ca.trustBundlePem(), 'sslclient')).toMatch(/OK/);
      }
      // Another CA's bundle does not verify it.
      const other = await CertificateAuthority.open({ store: new MemoryCaStore() });
      const leaf = await ca.issueLeaf('web');
      expect(() => opensslVerify(leaf.certChainPem, other.trustBundlePem(), 'sslclient')).toThrow();
    },
  );

  it('rotateRoot: new leaves use the new root, the bundle carries both', async () => {
    const ca = await CertificateAuthority.open({ store: new MemoryCaStore() });
    const oldSerial = ca.activeRoot().serial;
    const before = await ca.issueLeaf('web');
    const next = await ca.rotateRoot();
    expect(next.serial).not.toBe(oldSerial);
    expect(ca.roots().map((r) => [r.serial, r.state])).toEqual([
      [next.serial, 'active'],
      [oldSerial, 'retiring'],
    ]);
    const after = await ca.issueLeaf('web');
    expect(after.rootSerial).toBe(next.serial);
    // Old and new leaves both verify against the overlap bundle.
    expect(chainsTo(before.certChainPem, ca.trustBundlePem())).toBe(true);
    expect(chainsTo(after.certChainPem, ca.trustBundlePem())).toBe(true);
    expect(await ca.retireRoot(oldSerial)).toBe(true);
    expect(chainsTo(before.certChainPem, ca.trustBundlePem())).toBe(false);
    expect(await ca.retireRoot(next.serial)).toBe(false); // the active root is never retired
  });
});

describe('environment', () => {
  it('CERT_VALIDITY_DAYS overrides the leaf TTL; bad values name the variable and value', () => {
    expect(leafTtlFromEnv({})).toBe(24 * HOUR);
    expect(leafTtlFromEnv({ CERT_VALIDITY_DAYS: '90' })).toBe(90 * 24 * HOUR);
    expect(leafTtlFromEnv({ CERT_VALIDITY_DAYS: '0.5' })).toBe(12 * HOUR);
    for (const bad of ['0', '-1', 'ten', '1e3', '4000']) {
      expect(() => leafTtlFromEnv({ CERT_VALIDITY_DAYS: bad })).toThrow(
        `CERT_VALIDITY_DAYS: expected a number of days, more than 0 and at most 3650, got "${bad}"`,
      );
    }
  });

  it('AUTO_ROTATE_CERTS defaults to true', () => {
    expect(autoRotateFromEnv({})).toBe(true);
    expect(autoRotateFromEnv({ AUTO_ROTATE_CERTS: 'false' })).toBe(false);
    expect(autoRotateFromEnv({ AUTO_ROTATE_CERTS: '0' })).toBe(false);
    expect(autoRotateFromEnv({ AUTO_ROTATE_CERTS: 'TRUE' })).toBe(true);
    expect(() => autoRotateFromEnv({ AUTO_ROTATE_CERTS: 'maybe' })).toThrow(
      'AUTO_ROTATE_CERTS: expected true or false, got "maybe"',
    );
  });
});
