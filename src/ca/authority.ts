// The certificate authority: the root set (from the store), the trust bundle, and leaf
// issuance with the active root. Stateless about leaves; LeafManager keeps and renews them.
import { systemClock, type Clock } from './clock.js';
import {
  CaMaterialError,
  parseCertificate,
  readPrivateKeyPem,
  signingParamsOf,
  type KeyType,
} from './crypto.js';
import { loadSigner, signLeaf, type LoadedSigner } from './leaves.js';
import { bundleOf, generateRoot, operatorRoot, rootInfo, withNewActive } from './roots.js';
import { DEFAULT_LEAF_TTL_MS } from './settings.js';
import {
  DEFAULT_DNS_DOMAIN,
  DEFAULT_NAMESPACE,
  DEFAULT_TRUST_DOMAIN,
  assertDnsDomain,
  assertNamespace,
  assertServiceName,
  assertTrustDomain,
  spiffeId,
  type Identity,
} from './spiffe.js';
import type { CaStore } from './store.js';
import type { IssuedLeaf, RootInfo, StoredRoot } from './types.js';

/** PEM text of an operator-provided CA (`--ca-cert` / `--ca-key`). */
export interface OperatorCa {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface CertificateAuthorityOptions {
  readonly store: CaStore;
  /** Default `lucid.internal`. */
  readonly trustDomain?: string;
  /** Default `default`. */
  readonly namespace?: string;
  /** DNS SAN suffix: `<service>.<dnsDomain>`. Default `lucid.internal`. */
  readonly dnsDomain?: string;
  /** Leaf key algorithm. Default `ecdsa-p256`. */
  readonly keyType?: KeyType;
  /** Leaf lifetime. Default 24 h (see leafTtlFromEnv for CERT_VALIDITY_DAYS). */
  readonly leafTtlMs?: number;
  /** Lifetime of generated roots. Default 10 years. */
  readonly rootTtlMs?: number;
  readonly clock?: Clock;
  /**
   * An operator-provided CA. It becomes the active root; if another root was active, that is a
   * root rotation (the old one keeps being trusted until its leaves are replaced).
   */
  readonly operatorCa?: OperatorCa;
}

/** How a reload changed the root set. */
export interface RootsChange {
  /** The set of trusted roots differs: the trust bundle must be pushed again. */
  readonly bundleChanged: boolean;
  /** A different root signs new leaves now. */
  readonly activeChanged: boolean;
}

export class CertificateAuthority {
  readonly store: CaStore;
  readonly identity: Identity;
  readonly dnsDomain: string;
  readonly keyType: KeyType;
  readonly leafTtlMs: number;
  readonly clock: Clock;
  private readonly rootTtlMs: number | undefined;
  private rootSet: StoredRoot[] = [];
  private readonly rootListeners = new Set<(change: RootsChange) => void>();
  private readonly signers = new Map<string, Promise<LoadedSigner>>();

  private constructor(opts: CertificateAuthorityOptions) {
    this.store = opts.store;
    this.identity = {
      trustDomain: opts.trustDomain ?? DEFAULT_TRUST_DOMAIN,
      namespace: opts.namespace ?? DEFAULT_NAMESPACE,
    };
    assertTrustDomain(this.identity.trustDomain);
    assertNamespace(this.identity.namespace);
    this.dnsDomain = opts.dnsDomain ?? DEFAULT_DNS_DOMAIN;
    assertDnsDomain(this.dnsDomain);
    this.keyType = opts.keyType ?? 'ecdsa-p256';
    this.leafTtlMs = opts.leafTtlMs ?? DEFAULT_LEAF_TTL_MS;
    if (!(this.leafTtlMs >= 1000)) {
      throw new CaMaterialError(`leaf TTL must be at least 1 s, got ${this.leafTtlMs} ms`);
    }
    this.rootTtlMs = opts.rootTtlMs;
    this.clock = opts.clock ?? systemClock;
  }

  /**
   * Opens the CA on a store: uses its roots, makes `operatorCa` the active root if given, and
   * creates a root if the store has none (first start).
   */
  static async open(opts: CertificateAuthorityOptions): Promise<CertificateAuthority> {
    const ca = new CertificateAuthority(opts);
    if (opts.operatorCa) {
      const wanted = await operatorRoot({ ...opts.operatorCa, now: ca.clock.now() });
      ca.rootSet = await ca.store.updateRoots((roots) =>
        roots.some((r) => r.serial === wanted.serial && r.state === 'active')
          ? undefined
          : withNewActive(roots, wanted, ca.clock.now()),
      );
    } else {
      ca.rootSet = await ca.store.updateRoots(async (roots) =>
        roots.length > 0
          ? undefined
          : [await generateRoot({ now: ca.clock.now(), ttlMs: ca.rootTtlMs })],
      );
    }
    ca.assertOneActive(ca.rootSet);
    // Refuses a key it could not sign with now, not at the first leaf; the signer itself (and
    // the x509 library) is loaded on first use (crypto.ts says why).
    parseCertificate(ca.active().certPem);
    signingParamsOf(readPrivateKeyPem(ca.active().keyPem));
    return ca;
  }

