// CaStore on a shared key-value store (Consul KV or etcd), for replicas that share one CA.
// Layout under the prefix (docs/ha.md, "Shared state store"):
//
//   <prefix>ca/roots               roots, their state and their sealed private keys (one value,
//                                  so a rotation is one compare-and-set)
//   <prefix>ca/token-signing-key   the sealed ES256 key that signs proxy and operator tokens
//   <prefix>ca/tokens              the token log (issued tokens, revocations); no secrets
//   <prefix>ca/identity            the trust domain every replica issues certificates for
//   <prefix>ca/leaves/<replica>    metadata of the leaves each replica issued (no keys)
//   <prefix>ca/leaf-roots/<replica> the roots each live replica still has leaves of, on its
//                                  session / lease: gone when the replica is (root-retirement.ts)
//   <prefix>leader                 the leader lock (Consul session / etcd election)
//   <prefix>replicas/<replica>     the mesh settings each live replica serves with, on its
//                                  session / lease (replica-settings.ts)
//
// Reads are validated before anything is written: a value that does not parse, or a key that
// does not decrypt, fails the operation with an error naming the KV key, and nothing is
// replaced by a default. Updates are compare-and-set loops on the value's version.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { CaMaterialError } from '../crypto.js';
import type { TokenRecord, TokensMutation } from '../revocations.js';
import type { HolderRead, LeafHolders, RootHolding } from '../root-retirement.js';
import type { CaStore, RootsMutation } from '../store.js';
import {
  SERIAL,
  parseStored,
  storedLeafEntry,
  storedRootEntry,
  storedTokenEntry,
} from '../stored-records.js';
import type { LeafRecord, StoredRoot } from '../types.js';
import { sealedSchema, type Sealed, type StateCipher } from './cipher.js';
import { StateHealth, type KvBackend, type Leadership } from './kv-backend.js';
import { compareStrings } from '../../text-order.js';

// The roots value carries each root's sealed private key (one compare-and-set per rotation).
const rootEntry = storedRootEntry.extend({ certPem: z.string().min(1), key: sealedSchema });
const rootsValue = z.object({ version: z.literal(1), roots: z.array(rootEntry) });
const tokenKeyValue = z.object({ version: z.literal(1), key: sealedSchema });
const tokensValue = z.object({ version: z.literal(1), tokens: z.array(storedTokenEntry) });
const identityValue = z.object({ version: z.literal(1), trustDomain: z.string().min(1) });
const leavesValue = z.object({
  version: z.literal(1),
  replica: z.string(),
  /** Leaves left out to stay under the store's value size limit. */
  omitted: z.number().optional(),
  leaves: z.array(storedLeafEntry),
});

const isoDate = z.string().refine((s) => Number.isFinite(Date.parse(s)), 'not a date');
const leafRootsValue = z.object({
  version: z.literal(1),
  replica: z.string().min(1),
  updatedAt: isoDate,
  roots: z.array(
    z.object({ serial: z.string().regex(SERIAL), leaves: z.number().int().min(0), until: isoDate }),
  ),
});

/** Largest leaf-record value written (Consul's limit per value is 512 KB). */
const MAX_LEAVES_BYTES = 400_000;

/** Compare-and-set attempts before giving up (each one lost to another writer). */
const MAX_CAS_ATTEMPTS = 50;

export interface KvCaStoreOptions {
  /** Key prefix, ending in '/' (default `lucid-mesh/`). */
  readonly prefix: string;
  readonly cipher: StateCipher;
  /** Names this replica's leaf records and its leadership claim. Default host-random. */
  readonly replicaId?: string;
}

export class KvCaStore implements CaStore, LeafHolders {
  readonly location: string;
  readonly health = new StateHealth();
  readonly replicaId: string;
  private readonly keys: {
    roots: string;
    tokenKey: string;
    tokens: string;
    identity: string;
    leavesDir: string;
    leafRootsDir: string;
    leader: string;
    replicasDir: string;
  };
  private leadershipClaim: Leadership | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  /** Who watches the roots (watchRoots): the heartbeat tells them too (see rootsRead). */
  private readonly rootsListeners = new Set<() => void>();
  /** The roots key's version last read (undefined: absent; null: not read yet). */
  private rootsSeen: string | undefined | null = null;
  private savedLeaves = false;

