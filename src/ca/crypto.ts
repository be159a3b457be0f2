// The crypto plumbing under the CA: @peculiar/x509 on Node's WebCrypto, key generation and
// import, PEM helpers. Every other CA module imports x509 from here, so the Reflect polyfill
// (which @peculiar/x509's DI container needs) and the crypto provider are set exactly once,
// before first use.
import 'reflect-metadata';
import {
  X509Certificate as NodeX509Certificate,
  createPrivateKey,
  createPublicKey,
  randomBytes,
  webcrypto,
  type KeyObject,
} from 'node:crypto';
import * as x509 from '@peculiar/x509';

// Node's webcrypto is the standard WebCrypto; the cast only bridges Node's and the DOM's typings.
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[1]);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

export { x509 };

/** Leaf key algorithms. ECDSA P-256 is the default: small, fast, what Envoy handshakes fastest. */
export const KEY_TYPES = ['ecdsa-p256', 'rsa-2048'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

/** A WebCrypto signing key plus the algorithm parameters a certificate signature needs. */
export interface SigningKey {
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  readonly signingAlgorithm: webcrypto.Algorithm | webcrypto.EcdsaParams;
  readonly keyType: 'ec' | 'rsa';
}

const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const RSA_2048 = {
  name: 'RSASSA-PKCS1-v1_5',
  modulusLength: 2048,
  publicExponent: new Uint8Array([1, 0, 1]),
  hash: 'SHA-256',
} as const;

export async function generateKeyPair(type: KeyType): Promise<SigningKey> {
  const subtle = webcrypto.subtle;
  if (type === 'rsa-2048') {
    const pair = (await subtle.generateKey(RSA_2048, true, ['sign', 'verify'])) as CryptoKeyPair;
    return { ...pair, signingAlgorithm: RSA_2048, keyType: 'rsa' };
  }
  const pair = (await subtle.generateKey(EC_P256, true, ['sign', 'verify'])) as CryptoKeyPair;
  return { ...pair, signingAlgorithm: { ...EC_P256, hash: 'SHA-256' }, keyType: 'ec' };
}

/** PKCS#8 PEM ("BEGIN PRIVATE KEY"): the one private key format Envoy, OpenSSL and Node all read. */
export async function privateKeyToPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY') + '\n';
}

/** Thrown when key or certificate material cannot be used; the message says why. */
export class CaMaterialError extends Error {
  override readonly name = 'CaMaterialError';
}

/**
 * Imports a PEM private key in any format OpenSSL writes (PKCS#8, SEC1 "EC PRIVATE KEY",
 * PKCS#1 "RSA PRIVATE KEY") as a WebCrypto signing key. Node parses the format; WebCrypto
 * gets PKCS#8.
 */
export async function importPrivateKeyPem(pem: string): Promise<SigningKey> {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw new CaMaterialError(`not a readable PEM private key (${(err as Error).message})`);
  }
  const pkcs8 = key.export({ type: 'pkcs8', format: 'der' });
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const subtle = webcrypto.subtle;
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const params =
      curve === 'prime256v1'
        ? { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' }
        : curve === 'secp384r1'
          ? { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' }
          : undefined;
    if (!params) throw new CaMaterialError(`unsupported EC curve ${curve ?? 'unknown'}`);
    const privateKey = await subtle.importKey('pkcs8', pkcs8, params, true, ['sign']);
    const publicKey = await subtle.importKey('spki', spki, params, true, ['verify']);
    return { privateKey, publicKey, signingAlgorithm: params, keyType: 'ec' };
  }
  if (key.asymmetricKeyType === 'rsa') {
    const params = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    const privateKey = await subtle.importKey('pkcs8', pkcs8, params, true, ['sign']);
    const publicKey = await subtle.importKey('spki', spki, params, true, ['verify']);
    return { privateKey, publicKey, signingAlgorithm: params, keyType: 'rsa' };
  }
  throw new CaMaterialError(
    `unsupported key type ${key.asymmetricKeyType ?? 'unknown'} (expected EC or RSA)`,
  );
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
