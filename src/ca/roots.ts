// Root (signing CA) certificates: generating one, accepting an operator's, and the views of a
// root set that callers need (trust bundle, info for `ca show`).
import { X509Certificate as NodeX509Certificate, createPublicKey } from 'node:crypto';
import {
  CaMaterialError,
  normalizeSerial,
  parseCertificate,
  randomSerialHex,
  spkiOf,
  splitPemCertificates,
} from './crypto.js';
import type { RootInfo, StoredRoot } from './types.js';

const DAY_MS = 86_400_000;
/** Ten years, like Consul's and Istio's self-signed roots; leaves are what rotate often. */
export const DEFAULT_ROOT_TTL_MS = 3650 * DAY_MS;
/** Roots are backdated this much, for hosts whose clocks run a little behind ours. */
const ROOT_BACKDATE_MS = 3_600_000;

export async function generateRoot(opts: { now: number; ttlMs?: number }): Promise<StoredRoot> {
  const { generateKeyPair, privateKeyToPem, x509 } = await import('./x509.js');
  const keys = await generateKeyPair('ecdsa-p256');
  const serial = randomSerialHex();
  // A distinct subject per root: chain building never confuses old and new during rotation.
  const name = `CN=lucid-mesh root CA ${serial.slice(0, 12)}, O=lucid-mesh`;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial,
    name,
    notBefore: new Date(opts.now - ROOT_BACKDATE_MS),
    notAfter: new Date(opts.now + (opts.ttlMs ?? DEFAULT_ROOT_TTL_MS)),
    keys,
    signingAlgorithm: keys.signingAlgorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return {
    serial,
    certPem: cert.toString('pem') + '\n',
    chainPem: '',
    keyPem: await privateKeyToPem(keys.privateKey),
    state: 'active',
    source: 'generated',
    addedAt: new Date(opts.now).toISOString(),
  };
}

/**
 * Checks an operator-provided CA and turns it into a root entry. `certPem` holds the signing
 * CA certificate first, then (if it is an intermediate) its issuers up to the self-signed root.
 * Throws CaMaterialError saying what is wrong; callers prefix the flag names.
 */
export async function operatorRoot(opts: {
  certPem: string;
  keyPem: string;
  now: number;
}): Promise<StoredRoot> {
  const blocks = splitPemCertificates(opts.certPem);
  if (blocks.length === 0) throw new CaMaterialError('no PEM certificate found');
  const certs = blocks.map((pem, i) => {
    try {
      return parseCertificate(pem);
    } catch (err) {
      throw new CaMaterialError(`certificate ${i + 1} is unreadable (${(err as Error).message})`);
    }
  });
  const signer = certs[0]!;
  if (!signer.ca)
    throw new CaMaterialError(
      `${nameOf(signer)} is not a CA certificate (basicConstraints CA:FALSE)`,
    );
  const { importPrivateKeyPem, x509 } = await import('./x509.js');
  const usage = new x509.X509Certificate(blocks[0]!).getExtension(x509.KeyUsagesExtension);
  if (usage && !(usage.usages & x509.KeyUsageFlags.keyCertSign)) {
    throw new CaMaterialError(`${nameOf(signer)} may not sign certificates (no keyCertSign usage)`);
  }
  if (Date.parse(signer.validTo) <= opts.now) {
    throw new CaMaterialError(
      `${nameOf(signer)} expired at ${new Date(signer.validTo).toISOString()}`,
    );
  }
  try {
    await importPrivateKeyPem(opts.keyPem); // the formats and algorithms we can sign with
  } catch (err) {
    throw new CaMaterialError(`key: ${(err as Error).message}`);
  }
  if (!spkiOf(createPublicKey(opts.keyPem)).equals(spkiOf(signer))) {
    throw new CaMaterialError(`the key does not belong to the certificate ${nameOf(signer)}`);
  }
  for (let i = 0; i + 1 < certs.length; i++) {
    if (!certs[i]!.verify(certs[i + 1]!.publicKey)) {
      throw new CaMaterialError(
        `certificate ${i + 1} (${nameOf(certs[i]!)}) is not signed by certificate ${i + 2}`,
      );
    }
  }
  const last = certs[certs.length - 1]!;
  if (!isSelfSigned(last)) {
    throw new CaMaterialError(
      `${nameOf(last)} is not self-signed: an intermediate CA needs its issuers up to the root ` +
        'appended to the certificate file',
    );
  }
  return {
    serial: normalizeSerial(signer.serialNumber),
    certPem: blocks[0]! + '\n',
    chainPem: blocks
      .slice(1)
      .map((b) => b + '\n')
      .join(''),
    keyPem: opts.keyPem,
    state: 'active',
    source: 'operator',
    addedAt: new Date(opts.now).toISOString(),
  };
}

/** Node prints one RDN per line; one line reads better in messages and tables. */
function nameOf(cert: NodeX509Certificate): string {
  return cert.subject.split('\n').join(', ');
}

function isSelfSigned(cert: NodeX509Certificate): boolean {
  return cert.checkIssued(cert) && cert.verify(cert.publicKey);
}

/** The self-signed certificate a root entry chains to: the end of its chain, else itself. */
export function anchorPem(root: Pick<StoredRoot, 'certPem' | 'chainPem'>): string {
  const chain = splitPemCertificates(root.chainPem);
  return (chain[chain.length - 1] ?? root.certPem).trim() + '\n';
}

/** Intermediates a leaf chain must carry: the signing CA and its issuers, minus the root. */
export function intermediatesPem(root: Pick<StoredRoot, 'certPem' | 'chainPem'>): string {
  const chain = splitPemCertificates(root.chainPem);
  if (chain.length === 0) return '';
  return [root.certPem.trim(), ...chain.slice(0, -1)].map((c) => c.trim() + '\n').join('');
}

/** Trust bundle: the anchors of every root in the set, active first, each once. */
export function bundleOf(roots: readonly StoredRoot[]): string {
  const ordered = [...roots].sort(
    (a, b) => Number(b.state === 'active') - Number(a.state === 'active'),
  );
  return [...new Set(ordered.map(anchorPem))].join('');
}

export function rootInfo(root: StoredRoot): RootInfo {
  const cert = parseCertificate(root.certPem);
  return {
    serial: root.serial,
    subject: nameOf(cert),
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    state: root.state,
    source: root.source,
    addedAt: new Date(root.addedAt),
    ...(root.retiringSince ? { retiringSince: new Date(root.retiringSince) } : {}),
  };
}

/** Marks the active root(s) retiring and appends `next` as the active one. */
export function withNewActive(
  roots: readonly StoredRoot[],
  next: StoredRoot,
  now: number,
): StoredRoot[] {
  const since = new Date(now).toISOString();
  return [
    ...roots
      .filter((r) => r.serial !== next.serial)
      .map((r) =>
        r.state === 'active' ? { ...r, state: 'retiring' as const, retiringSince: since } : r,
      ),
    { ...next, state: 'active' },
  ];
}