  spiffeId(service: string): string {
    return spiffeId(this.identity, service);
  }

  /** Roots as last loaded, active first. */
  roots(): RootInfo[] {
    return this.ordered().map(rootInfo);
  }

  activeRoot(): RootInfo {
    return rootInfo(this.active());
  }

  /** PEM of every trusted root (active first): the SDS validation context. */
  trustBundlePem(): string {
    return bundleOf(this.rootSet);
  }

  /** Serials of the roots that are trusted but no longer sign. */
  retiringSerials(): string[] {
    return this.rootSet.filter((r) => r.state === 'retiring').map((r) => r.serial);
  }

  async issueLeaf(service: string): Promise<IssuedLeaf> {
    assertServiceName(service);
    const root = this.active();
    const signer = await this.signerFor(root);
    const now = this.clock.now();
    if (signer.cert.notAfter.getTime() <= now) {
      throw new CaMaterialError(
        `the active root ${root.serial} expired at ${signer.cert.notAfter.toISOString()}; ` +
          'run `lucid-mesh ca rotate`',
      );
    }
    return signLeaf(signer, {
      service,
      identity: this.identity,
      dnsDomain: this.dnsDomain,
      keyType: this.keyType,
      ttlMs: this.leafTtlMs,
      now,
    });
  }

  /**
   * Starts a new root (generated, or `operatorCa`) and signs with it from now on; the previous
   * active root becomes retiring. Returns the new root.
   */
  async rotateRoot(operatorCa?: OperatorCa): Promise<RootInfo> {
    const now = this.clock.now();
    const next = operatorCa
      ? await operatorRoot({ ...operatorCa, now })
      : await generateRoot({ now, ttlMs: this.rootTtlMs });
    if (operatorCa && this.active().serial === next.serial) {
      throw new CaMaterialError(`${next.serial} is already the active root`);
    }
    this.replaceRoots(await this.store.updateRoots((roots) => withNewActive(roots, next, now)));
    return rootInfo(this.active());
  }

  /** Drops a retiring root from the store. Returns whether it was dropped. */
  async retireRoot(serial: string): Promise<boolean> {
    let dropped = false;
    const next = await this.store.updateRoots((roots) => {
      if (!roots.some((r) => r.serial === serial && r.state === 'retiring')) return undefined;
      dropped = true;
      return roots.filter((r) => r.serial !== serial);
    });
    // The update may also carry another process's rotation: replaceRoots reports both.
    this.replaceRoots(next);
    return dropped;
  }

  /** Re-reads the root set from the store (another process may have rotated). */
  async reload(): Promise<RootsChange> {
    return this.replaceRoots(await this.store.loadRoots());
  }

  /**
   * Calls `listener` whenever the in-memory root set changes: rotateRoot, retireRoot, or a
   * reload that found another process's change. Returns an unsubscribe function.
   */
  onRootsChanged(listener: (change: RootsChange) => void): () => void {
    this.rootListeners.add(listener);
    return () => this.rootListeners.delete(listener);
  }

  private replaceRoots(next: StoredRoot[]): RootsChange {
    this.assertOneActive(next);
    const before = this.rootSet;
    const serials = (roots: readonly StoredRoot[]) =>
      roots
        .map((r) => r.serial)
        .sort()
        .join(',');
    const activeOf = (roots: readonly StoredRoot[]) => roots.find((r) => r.state === 'active');
    const change: RootsChange = {
      bundleChanged: serials(before) !== serials(next) || bundleOf(before) !== bundleOf(next),
      activeChanged: activeOf(before)?.serial !== activeOf(next)?.serial,
    };
    this.rootSet = next;
    for (const serial of this.signers.keys()) {
      if (!next.some((r) => r.serial === serial)) this.signers.delete(serial);
    }
    if (change.bundleChanged || change.activeChanged) {
      for (const listener of [...this.rootListeners]) listener(change);
    }
    return change;
  }

  private active(): StoredRoot {
    const root = this.rootSet.find((r) => r.state === 'active');
    if (!root) throw new CaMaterialError(`no active root in ${this.store.location}`);
    return root;
  }

  private ordered(): StoredRoot[] {
    return [...this.rootSet].sort(
      (a, b) => Number(b.state === 'active') - Number(a.state === 'active'),
    );
  }

  private assertOneActive(roots: readonly StoredRoot[]): void {
    const active = roots.filter((r) => r.state === 'active').length;
    if (active !== 1) {
      throw new CaMaterialError(
        `${this.store.location}: expected exactly one active root, found ${active}`,
      );
    }
  }

  private signerFor(root: StoredRoot): Promise<LoadedSigner> {
    let signer = this.signers.get(root.serial);
    if (!signer) {
      signer = loadSigner(root);
      this.signers.set(root.serial, signer);
      signer.catch(() => this.signers.delete(root.serial));
    }
    return signer;
  }
}