  constructor(
    private readonly backend: KvBackend,
    private readonly opts: KvCaStoreOptions,
  ) {
    this.location = backend.location;
    this.replicaId = opts.replicaId ?? `${hostname()}-${randomBytes(4).toString('hex')}`;
    const p = opts.prefix;
    this.keys = {
      roots: `${p}ca/roots`,
      tokenKey: `${p}ca/token-signing-key`,
      tokens: `${p}ca/tokens`,
      identity: `${p}ca/identity`,
      leavesDir: `${p}ca/leaves/`,
      leafRootsDir: `${p}ca/leaf-roots/`,
      leader: `${p}leader`,
      replicasDir: `${p}replicas/`,
    };
  }

  /** KV keys, for tests and docs. */
  get layout(): Readonly<KvCaStore['keys']> {
    return this.keys;
  }

  /**
   * Reads and opens everything that holds a secret (roots, token key): a corrupt value or a
   * wrong encryption key fails here, before a replica writes anything. Then re-seals values
   * sealed with another key (the previous one after a key rotation, or none) with the current
   * key; returns the KV keys it re-sealed.
   */
  async verify(): Promise<string[]> {
    const roots = await this.get(this.keys.roots);
    const rootSet = roots ? this.decodeRoots(roots.value) : [];
    const tokenKey = await this.get(this.keys.tokenKey);
    const tokenPem = tokenKey ? this.decodeTokenKey(tokenKey.value) : undefined;
    const resealed: string[] = [];
    if (roots && rootSet.length > 0 && this.stale(roots.value)) {
      await this.updateRoots((current) => [...current]);
      resealed.push(this.keys.roots);
    }
    if (tokenKey && tokenPem !== undefined && this.stale(tokenKey.value)) {
      const sealed = this.opts.cipher.seal(
        tokenPem,
        this.keys.tokenKey,
        this.where(this.keys.tokenKey),
      );
      const text = JSON.stringify({ version: 1, key: sealed });
      if (await this.putIf(this.keys.tokenKey, text, tokenKey.version)) {
        resealed.push(this.keys.tokenKey);
      }
    }
    return resealed;
  }

  /** Whether a value holds a key sealed otherwise than the cipher would seal it now. */
  private stale(text: string): boolean {
    const want = this.opts.cipher.keyId;
    if (want === undefined) return false; // plaintext mode never rewrites sealed values
    // Already validated by the decode that came first.
    const value = JSON.parse(text) as { roots?: Array<{ key: Sealed }>; key?: Sealed };
    const sealed = value.roots ? value.roots.map((r) => r.key) : value.key ? [value.key] : [];
    return sealed.some((k) => k.alg === 'plaintext' || k.kid !== want);
  }

  /** Campaigns for leadership (once per store); followers watch, the leader maintains. */
  leadership(): Leadership {
    this.leadershipClaim ??= this.backend.campaign(this.keys.leader, this.replicaId);
    return this.leadershipClaim;
  }

  async loadRoots(): Promise<StoredRoot[]> {
    const entry = await this.get(this.keys.roots);
    this.rootsSeen = entry?.version;
    return entry ? this.decodeRoots(entry.value) : [];
  }

