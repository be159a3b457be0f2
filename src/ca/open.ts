// One call that turns flags and environment into a running CA: store, authority, leaf manager
// and token authority (proxy and operator tokens, following the store's revocations). What
// `lucid-mesh serve` (and tests) use.
import { createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Logger } from '../telemetry/logger.js';
import { CertificateAuthority, type OperatorCa } from './authority.js';
import type { Clock } from './clock.js';
import { CaMaterialError, type KeyType } from './crypto.js';
import { FileCaStore } from './file-store.js';
import { LeafManager, type LeafManagerOptions } from './leaf-manager.js';
import { operatorRoot } from './roots.js';
import { CaSettingsError, autoRotateFromEnv, defaultDataDir, leafTtlFromEnv } from './settings.js';
import type { CaStore } from './store.js';
import { TokenAuthority } from './tokens.js';

type Env = Readonly<Record<string, string | undefined>>;

export interface OpenCaOptions extends Pick<
  LeafManagerOptions,
  'rotationDelayMs' | 'rotationSpreadMs' | 'retireDelayMs' | 'retryMs' | 'random'
> {
  /** Default: `$LUCID_DATA_DIR`, `$XDG_STATE_HOME/lucid-mesh`, `~/.local/state/lucid-mesh`. */
  readonly dataDir?: string;
  /** Use this store instead of the data directory. */
  readonly store?: CaStore;
  /** `--ca-cert` / `--ca-key`: operator-provided CA files (both or neither). */
  readonly caCertFile?: string;
  readonly caKeyFile?: string;
  /** `--token-key`: PKCS#8 PEM EC P-256 key that signs tokens (shared by replicas). */
  readonly tokenKeyFile?: string;
  readonly trustDomain?: string;
  readonly namespace?: string;
  readonly dnsDomain?: string;
  readonly keyType?: KeyType;
  /** Wins over CERT_VALIDITY_DAYS. */
  readonly leafTtlMs?: number;
  /** Wins over AUTO_ROTATE_CERTS. */
  readonly autoRotate?: boolean;
  readonly env?: Env;
  readonly logger?: Logger;
  readonly clock?: Clock;
}

export interface OpenedCa {
  readonly store: CaStore;
  readonly ca: CertificateAuthority;
  readonly leaves: LeafManager;
  /** Issues and verifies tokens; follows the store's revocations. */
  readonly tokens: TokenAuthority;
  /** Cancels timers and the store watches. */
  stop(): void;
}

/** Throws CaSettingsError (a usage error: exit 2) for bad flags, env or CA files. */
export async function openCa(opts: OpenCaOptions = {}): Promise<OpenedCa> {
  const env = opts.env ?? process.env;
  const leafTtlMs = opts.leafTtlMs ?? leafTtlFromEnv(env);
  const autoRotate = opts.autoRotate ?? autoRotateFromEnv(env);
  const operatorCa = await readOperatorCa(opts.caCertFile, opts.caKeyFile);
  const store = opts.store ?? new FileCaStore(opts.dataDir ?? defaultDataDir(env));
  let ca: CertificateAuthority;
  try {
    ca = await CertificateAuthority.open({
      store,
      trustDomain: opts.trustDomain,
      namespace: opts.namespace,
      dnsDomain: opts.dnsDomain,
      keyType: opts.keyType,
      leafTtlMs,
      clock: opts.clock,
      operatorCa,
    });
  } catch (err) {
    if (err instanceof CaMaterialError) throw new CaSettingsError(err.message);
    throw err;
  }
  const leaves = await LeafManager.start({
    ca,
    logger: opts.logger,
    autoRotate,
    rotationDelayMs: opts.rotationDelayMs,
    rotationSpreadMs: opts.rotationSpreadMs,
    retireDelayMs: opts.retireDelayMs,
    retryMs: opts.retryMs,
    random: opts.random,
  });
  // Replicas that must accept each other's tokens share the signing key (--token-key).
  // The token log (issued ids, revocations) is the store's either way.
  const tokens = await TokenAuthority.open(store, {
    keyPem: await readTokenKey(opts.tokenKeyFile),
    clock: opts.clock,
    watch: true,
    logger: opts.logger,
  });
  opts.logger?.info(
    {
      store: store.location,
      activeRoot: ca.activeRoot().serial,
      trustDomain: ca.identity.trustDomain,
      leafTtlMs,
      autoRotate,
    },
    'certificate authority ready',
  );
  return {
    store,
    ca,
    leaves,
    tokens,
    stop: () => {
      leaves.stop();
      tokens.stop();
    },
  };
}

/**
 * Reads and checks `--ca-cert` / `--ca-key`. Returns undefined when neither is given. Errors
 * name the flag and the file.
 */
export async function readOperatorCa(
  certFile: string | undefined,
  keyFile: string | undefined,
): Promise<OperatorCa | undefined> {
  if (!certFile && !keyFile) return undefined;
  if (!certFile)
    throw new CaSettingsError(`--ca-cert: required with --ca-key ${JSON.stringify(keyFile)}`);
  if (!keyFile)
    throw new CaSettingsError(`--ca-key: required with --ca-cert ${JSON.stringify(certFile)}`);
  const read = async (flag: string, file: string) => {
    try {
      return await readFile(file, 'utf8');
    } catch (err) {
      throw new CaSettingsError(
        `${flag}: cannot read ${JSON.stringify(file)} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      );
    }
  };
  const certPem = await read('--ca-cert', certFile);
  const keyPem = await read('--ca-key', keyFile);
  try {
    await operatorRoot({ certPem, keyPem, now: Date.now() });
  } catch (err) {
    const message = (err as Error).message;
    if (message.startsWith('key: ')) {
      throw new CaSettingsError(`--ca-key: ${JSON.stringify(keyFile)}: ${message.slice(5)}`);
    }
    if (message.startsWith('the key does not belong')) {
      throw new CaSettingsError(`--ca-key: ${JSON.stringify(keyFile)}: ${message}`);
    }
    throw new CaSettingsError(`--ca-cert: ${JSON.stringify(certFile)}: ${message}`);
  }
  return { certPem, keyPem };
}

/** Reads `--token-key`: an EC P-256 private key, so every replica verifies the same tokens. */
export async function readTokenKey(file: string | undefined): Promise<string | undefined> {
  if (!file) return undefined;
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (err) {
    throw new CaSettingsError(
      `--token-key: cannot read ${JSON.stringify(file)} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
  let key;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new CaSettingsError(
      `--token-key: ${JSON.stringify(file)}: not a PEM private key (${(err as Error).message})`,
    );
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new CaSettingsError(
      `--token-key: ${JSON.stringify(file)}: expected an EC P-256 key (ES256), got ${key.asymmetricKeyType}`,
    );
  }
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/**
 * The token authority of a command (`token issue|revoke|list`): signing with the shared key
 * when one is given, else the store's own; the token log is the store's.
 */
export function openTokens(
  store: CaStore,
  tokenKeyPem: string | undefined,
  clock?: Clock,
): Promise<TokenAuthority> {
  return TokenAuthority.open(store, { keyPem: tokenKeyPem, clock });
}
