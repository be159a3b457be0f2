// One call that turns flags and environment into a running CA: store, authority, leaf manager
// and token authority (proxy and operator tokens, following the store's revocations). What
// `lucid-mesh serve` (and tests) use.
import { createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { ConsulClient } from '../sources/consul/client.js';
import type { Logger } from '../telemetry/logger.js';
import { CertificateAuthority, type OperatorCa } from './authority.js';
import type { Clock } from './clock.js';
import { CaMaterialError, type KeyType } from './crypto.js';
import { ConsulConnectCa } from './consul-connect.js';
import { FileCaStore } from './file-store.js';
import { LeafManager, type LeafManagerOptions } from './leaf-manager.js';
import type { LeafSource } from './leaf-source.js';
import { operatorRoot } from './roots.js';
import { CaSettingsError, autoRotateFromEnv, defaultDataDir, leafTtlFromEnv } from './settings.js';
import { StateKeyError } from './state/cipher.js';
import type { Leadership } from './state/kv-backend.js';
import { KvCaStore } from './state/kv-store.js';
import type { Identity } from './spiffe.js';
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
  /** Shared store: how long a follower waits for the leader to create the first root. */
  readonly firstRootTimeoutMs?: number;
  /**
   * `--ca consul-connect`: sidecar leaves and roots come from this Consul agent's Connect CA
   * (the built-in CA still signs tokens). Default: the built-in CA issues them.
   */
  readonly consulConnect?: ConsulClient;
}

/** A store shared by replicas (Consul, etcd): its health and who leads. */
export interface SharedState {
  readonly store: KvCaStore;
  readonly leadership: Leadership;
}

export interface OpenedCa {
  readonly store: CaStore;
  readonly ca: CertificateAuthority;
  readonly leaves: LeafManager;
  /** Where sidecar leaves and the trust bundle come from: `leaves`, or Consul Connect. */
  readonly certificates: LeafSource;
  /** The identity space of those certificates (SPIFFE ID and SNI format: ca/spiffe.ts). */
  readonly identity: Identity;
  /** Issues and verifies tokens; follows the store's revocations. */
  readonly tokens: TokenAuthority;
  /** Set when the store is shared by replicas (`--state consul|etcd`). */
  readonly shared?: SharedState;
  /** Cancels timers and the store watches. */
  stop(): void;
  /** stop(), then gives up leadership and closes a shared store's connection. */
  close(): Promise<void>;
}

/** Throws CaSettingsError (a usage error: exit 2) for bad flags, env or CA files. */
export async function openCa(opts: OpenCaOptions = {}): Promise<OpenedCa> {
  try {
    return await openCaOn(
      opts.store ?? new FileCaStore(opts.dataDir ?? defaultDataDir(opts.env ?? process.env)),
      opts,
    );
  } catch (err) {
    // A shared store's connection (and leadership) must not outlive a failed start.
    if (opts.store instanceof KvCaStore) await opts.store.close().catch(() => undefined);
    throw err;
  }
}

async function openCaOn(store: CaStore, opts: OpenCaOptions): Promise<OpenedCa> {
  const env = opts.env ?? process.env;
  const leafTtlMs = opts.leafTtlMs ?? leafTtlFromEnv(env);
  const autoRotate = opts.autoRotate ?? autoRotateFromEnv(env);
  const operatorCa = await readOperatorCa(opts.caCertFile, opts.caKeyFile);
  const shared =
    store instanceof KvCaStore
      ? await joinSharedState(store, opts.firstRootTimeoutMs ?? 60_000, !operatorCa, opts.logger)
      : undefined;
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
  // Every replica on a shared store issues for one trust domain (Consul Connect: Consul's).
  if (store instanceof KvCaStore && !opts.consulConnect) {
    const mine = ca.identity.trustDomain;
    const agreed = await store.agreeTrustDomain(mine);
    if (agreed !== mine) {
      throw new CaSettingsError(
        `--trust-domain: ${JSON.stringify(mine)}, but the replicas on ${store.location} issue ` +
          `certificates for ${JSON.stringify(agreed)} (key ${store.layout.identity}): sidecars of ` +
          'replicas on two trust domains refuse each other; give every replica the same ' +
          '--trust-domain (to change it, delete that key and restart every replica); refusing to start',
      );
    }
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
    leadership: shared?.leadership,
    holders: shared?.store,
  });
  // Replicas that must accept each other's tokens share the signing key (--token-key).
  // The token log (issued ids, revocations) is the store's either way.
  const tokens = await TokenAuthority.open(store, {
    keyPem: await readTokenKey(opts.tokenKeyFile),
    clock: opts.clock,
    watch: true,
    logger: opts.logger,
  });
  let connect: ConsulConnectCa | undefined;
  try {
    connect = opts.consulConnect
      ? await ConsulConnectCa.start({ client: opts.consulConnect, logger: opts.logger })
      : undefined;
  } catch (err) {
    leaves.stop();
    tokens.stop();
    if (err instanceof CaMaterialError) throw new CaSettingsError(err.message);
    throw new CaSettingsError(`--ca consul-connect: ${(err as Error).message}`);
  }
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
  const stop = () => {
    leaves.stop();
    tokens.stop();
    connect?.stop();
  };
  return {
    store,
    ca,
    leaves,
    certificates: connect ?? leaves,
    identity: connect?.identity ?? ca.identity,
    tokens,
    ...(shared ? { shared } : {}),
    stop,
    close: async () => {
      stop();
      await shared?.store.close();
    },
  };
}

/**
 * Before a replica writes anything to a shared store: every value holding a secret must read
 * and decrypt (a wrong key or a corrupt value refuses the start, with the store untouched).
 * Then it campaigns; a follower waits for the leader to create the first root.
 */
async function joinSharedState(
  store: KvCaStore,
  firstRootTimeoutMs: number,
  waitForLeader: boolean,
  logger: Logger | undefined,
): Promise<SharedState> {
  const log = logger?.child({ component: 'ca-state' });
  try {
    const resealed = await store.verify();
    if (resealed.length > 0) {
      log?.info(
        { store: store.location, keys: resealed },
        're-sealed with the current encryption key',
      );
    }
  } catch (err) {
    if (err instanceof StateKeyError || err instanceof CaMaterialError) {
      throw new CaSettingsError(err.message);
    }
    throw err;
  }
  const leadership = store.leadership();
  await leadership.settled;
  leadership.onChange((leader) =>
    log?.info(
      { store: store.location, replica: store.replicaId, leader },
      leader ? 'leading the CA state' : 'no longer leading the CA state',
    ),
  );
  store.health.onChange((healthy, error) =>
    healthy
      ? log?.info({ store: store.location }, 'CA state store reachable again')
      : log?.warn(
          { store: store.location, error },
          'CA state store unreachable; serving from what this replica holds',
        ),
  );
  store.monitor();
  if (waitForLeader) {
    const deadline = Date.now() + firstRootTimeoutMs;
    while (!leadership.isLeader() && (await store.loadRoots()).length === 0) {
      if (Date.now() > deadline) {
        throw new Error(
          `${store.location}: no CA root yet and no replica leading to create one after ${Math.round(firstRootTimeoutMs / 1000)} s`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  log?.info(
    { store: store.location, replica: store.replicaId, leader: leadership.isLeader() },
    'joined the shared CA state',
  );
  return { store, leadership };
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
