// Signing one leaf certificate (an X.509-SVID) for a service identity.
import type * as X509 from '@peculiar/x509';
import { randomSerialHex, type KeyType } from './crypto.js';
import { intermediatesPem } from './roots.js';
import { spiffeId, type Identity } from './spiffe.js';
import type { IssuedLeaf, StoredRoot } from './types.js';
import type { SigningKey } from './x509.js';

/** A root ready to sign: parsed certificate and imported key, loaded once per root. */
export interface LoadedSigner {
  readonly root: StoredRoot;
  readonly cert: X509.X509Certificate;
  readonly key: SigningKey;
  readonly authorityKeyId: X509.AuthorityKeyIdentifierExtension;
  readonly intermediatesPem: string;
}

export async function loadSigner(root: StoredRoot): Promise<LoadedSigner> {
  // The x509 library is loaded here, when the CA first signs (crypto.ts says why).
  const { importPrivateKeyPem, x509 } = await import('./x509.js');
  const cert = new x509.X509Certificate(root.certPem);
  const key = await importPrivateKeyPem(root.keyPem);
  const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension);
  const authorityKeyId = ski
    ? new x509.AuthorityKeyIdentifierExtension(ski.keyId)
    : await x509.AuthorityKeyIdentifierExtension.create(key.publicKey);
  return { root, cert, key, authorityKeyId, intermediatesPem: intermediatesPem(root) };
}

export interface LeafRequest {
  readonly service: string;
  readonly identity: Identity;
  readonly dnsDomain: string;
  readonly keyType: KeyType;
  readonly ttlMs: number;
  readonly now: number;
}

/**
 * Leaves are backdated a little for peers whose clocks lag: 10 % of the TTL, at most a minute
 * (so a 20 s test TTL is not mostly in the past).
 */
export function backdateMs(ttlMs: number): number {
  return Math.min(60_000, Math.floor(ttlMs / 10));
}

export async function signLeaf(signer: LoadedSigner, req: LeafRequest): Promise<IssuedLeaf> {
  const { generateKeyPair, privateKeyToPem, x509 } = await import('./x509.js');
  const keys = await generateKeyPair(req.keyType);
  const id = spiffeId(req.identity, req.service);
  const dnsName = `${req.service}.${req.dnsDomain}`;
  const serial = randomSerialHex();
  const notBefore = new Date(req.now - backdateMs(req.ttlMs));
  // Never outlive the signing CA: a leaf valid past its root fails validation anyway.
  const notAfter = new Date(Math.min(req.now + req.ttlMs, signer.cert.notAfter.getTime()));
  const usages =
    keys.keyType === 'rsa'
      ? x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment
      : x509.KeyUsageFlags.digitalSignature;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: `CN=${dnsName}, O=lucid-mesh`,
    issuer: signer.cert.subjectName,
    notBefore,
    notAfter,
    publicKey: keys.publicKey,
    signingKey: signer.key.privateKey,
    signingAlgorithm: signer.key.signingAlgorithm,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(usages, true),
      new x509.ExtendedKeyUsageExtension(
        [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
        false,
      ),
      new x509.SubjectAlternativeNameExtension(
        [
          { type: 'url', value: id },
          { type: 'dns', value: dnsName },
        ],
        false,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      signer.authorityKeyId,
    ],
  });
  return {
    service: req.service,
    spiffeId: id,
    certChainPem: cert.toString('pem') + '\n' + signer.intermediatesPem,
    privateKeyPem: await privateKeyToPem(keys.privateKey),
    serial,
    notBefore,
    notAfter,
    rootSerial: signer.root.serial,
  };
}