  async updateRoots(mutate: RootsMutation): Promise<StoredRoot[]> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const entry = await this.get(this.keys.roots);
      // A value that cannot be read fails here: never mutate (or create roots) from a guess.
      const before = entry ? this.decodeRoots(entry.value) : [];
      const after = await mutate(before);
      if (!after) return before;
      const text = this.encodeRoots(after);
      if (await this.putIf(this.keys.roots, text, entry?.version))
        return after.map((r) => ({ ...r }));
      await jitter(attempt);
    }
    throw new Error(`${this.where(this.keys.roots)}: too many concurrent updates; try again`);
  }

  watchRoots(listener: () => void): () => void {
    this.rootsListeners.add(listener);
    const stop = this.backend.watch(this.keys.roots, listener);
    return () => {
      this.rootsListeners.delete(listener);
      stop();
    };
  }

  /**
   * The heartbeat's read of the roots key doubles as the watch's fallback: after an outage
   * the etcd client re-opens its watch on a backoff of up to ~10 s (Consul's blocking query
   * waits out its retry too), and a rotation made meanwhile would reach this replica only
   * then. A version other than the one last read tells the watchers now.
   */
  private rootsRead(version: string | undefined): void {
    const changed = this.rootsSeen !== null && version !== this.rootsSeen;
    this.rootsSeen = version;
    if (changed) for (const listener of this.rootsListeners) listener();
  }

  async loadLeaves(): Promise<LeafRecord[]> {
    const entry = await this.get(this.leavesKey());
    if (!entry) return [];
    return parseStored(this.where(this.leavesKey()), entry.value, leavesValue).leaves;
  }

  /** Every replica's leaf records (`ca show`): the newest leaf per service. */
  async loadAllLeaves(): Promise<LeafRecord[]> {
    const entries = await this.health.track(() => this.backend.list(this.keys.leavesDir));
    const newest = new Map<string, LeafRecord>();
    for (const { key, value } of entries) {
      for (const leaf of parseStored(this.where(key), value, leavesValue).leaves) {
        if (Date.parse(leaf.notAfter) <= Date.now()) continue;
        const seen = newest.get(leaf.service);
        if (!seen || Date.parse(leaf.notBefore) > Date.parse(seen.notBefore)) {
          newest.set(leaf.service, leaf);
        }
      }
    }
    return [...newest.values()].sort((a, b) => compareStrings(a.service, b.service));
  }

  async saveLeaves(leaves: readonly LeafRecord[]): Promise<void> {
    this.savedLeaves = true;
    // Consul refuses values over 512 KB: keep what fits (they are for `ca show` only).
    let kept = [...leaves];
    let body = JSON.stringify({ version: 1, replica: this.replicaId, leaves: kept });
    while (Buffer.byteLength(body) > MAX_LEAVES_BYTES && kept.length > 0) {
      const fits = (kept.length * MAX_LEAVES_BYTES) / Buffer.byteLength(body);
      kept = kept.slice(0, Math.min(kept.length - 1, Math.floor(fits * 0.95)));
      body = JSON.stringify({
        version: 1,
        replica: this.replicaId,
        leaves: kept,
        omitted: leaves.length - kept.length,
      });
    }
    await this.backend.put(this.leavesKey(), body);
  }

  /** Writes this replica's record of the roots its leaves are signed by, on its liveness. */
  async publishLeafRoots(holdings: readonly RootHolding[]): Promise<void> {
    const body = JSON.stringify({
      version: 1,
      replica: this.replicaId,
      updatedAt: new Date().toISOString(),
      roots: holdings,
    });
    await this.health.track(() => this.backend.putLive(this.leafRootsKey(), body));
  }

  /** Every live replica's record; a value that does not parse comes back as an error. */
  async readLeafRoots(): Promise<HolderRead[]> {
    const entries = await this.health.track(() => this.backend.list(this.keys.leafRootsDir));
    return entries.map(({ key, value }): HolderRead => {
      try {
        const { replica, roots } = parseStored(this.where(key), value, leafRootsValue);
        return { key, record: { replica, roots } };
      } catch (err) {
        return { key, error: (err as Error).message };
      }
    });
  }

  /** Writes this replica's settings record, on its liveness (gone when the replica is). */
  async publishReplicaSettings(body: string): Promise<void> {
    await this.health.track(() =>
      this.backend.putLive(`${this.keys.replicasDir}${this.replicaId}`, body),
    );
  }

  /** Every live replica's settings record, raw (replica-settings.ts reads them). */
  readReplicaSettings(): Promise<Array<{ key: string; value: string }>> {
    return this.health.track(() => this.backend.list(this.keys.replicasDir));
  }

  async loadOrCreateTokenKey(create: () => Promise<string>): Promise<string> {
    const existing = await this.get(this.keys.tokenKey);
    if (existing) return this.decodeTokenKey(existing.value);
    const pem = await create();
    const sealed = this.opts.cipher.seal(pem, this.keys.tokenKey, this.where(this.keys.tokenKey));
    const text = JSON.stringify({ version: 1, key: sealed });
    if (await this.putIf(this.keys.tokenKey, text, undefined)) return pem;
    // Another replica stored one first: use theirs.
    const stored = await this.get(this.keys.tokenKey);
    if (!stored) throw new Error(`${this.where(this.keys.tokenKey)}: vanished while creating it`);
    return this.decodeTokenKey(stored.value);
  }

  async loadTokens(): Promise<TokenRecord[]> {
    const entry = await this.get(this.keys.tokens);
    return entry ? parseStored(this.where(this.keys.tokens), entry.value, tokensValue).tokens : [];
  }

  async updateTokens(mutate: TokensMutation): Promise<TokenRecord[]> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const entry = await this.get(this.keys.tokens);
      const before = entry
        ? parseStored(this.where(this.keys.tokens), entry.value, tokensValue).tokens
        : [];
      const after = await mutate(before);
      if (!after) return before;
      const text = JSON.stringify({ version: 1, tokens: after });
      if (await this.putIf(this.keys.tokens, text, entry?.version)) return [...after];
      await jitter(attempt);
    }
    throw new Error(`${this.where(this.keys.tokens)}: too many concurrent updates; try again`);
  }

  watchTokens(listener: () => void): () => void {
    return this.backend.watch(this.keys.tokens, listener);
  }

  /**
   * Reads the roots key every `intervalMs` so the store's health is known even when nothing
   * changes (a watch alone may not notice an outage for a while).
   */
  monitor(intervalMs = 5_000): void {
    if (this.heartbeat) return;
    let beats = 0;
    this.heartbeat = setInterval(() => {
      void this.get(this.keys.roots)
        .then((entry) => this.rootsRead(entry?.version))
        .catch(() => undefined);
      // Now and then the leader removes the leaf records of replicas long gone.
      if (++beats % 120 === 0 && this.leadershipClaim?.isLeader()) {
        void this.pruneLeaves().catch(() => undefined);
      }
    }, intervalMs);
    this.heartbeat.unref();
  }

  /** Deletes leaf records in which every leaf has expired (their replica is gone). */
  async pruneLeaves(now = Date.now()): Promise<string[]> {
    const entries = await this.health.track(() => this.backend.list(this.keys.leavesDir));
    const dead = entries.flatMap(({ key, value }) => {
      try {
        const { leaves } = parseStored(this.where(key), value, leavesValue);
        return leaves.every((l) => Date.parse(l.notAfter) <= now) ? [key] : [];
      } catch {
        return []; // not ours to judge: leave a value we cannot read alone
      }
    });
    for (const key of dead) await this.health.track(() => this.backend.delete(key));
    return dead;
  }

  /** Resigns leadership and closes the connection. */
  async close(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    // Its sidecars get their leaves from other replicas now; `ca show` should not list these.
    if (this.savedLeaves) await this.backend.delete(this.leavesKey()).catch(() => undefined);
    await this.leadershipClaim?.stop().catch(() => undefined);
    await this.backend.close();
  }

  private leafRootsKey(): string {
    return `${this.keys.leafRootsDir}${this.replicaId}`;
  }

  private leavesKey(): string {
    return `${this.keys.leavesDir}${this.replicaId}`;
  }

  /**
   * The trust domain of this store's replicas: recorded by the first replica to ask, returned
   * to every later one, which must use the same (another one gives its sidecars SPIFFE IDs that
   * the other replicas' sidecars refuse). Delete the key to change the trust domain on purpose.
   */
  async agreeTrustDomain(trustDomain: string): Promise<string> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const entry = await this.get(this.keys.identity);
      if (entry) {
        return parseStored(this.where(this.keys.identity), entry.value, identityValue).trustDomain;
      }
      const value = JSON.stringify({ version: 1, trustDomain });
      if (await this.putIf(this.keys.identity, value, undefined)) return trustDomain;
    }
    throw new Error(`${this.where(this.keys.identity)}: too many concurrent updates; try again`);
  }

  private where(key: string): string {
    return `${this.location}: key ${key}`;
  }

  private get(key: string) {
    return this.health.track(() => this.backend.get(key));
  }

  private putIf(key: string, value: string, version: string | undefined) {
    return this.health.track(() => this.backend.putIf(key, value, version));
  }

  private decodeRoots(text: string): StoredRoot[] {
    const { roots } = parseStored(this.where(this.keys.roots), text, rootsValue);
    return roots.map(({ key, ...root }) => ({
      ...root,
      keyPem: this.opts.cipher.open(
        key,
        rootKeyWhere(this.keys.roots, root.serial),
        `${this.where(this.keys.roots)} (root ${root.serial})`,
      ),
    }));
  }

  private encodeRoots(roots: readonly StoredRoot[]): string {
    const entries = roots.map(({ keyPem, ...root }) => {
      if (!/^[0-9a-f]{1,40}$/.test(root.serial)) {
        throw new CaMaterialError(`bad root serial ${root.serial}`);
      }
      return {
        ...root,
        key: this.opts.cipher.seal(
          keyPem,
          rootKeyWhere(this.keys.roots, root.serial),
          `${this.where(this.keys.roots)} (root ${root.serial})`,
        ),
      };
    });
    return JSON.stringify({ version: 1, roots: entries });
  }

  private decodeTokenKey(text: string): string {
    const { key } = parseStored(this.where(this.keys.tokenKey), text, tokenKeyValue);
    return this.opts.cipher.open(key, this.keys.tokenKey, this.where(this.keys.tokenKey));
  }
}

/** What a root key is bound to: the roots key and the root's serial. */
function rootKeyWhere(rootsKey: string, serial: string): string {
  return `${rootsKey} (root ${serial})`;
}

function jitter(attempt: number): Promise<void> {
  const ms = Math.min(500, 5 * 2 ** Math.min(attempt, 6)) * Math.random();
  return new Promise((resolve) => setTimeout(resolve, ms));
}
