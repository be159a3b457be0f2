// Private keys (root keys, the token signing key) kept in Consul or etcd are sealed with
// AES-256-GCM under a key only the operator holds (`--state-encryption-key FILE`: 32 random
// bytes, base64, as `openssl rand -base64 32` prints them). Every sealed value records the id
// of the key that sealed it, so the key can be rotated: the new key seals, the previous one
// (`--state-encryption-key-previous`) still opens values written before. The KV key a value
// belongs to is bound in as associated data: a sealed root key copied under another name fails.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { CaSettingsError } from '../settings.js';

/** How a private key is kept in a shared store value. */
export const sealedSchema = z.union([
  z.object({
    alg: z.literal('aes-256-gcm'),
    kid: z.string().regex(/^[0-9a-f]{16}$/),
    iv: z.string().min(1),
    tag: z.string().min(1),
    data: z.string().min(1),
  }),
  z.object({ alg: z.literal('plaintext'), pem: z.string().min(1) }),
]);
export type Sealed = z.infer<typeof sealedSchema>;

/** A sealed value cannot be opened: no key, a key of another id, or tampered. */
export class StateKeyError extends Error {
  override readonly name = 'StateKeyError';
}

export interface StateKey {
  /** First 8 bytes of SHA-256 of the key, hex: names the key without revealing it. */
  readonly id: string;
  readonly key: Buffer;
}

export function stateKeyOf(key: Buffer): StateKey {
  return { id: createHash('sha256').update(key).digest('hex').slice(0, 16), key };
}

/** Reads a key file: 32 bytes, base64 (surrounding whitespace ignored). Errors name the flag. */
export function readStateKeyFile(flag: string, file: string): StateKey {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new CaSettingsError(
      `${flag}: cannot read ${JSON.stringify(file)} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
  const key = Buffer.from(text, 'base64');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text) || key.length !== 32) {
    throw new CaSettingsError(
      `${flag}: ${JSON.stringify(file)} must hold 32 random bytes in base64 ` +
        `(create one with \`openssl rand -base64 32\`), got ${key.length} bytes`,
    );
  }
  return stateKeyOf(key);
}

export interface StateCipherOptions {
  /** Seals new values and opens values sealed with it. */
  readonly key?: StateKey;
  /** Opens values sealed before a key rotation; never seals. */
  readonly previous?: StateKey;
  /** Without `key`, store private keys in plaintext instead of refusing. */
  readonly insecurePlaintext?: boolean;
}

export class StateCipher {
  constructor(private readonly opts: StateCipherOptions = {}) {}

  /** The id new values are sealed with; undefined when values are stored in plaintext. */
  get keyId(): string | undefined {
    return this.opts.key?.id;
  }

  /**
   * Seals `pem` for the KV key `where` (bound in as associated data); `label` names it in
   * errors. Refuses plaintext unless it was asked for.
   */
  seal(pem: string, where: string, label = where): Sealed {
    const key = this.opts.key;
    if (!key) {
      if (this.opts.insecurePlaintext) return { alg: 'plaintext', pem };
      throw new StateKeyError(
        `${label}: refusing to store a private key in the shared store unencrypted; give ` +
          '--state-encryption-key FILE (env LUCID_STATE_ENCRYPTION_KEY) or --state-insecure-plaintext',
      );
    }
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key.key, iv);
    cipher.setAAD(Buffer.from(where));
    const data = Buffer.concat([cipher.update(pem, 'utf8'), cipher.final()]);
    return {
      alg: 'aes-256-gcm',
      kid: key.id,
      iv: iv.toString('base64'),
      tag: cipher.getAuthTag().toString('base64'),
      data: data.toString('base64'),
    };
  }

  /** Opens a sealed value of the KV key `where`; errors name the key id and `label`. */
  open(sealed: Sealed, where: string, label = where): string {
    if (sealed.alg === 'plaintext') return sealed.pem;
    const key = [this.opts.key, this.opts.previous].find((k) => k?.id === sealed.kid);
    if (!key) {
      const have = [this.opts.key, this.opts.previous].flatMap((k) => (k ? [k.id] : []));
      throw new StateKeyError(
        `${label}: sealed with encryption key id ${sealed.kid}, but ` +
          (have.length > 0
            ? `--state-encryption-key${have.length > 1 ? ' / --state-encryption-key-previous' : ''} ` +
              `has id ${have.join(' / ')}`
            : 'no --state-encryption-key was given') +
          '; refusing to start (nothing was changed)',
      );
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', key.key, Buffer.from(sealed.iv, 'base64'));
      decipher.setAAD(Buffer.from(where));
      decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
      return Buffer.concat([
        decipher.update(Buffer.from(sealed.data, 'base64')),
        decipher.final(),
      ]).toString('utf8');
    } catch {
      throw new StateKeyError(
        `${label}: cannot decrypt with encryption key id ${sealed.kid} (the value was altered, ` +
          'or a different key has the same id); refusing to start (nothing was changed)',
      );
    }
  }
}
