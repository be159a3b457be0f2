// @peculiar/x509 on Node's WebCrypto: making certificates and the WebCrypto signing keys they
// are signed with. Imported on first use only (`await import('./x509.js')`; crypto.ts says why),
// and the one home of the Reflect polyfill @peculiar/x509's DI container needs and of its
// crypto provider, set once before first use.
import 'reflect-metadata';
import { createPublicKey, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { readPrivateKeyPem, signingParamsOf, type KeyType } from './crypto.js';

// Node's webcrypto is the standard WebCrypto; the cast only bridges Node's and the DOM's typings.
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[1]);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

export { x509 };

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

/**
 * Imports a PEM private key in any format OpenSSL writes (PKCS#8, SEC1 "EC PRIVATE KEY",
 * PKCS#1 "RSA PRIVATE KEY") as a WebCrypto signing key. Node parses the format; WebCrypto
 * gets PKCS#8.
 */
export async function importPrivateKeyPem(pem: string): Promise<SigningKey> {
  const key = readPrivateKeyPem(pem);
  const { params, keyType } = signingParamsOf(key);
  const pkcs8 = key.export({ type: 'pkcs8', format: 'der' });
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const subtle = webcrypto.subtle;
  const privateKey = await subtle.importKey('pkcs8', pkcs8, params, true, ['sign']);
  const publicKey = await subtle.importKey('spki', spki, params, true, ['verify']);
  return { privateKey, publicKey, signingAlgorithm: params, keyType };
}
