// The crypto plumbing under the CA that Node's own crypto does: key types, serials, PEM
// splitting and parsing. What needs @peculiar/x509 (making certificates, WebCrypto signing
// keys) is in x509.ts, imported on first use: a control plane that issues no certificate (idle,
// or its CA already made) never loads it (~2 MiB of heap, issue 16: idle RSS).
import {
  X509Certificate as NodeX509Certificate,
  createPrivateKey,
  generateKeyPairSync,
  randomBytes,
  type KeyObject,
} from 'node:crypto';

/** Leaf key algorithms. ECDSA P-256 is the default: small, fast, what Envoy handshakes fastest. */
export const KEY_TYPES = ['ecdsa-p256', 'rsa-2048'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

/** Thrown when key or certificate material cannot be used; the message says why. */
export class CaMaterialError extends Error {
  override readonly name = 'CaMaterialError';
}

/**
 * A new ECDSA P-256 private key as PKCS#8 PEM ("BEGIN PRIVATE KEY"): the one private key format
 * Envoy, OpenSSL and Node all read.
 */
export function newP256KeyPem(): string {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
}

/**
 * The WebCrypto parameters a CA key signs with: ECDSA P-256/P-384 or RSA PKCS#1 v1.5 with
 * SHA-256. CaMaterialError for any other key (checked without the x509 library, so a CA can
 * refuse an unusable key when it opens, before it loads that library to sign).
 */
export function signingParamsOf(key: KeyObject): {
  params: { name: string; namedCurve?: string; hash: string };
  keyType: 'ec' | 'rsa';
} {
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const params =
      curve === 'prime256v1'
        ? { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' }
        : curve === 'secp384r1'
          ? { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' }
          : undefined;
    if (!params) throw new CaMaterialError(`unsupported EC curve ${curve ?? 'unknown'}`);
    return { params, keyType: 'ec' };
  }
  if (key.asymmetricKeyType === 'rsa') {
    return { params: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, keyType: 'rsa' };
  }
  throw new CaMaterialError(
    `unsupported key type ${key.asymmetricKeyType ?? 'unknown'} (expected EC or RSA)`,
  );
}

/** A PEM private key as Node reads it, or CaMaterialError saying why it cannot be read. */
export function readPrivateKeyPem(pem: string): KeyObject {
  try {
    return createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw new CaMaterialError(`not a readable PEM private key (${(err as Error).message})`);
  }
}

/**
 * A random positive serial of 16 bytes (≥ 120 random bits; RFC 5280 allows up to 20 octets).
 * The first byte is 0x01–0x7f so the DER integer is positive and needs no padding byte, which
 * keeps the hex we record identical to what OpenSSL and Envoy print.
 */
export function randomSerialHex(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! % 0x7f) + 1;
  return bytes.toString('hex');
}

/** Lowercase hex without leading zero octets: one spelling for serials from any source. */
export function normalizeSerial(hex: string): string {
  return hex.toLowerCase().replace(/^(00)+(?=..)/, '');
}

/** Splits a PEM bundle into single-certificate PEM blocks (anything else is ignored). */
export function splitPemCertificates(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

export function parseCertificate(pem: string): NodeX509Certificate {
  return new NodeX509Certificate(pem);
}

/** The DER SubjectPublicKeyInfo of a certificate or key, for "does this key match" checks. */
export function spkiOf(subject: NodeX509Certificate | KeyObject): Buffer {
  const key = subject instanceof NodeX509Certificate ? subject.publicKey : subject;
  return key.export({ type: 'spki', format: 'der' });
}
