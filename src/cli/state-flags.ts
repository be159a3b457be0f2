// `--state file|consul|etcd` and its flags: where the CA state (roots and their keys, the
// token signing key, the token log) lives. `file` is `--data-dir` (one replica); `consul` and
// `etcd` share it between replicas under `--state-prefix`, reached with the same connection
// flags as the discovery sources (--consul..., --etcd...). Used by `serve` and by the operator
// commands (`ca show|rotate`, `token issue|revoke|list`), so nobody copies key files around.
import { InvalidArgumentError, Option } from 'commander';
import { CaSettingsError } from '../ca/settings.js';
import { StateCipher, readStateKeyFile, type StateKey } from '../ca/state/cipher.js';
import { ConsulKvCaStore } from '../ca/state/consul-store.js';
import { EtcdCaStore } from '../ca/state/etcd-store.js';
import type { KvCaStore } from '../ca/state/kv-store.js';
import {
  consulConnectionCliOptions,
  consulConnectionFromFlags,
} from '../sources/consul/options.js';
import { etcdCliOptions, etcdFlags } from '../sources/etcd/options.js';
import { FlagError } from '../sources/flag-error.js';
import { booleanFlagOrEnv, choiceOption } from './options.js';

export const STATE_KINDS = ['file', 'consul', 'etcd'] as const;
export type StateKind = (typeof STATE_KINDS)[number];
export const DEFAULT_STATE_PREFIX = 'lucid-mesh/';

export interface StateFlags {
  state?: StateKind;
  statePrefix?: string;
  stateEncryptionKey?: string;
  stateEncryptionKeyPrevious?: string;
  stateInsecurePlaintext?: boolean;
}

/** The --state flags themselves (the connection flags come with the sources, or below). */
export function stateCliOptions(): Option[] {
  return [
    new Option(
      '--state <kind>',
      'where the CA state (roots, keys, token key, token log) lives: file (--data-dir, one ' +
        'replica), consul (Consul KV) or etcd; consul/etcd share it between replicas',
    )
      .env('LUCID_STATE')
      .default('file')
      .argParser(choiceOption('--state', STATE_KINDS)),
    new Option(
      '--state-prefix <prefix>',
      'key prefix of the CA state in Consul KV or etcd (see docs/ha.md for the ACL it needs)',
    )
      .env('LUCID_STATE_PREFIX')
      .default(DEFAULT_STATE_PREFIX),
    new Option(
      '--state-encryption-key <file>',
      'file with 32 random bytes, base64 (`openssl rand -base64 32`); encrypts private keys ' +
        'kept in Consul/etcd (AES-256-GCM)',
    ).env('LUCID_STATE_ENCRYPTION_KEY'),
    new Option(
      '--state-encryption-key-previous <file>',
      'the key before a rotation of --state-encryption-key: still decrypts, never encrypts',
    ).env('LUCID_STATE_ENCRYPTION_KEY_PREVIOUS'),
    new Option(
      '--state-insecure-plaintext',
      'store private keys in Consul/etcd unencrypted when no --state-encryption-key is given ' +
        `(development only) (env: ${INSECURE_PLAINTEXT_ENV}=true)`,
    ),
  ];
}

/**
 * For commands without the source flags (`ca`, `token`): the --state flags plus how to reach
 * Consul and etcd. `--etcd-prefix` (the discovery prefix) is left out.
 */
export function stateCliOptionsWithConnections(): Option[] {
  return [
    ...stateCliOptions(),
    ...consulConnectionCliOptions(),
    ...etcdCliOptions().filter((o) => o.long !== '--etcd-prefix'),
  ];
}

/**
 * The shared store the flags name, or undefined for `--state file` (the --data-dir store).
 * @throws CaSettingsError naming the flag and the value.
 */
export function stateStoreFromFlags(
  flags: StateFlags & Record<string, unknown>,
): KvCaStore | undefined {
  const kind = flags.state ?? 'file';
  if (kind === 'file') return undefined;
  const prefix = statePrefix(kind, flags.statePrefix ?? DEFAULT_STATE_PREFIX);
  const cipher = stateCipher(kind, flags);
  try {
    if (kind === 'consul') {
      return new ConsulKvCaStore(consulConnectionFromFlags(flags), { prefix, cipher });
    }
    return new EtcdCaStore(etcdFlags(flags).connection, { prefix, cipher });
  } catch (err) {
    if (err instanceof FlagError) throw new CaSettingsError(err.message);
    throw err;
  }
}

function statePrefix(kind: StateKind, value: string): string {
  const text = value.trim();
  if (text === '' || text === '/' || /\s/.test(text) || text.split('/').includes('..')) {
    throw new CaSettingsError(
      `--state-prefix: expected a key prefix like lucid-mesh/, got ${JSON.stringify(value)}`,
    );
  }
  if (kind === 'consul' && text.startsWith('/')) {
    throw new CaSettingsError(
      `--state-prefix: Consul KV keys do not start with "/", got ${JSON.stringify(value)}`,
    );
  }
  return text.endsWith('/') ? text : `${text}/`;
}

function stateCipher(kind: StateKind, flags: StateFlags): StateCipher {
  const key = flags.stateEncryptionKey
    ? readStateKeyFile('--state-encryption-key', flags.stateEncryptionKey)
    : undefined;
  let previous: StateKey | undefined;
  if (flags.stateEncryptionKeyPrevious) {
    if (!key) {
      throw new CaSettingsError(
        '--state-encryption-key-previous: needs --state-encryption-key (the new key) as well',
      );
    }
    previous = readStateKeyFile(
      '--state-encryption-key-previous',
      flags.stateEncryptionKeyPrevious,
    );
  }
  const insecurePlaintext = stateInsecurePlaintext(flags);
  if (!key && !insecurePlaintext) {
    throw new CaSettingsError(
      `--state ${kind}: private keys go into ${kind === 'consul' ? 'Consul KV' : 'etcd'} ` +
        'encrypted: give --state-encryption-key FILE (env LUCID_STATE_ENCRYPTION_KEY; create ' +
        'one with `openssl rand -base64 32`), or --state-insecure-plaintext for development',
    );
  }
  return new StateCipher({ key, previous, insecurePlaintext });
}

const INSECURE_PLAINTEXT_ENV = 'LUCID_STATE_INSECURE_PLAINTEXT';

/**
 * --state-insecure-plaintext, or its environment variable (booleanFlagOrEnv: `=false` is off;
 * commander's `.env()` turned it on for any value).
 * @throws CaSettingsError naming the variable for a value that is not a boolean
 */
export function stateInsecurePlaintext(
  flags: { readonly stateInsecurePlaintext?: unknown },
  env: NodeJS.ProcessEnv = process.env,
): boolean {
  try {
    return booleanFlagOrEnv(flags.stateInsecurePlaintext, INSECURE_PLAINTEXT_ENV, env);
  } catch (err) {
    // A usage error (exit 2) wherever the state flags are read, as the others here are.
    throw err instanceof InvalidArgumentError ? new CaSettingsError(err.message) : err;
  }
}
