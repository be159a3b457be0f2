// Keeps the current leaf of every service identity and renews it before it expires; carries
// root rotations through to the leaves. Emits a change event per renewed leaf and per trust
// bundle change; the xDS side turns those into SDS pushes.
//
// Root rotation, in time order (docs/ca.md has the why):
//   1. The new root appears (rotateRoot here, or another process's `ca rotate` seen through the
//      store watcher): emit bundleChanged — proxies learn to trust old + new.
//   2. After rotationDelayMs (the new bundle reaches every proxy), leaves signed by the old root
//      are re-issued at random points spread over rotationSpreadMs, not all at once. A replica
//      that hears of the rotation late spreads them over what is left of that window (counted
//      from the root's retiringSince), and one that finds the old root already gone re-issues
//      at once.
//   3. When no current leaf (nor one a previous process issued that is still valid) is signed by
//      the old root, wait retireDelayMs (the new leaves reach every proxy), drop the old root
//      from the store and emit bundleChanged. With a shared store only the leader drops it, and
//      only when root-retirement.ts says so: the window has passed and no live replica's
//      record names the root, or a whole leaf lifetime has passed.
import type { Logger } from '../telemetry/logger.js';
import type { CertificateAuthority, OperatorCa, RootsChange } from './authority.js';
import type { TimerHandle } from './clock.js';
import {
  decideRetirement,
  holdingsOf,
  type HolderRead,
  type LeafHolders,
  type RetirementDecision,
} from './root-retirement.js';
import type { Leadership } from './state/kv-backend.js';
import {
  leafRecordOf,
  lifetimeSeconds,
  type ExpiryReport,
  type IssuedLeaf,
  type LeafRecord,
  type RootInfo,
} from './types.js';
import { compareStrings } from '../text-order.js';

export interface CaChange {
  /** Set when one service's leaf was renewed: push that service's certificate secret. */
  readonly service?: string;
  /** The trust bundle changed: push the validation context to every proxy. */
  readonly bundleChanged: boolean;
}

export type CaChangeListener = (change: CaChange) => void;
/** A leaf was installed: `renewed` when it replaced one of this process (the event stream). */
export type LeafIssuedListener = (leaf: IssuedLeaf, renewed: boolean) => void;

export interface LeafManagerOptions {
  readonly ca: CertificateAuthority;
  readonly logger?: Logger;
  /** Renew leaves at a random point in 60–90 % of their lifetime. Default true (AUTO_ROTATE_CERTS). */
  readonly autoRotate?: boolean;
  /** After a root rotation, wait this long before re-issuing old-root leaves. Default 10 s. */
  readonly rotationDelayMs?: number;
  /** ...and spread those re-issues over this window. Default 20 s. */
  readonly rotationSpreadMs?: number;
  /** Keep trusting a retiring root this long after its last leaf was replaced. Default 20 s. */
  readonly retireDelayMs?: number;
  /** Retry a failed renewal after this long. Default 10 s. */
  readonly retryMs?: number;
  /** Watch the store for root changes by other processes. Default true. */
  readonly watchStore?: boolean;
  /** Uniform in [0, 1). Tests pin it. */
  readonly random?: () => number;
  /**
   * A store shared by replicas: only the leader drops retiring roots, and not before every
   * replica had its rotation window (rotation delay + spread + retire delay) to re-issue.
   */
  readonly leadership?: Leadership;
  /**
   * The replicas' records of the roots their leaves are signed by (a shared store): this
   * replica publishes its own, and the leader keeps a retiring root while a live replica's
   * record names it (up to one leaf lifetime).
   */
  readonly holders?: LeafHolders;
  /** How often the leader re-reads those records while they keep a root. Default 1 s. */
  readonly holderPollMs?: number;
}

/** What kept a retiring root so far (for the log line of its drop). */
interface RetireWait {
  readonly replicas: Set<string>;
  readonly unreadable: Set<string>;
  /** What was last logged, so a poll that finds the same logs nothing. */
  said: string;
}

/** Renewal window as fractions of a leaf's validity period (Consul's choice). */
export const RENEW_FROM = 0.6;
export const RENEW_TO = 0.9;

interface Entry {
  readonly leaf: IssuedLeaf;
  renewAt: number;
  timer?: TimerHandle;
}

export class LeafManager {
  readonly ca: CertificateAuthority;
  private readonly log: Logger | undefined;
  private readonly autoRotate: boolean;
  private readonly rotationDelayMs: number;
  private readonly rotationSpreadMs: number;
  private readonly retireDelayMs: number;
  private readonly retryMs: number;
  private readonly random: () => number;
  private readonly leadership: Leadership | undefined;
  private readonly holders: LeafHolders | undefined;
  private readonly holderPollMs: number;
  private readonly retireWaits = new Map<string, RetireWait>();
  private published = JSON.stringify([]);

  private readonly entries = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<IssuedLeaf>>();
  /** Leaves a previous process issued, still valid, not yet replaced here. */
  private readonly inherited = new Map<string, LeafRecord>();
  /** Bumped by forget(): an issue that started before must not install its leaf. */
  private readonly epochs = new Map<string, number>();
  private readonly retireTimers = new Map<string, TimerHandle>();
  private inheritedTimer: TimerHandle | undefined;
  private readonly listeners = new Set<CaChangeListener>();
  private readonly issuedListeners = new Set<LeafIssuedListener>();
  private readonly pending = new Set<Promise<unknown>>();
  private reloadQueued = false;
  private persisting: Promise<void> | undefined;
  private persistAgain = false;
  private rootWork: Promise<void> = Promise.resolve();
  private readonly cleanups: Array<() => void> = [];
  private stopped = false;

  private constructor(opts: LeafManagerOptions) {
    this.ca = opts.ca;
    this.log = opts.logger?.child({ component: 'ca' });
    this.autoRotate = opts.autoRotate ?? true;
    this.rotationDelayMs = opts.rotationDelayMs ?? 10_000;
    this.rotationSpreadMs = opts.rotationSpreadMs ?? 20_000;
    this.retireDelayMs = opts.retireDelayMs ?? 20_000;
    this.retryMs = opts.retryMs ?? 10_000;
    this.random = opts.random ?? Math.random;
    this.leadership = opts.leadership;
    this.holders = opts.holders;
    this.holderPollMs = opts.holderPollMs ?? 1_000;
  }

  /** Loads what a previous process issued, subscribes to root changes, and starts the timers. */
  static async start(opts: LeafManagerOptions): Promise<LeafManager> {
    const manager = new LeafManager(opts);
    const now = manager.now();
    for (const record of await opts.ca.store.loadLeaves()) {
      if (Date.parse(record.notAfter) > now) manager.inherited.set(record.service, record);
    }
    manager.cleanups.push(opts.ca.onRootsChanged((change) => manager.rootsChanged(change)));
    if (opts.watchStore ?? true) {
      manager.cleanups.push(opts.ca.store.watchRoots(() => manager.reloadRoots()));
    }
    if (manager.leadership) {
      manager.cleanups.push(
        manager.leadership.onChange((leader) => leader && manager.checkRetirement()),
      );
    }
    manager.checkRetirement();
    return manager;
  }

  /** The service's current leaf; issues one on first request (no change event for that). */
  current(service: string): Promise<IssuedLeaf> {
    if (this.stopped) return Promise.reject(new Error('LeafManager is stopped'));
    const entry = this.entries.get(service);
    if (!entry) return this.issue(service);
    if (this.now() < entry.renewAt) return Promise.resolve(entry.leaf);
    // Past its renewal point with no timer to renew it (auto-rotate off, or the process slept).
    // A failed renewal is no reason to fail the caller while the old leaf is still valid.
    return this.issue(service).catch((err: unknown) => {
      if (this.now() < entry.leaf.notAfter.getTime()) {
        this.log?.warn(
          { service, error: (err as Error).message },
          'leaf renewal failed; serving the current leaf',
        );
        return entry.leaf;
      }
      throw err;
    });
  }

  /** The current leaf if one was issued; never issues. */
  peek(service: string): IssuedLeaf | undefined {
    return this.entries.get(service)?.leaf;
  }

  /** Services with a current leaf. */
  services(): string[] {
    return [...this.entries.keys()].sort();
  }

  /** When the service's leaf will be renewed (undefined: no leaf). */
  renewAt(service: string): Date | undefined {
    const entry = this.entries.get(service);
    return entry ? new Date(entry.renewAt) : undefined;
  }

  /** Stops renewing a service's leaf (no proxy of it is left). */
  forget(service: string): void {
    const entry = this.entries.get(service);
    entry?.timer?.cancel();
    this.entries.delete(service);
    this.inherited.delete(service);
    this.epochs.set(service, (this.epochs.get(service) ?? 0) + 1);
    this.persist();
    this.checkRetirement();
  }

  /** PEM of every trusted root: the validation context every proxy gets. */
  trustBundlePem(): string {
    return this.ca.trustBundlePem();
  }

  onChange(listener: CaChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onIssued(listener: LeafIssuedListener): () => void {
    this.issuedListeners.add(listener);
    return () => this.issuedListeners.delete(listener);
  }

  /** Starts a new root in this process (a generated one, or the operator's). */
  rotateRoot(operatorCa?: OperatorCa): Promise<RootInfo> {
    return this.serialRootWork(() => this.ca.rotateRoot(operatorCa));
  }

  /** Seconds until notAfter for every current leaf and every root: what metrics export. */
  expiries(): ExpiryReport {
    const now = this.now();
    const seconds = (d: Date) => Math.floor((d.getTime() - now) / 1000);
    return {
      leaves: [...this.entries.values()]
        .map(({ leaf }) => ({
          service: leaf.service,
          serial: leaf.serial,
          rootSerial: leaf.rootSerial,
          notAfter: leaf.notAfter,
          secondsRemaining: seconds(leaf.notAfter),
          lifetimeSeconds: lifetimeSeconds(leaf),
        }))
        .sort((a, b) => compareStrings(a.service, b.service)),
      roots: this.ca.roots().map((r) => ({
        serial: r.serial,
        state: r.state,
        notAfter: r.notAfter,
        secondsRemaining: seconds(r.notAfter),
        lifetimeSeconds: lifetimeSeconds(r),
      })),
    };
  }

  /** Resolves once no issuance, store write or root reload is in flight (tests). */
  async whenIdle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  stop(): void {
    this.stopped = true;
    for (const cleanup of this.cleanups.splice(0)) cleanup();
    for (const entry of this.entries.values()) entry.timer?.cancel();
    for (const timer of this.retireTimers.values()) timer.cancel();
    this.retireTimers.clear();
    this.inheritedTimer?.cancel();
  }

  private now(): number {
    return this.ca.clock.now();
  }

  private issue(service: string): Promise<IssuedLeaf> {
    const running = this.inflight.get(service);
    if (running) return running;
    const epoch = this.epochs.get(service) ?? 0;
    const run = (async () => {
      const leaf = await this.ca.issueLeaf(service);
      if (this.stopped || (this.epochs.get(service) ?? 0) !== epoch) return leaf;
      const renewed = this.entries.has(service);
      this.install(leaf);
      this.inherited.delete(service);
      this.persist();
      this.log?.info(
        { service, serial: leaf.serial, root: leaf.rootSerial, notAfter: leaf.notAfter },
        renewed ? 'leaf certificate renewed' : 'leaf certificate issued',
      );
      if (renewed) this.emit({ service, bundleChanged: false });
      for (const listener of [...this.issuedListeners]) {
        try {
          listener(leaf, renewed);
        } catch (err) {
          this.log?.error({ error: (err as Error).message }, 'leaf listener threw');
        }
      }
      this.checkRetirement();
      return leaf;
    })();
    this.inflight.set(service, run);
    this.track(run.finally(() => this.inflight.delete(service)).catch(() => undefined));
    return run;
  }

  private install(leaf: IssuedLeaf): void {
    const previous = this.entries.get(leaf.service);
    previous?.timer?.cancel();
    const from = leaf.notBefore.getTime();
    const lifetime = leaf.notAfter.getTime() - from;
    const entry: Entry = {
      leaf,
      renewAt: Math.round(from + lifetime * (RENEW_FROM + (RENEW_TO - RENEW_FROM) * this.random())),
    };
    this.entries.set(leaf.service, entry);
    if (this.autoRotate) this.schedule(entry, entry.renewAt);
    // Issued by a root that stopped signing while we were issuing: replace like the others.
    if (leaf.rootSerial !== this.ca.activeRoot().serial) this.scheduleRotation(entry);
  }

  private schedule(entry: Entry, at: number): void {
    entry.timer?.cancel();
    entry.renewAt = at;
    const service = entry.leaf.service;
    entry.timer = this.ca.clock.setTimer(() => this.renewDue(service, entry), at - this.now());
  }

  private scheduleRotation(entry: Entry): void {
    const now = this.now();
    let at = Math.round(now + this.rotationDelayMs + this.random() * this.rotationSpreadMs);
    const root = this.ca.roots().find((r) => r.serial === entry.leaf.rootSerial);
    if (!root) {
      at = now; // its root is gone from every bundle: every peer refuses this leaf now
    } else if (root.retiringSince) {
      // The leader drops the root at retiringSince + delay + spread + retire delay, whenever
      // this replica heard of the rotation (its store watch may have stalled): re-issue
      // within what is left of the window, so the new leaf has the retire delay to land.
      const end = root.retiringSince.getTime() + this.rotationDelayMs + this.rotationSpreadMs;
      if (at > end) at = Math.round(now + this.random() * Math.max(0, end - now));
    }
    if (at < entry.renewAt || !entry.timer) this.schedule(entry, Math.min(at, entry.renewAt));
  }

  private renewDue(service: string, entry: Entry): void {
    if (this.stopped || this.entries.get(service) !== entry) return;
    entry.timer = undefined;
    this.issue(service).catch((err: unknown) => {
      if (this.stopped || this.entries.get(service) !== entry) return;
      this.log?.error(
        { service, error: (err as Error).message, retryInMs: this.retryMs },
        'leaf certificate renewal failed',
      );
      this.schedule(entry, this.now() + this.retryMs);
    });
  }

  private rootsChanged(change: RootsChange): void {
    if (this.stopped) return;
    const active = this.ca.activeRoot().serial;
    this.log?.info(
      { active, trusted: this.ca.roots().map((r) => `${r.serial} (${r.state})`) },
      'CA roots changed',
    );
    if (change.bundleChanged) this.emit({ bundleChanged: true });
    // A dropped root matters too: a replica that missed the rotation learns both at once.
    if (change.activeChanged || change.bundleChanged) {
      for (const entry of this.entries.values()) {
        if (entry.leaf.rootSerial !== active) this.scheduleRotation(entry);
      }
    }
    this.checkRetirement();
  }

  /** Schedules dropping retiring roots nothing uses any more; cancels that when one is used. */
  private checkRetirement(): void {
    if (this.stopped) return;
    const now = this.now();
    for (const [service, record] of this.inherited) {
      if (Date.parse(record.notAfter) <= now) this.inherited.delete(service);
    }
    let nextInheritedExpiry = Infinity;
    for (const serial of this.ca.retiringSerials()) {
      const inheritedUsers = [...this.inherited.values()].filter((r) => r.rootSerial === serial);
      for (const r of inheritedUsers) {
        nextInheritedExpiry = Math.min(nextInheritedExpiry, Date.parse(r.notAfter));
      }
      const used =
        inheritedUsers.length > 0 ||
        [...this.entries.values()].some((e) => e.leaf.rootSerial === serial);
      const timer = this.retireTimers.get(serial);
      if (used) {
        timer?.cancel();
        this.retireTimers.delete(serial);
      } else if (!timer) {
        this.retireTimers.set(
          serial,
          this.ca.clock.setTimer(() => this.retire(serial), this.retireDelayMs),
        );
      }
    }
    this.inheritedTimer?.cancel();
    this.inheritedTimer =
      nextInheritedExpiry === Infinity
        ? undefined
        : this.ca.clock.setTimer(() => this.checkRetirement(), nextInheritedExpiry - now + 1);
  }

  private retire(serial: string): void {
    this.retireTimers.delete(serial);
    if (this.stopped) return;
    // Followers keep the root until the leader drops it (their watch then reloads).
    if (this.leadership && !this.leadership.isLeader()) return;
    if (this.inflight.size > 0) {
      // An issue that started before the rotation may still return an old-root leaf.
      this.checkRetirement();
      return;
    }
    const run = (async () => {
      const decision = this.leadership ? await this.retirementDecision(serial) : undefined;
      if (this.stopped) return;
      if (decision && !decision.drop) return this.waitToRetire(serial, decision);
      await this.serialRootWork(async () => {
        const stillUnused =
          ![...this.entries.values()].some((e) => e.leaf.rootSerial === serial) &&
          ![...this.inherited.values()].some((r) => r.rootSerial === serial);
        if (!stillUnused) return this.checkRetirement();
        const since = this.ca.roots().find((r) => r.serial === serial)?.retiringSince;
        if (await this.ca.retireRoot(serial)) this.logRetired(serial, decision, since);
        this.retireWaits.delete(serial);
      });
    })().catch((err: unknown) => {
      this.log?.error({ root: serial, error: (err as Error).message }, 'retiring CA root failed');
      this.checkRetirement();
    });
    this.track(run);
  }

  /** The leader's rule (root-retirement.ts), on the replicas' records when the store has them. */
  private async retirementDecision(serial: string): Promise<RetirementDecision> {
    const root = this.ca.roots().find((r) => r.serial === serial);
    const retiringSince = root?.retiringSince?.getTime() ?? 0;
    const minWindowMs = this.rotationDelayMs + this.rotationSpreadMs + this.retireDelayMs;
    let holders: HolderRead[] | undefined;
    if (this.holders && this.now() >= retiringSince + minWindowMs) {
      holders = await this.holders
        .readLeafRoots()
        .catch((err: unknown) => [{ key: 'ca/leaf-roots/', error: (err as Error).message }]);
    }
    return decideRetirement({
      serial,
      now: this.now(),
      retiringSince,
      minWindowMs,
      hardBoundMs: this.ca.leafTtlMs,
      holders,
      self: this.holders?.replicaId,
    });
  }

  /** Checks again when the window ends, or soon while replicas' records keep the root. */
  private waitToRetire(serial: string, decision: RetirementDecision & { drop: false }): void {
    const now = this.now();
    const at =
      decision.waitFor === 'window'
        ? decision.recheckAt
        : Math.min(decision.recheckAt, now + this.holderPollMs);
    this.retireTimers.get(serial)?.cancel();
    this.retireTimers.set(
      serial,
      this.ca.clock.setTimer(() => this.retire(serial), Math.max(0, at - now)),
    );
    if (decision.waitFor === 'window') return;
    let wait = this.retireWaits.get(serial);
    if (!wait) {
      wait = { replicas: new Set(), unreadable: new Set(), said: '' };
      this.retireWaits.set(serial, wait);
    }
    for (const r of decision.holders) wait.replicas.add(r);
    for (const u of decision.unreadable) wait.unreadable.add(u.key);
    const said = JSON.stringify([decision.holders, decision.unreadable]);
    if (said === wait.said) return;
    wait.said = said;
    const dropBy = new Date(decision.recheckAt).toISOString();
    for (const { key, error } of decision.unreadable) {
      this.log?.warn(
        { root: serial, key, error, dropBy },
        `keeping the retiring CA root: cannot read the leaf-roots record ${key} (a failed read never drops a root)`,
      );
    }
    if (decision.holders.length > 0) {
      this.log?.info(
        { root: serial, replicas: decision.holders, dropBy },
        'keeping the retiring CA root: live replicas still hold leaves signed by it',
      );
    }
  }

  private logRetired(
    serial: string,
    decision: RetirementDecision | undefined,
    since: Date | undefined,
  ): void {
    const wait = this.retireWaits.get(serial);
    const waited = {
      // How long it stayed after it stopped signing (the window alone: ~50 s by default).
      retiringForMs: since ? this.now() - since.getTime() : undefined,
      waitedForReplicas: [...(wait?.replicas ?? [])].sort(),
      waitedForUnreadable: [...(wait?.unreadable ?? [])].sort(),
    };
    if (!decision || !decision.drop || decision.reason === 'window') {
      this.log?.info({ root: serial }, 'retired CA root: no leaf signed by it is left');
    } else if (decision.reason === 'no-holders') {
      this.log?.info(
        { root: serial, reason: decision.reason, ...waited },
        'retired CA root: the rotation window passed and no live replica holds a leaf signed by it',
      );
    } else {
      this.log?.info(
        { root: serial, reason: decision.reason, overridden: decision.overridden, ...waited },
        'retired CA root: a whole leaf lifetime passed since it stopped signing, so every leaf it signed has expired',
      );
    }
  }

  /** Store watcher: re-read the roots; bursts of events collapse into one pending reload. */
  private reloadRoots(): void {
    if (this.reloadQueued || this.stopped) return;
    this.reloadQueued = true;
    void this.serialRootWork(async () => {
      this.reloadQueued = false;
      await this.ca.reload();
    }).catch((err: unknown) => {
      this.log?.error(
        { error: (err as Error).message, store: this.ca.store.location },
        'reloading CA roots failed; keeping the current ones',
      );
    });
  }

  /** Root-set changes run one at a time, in order. */
  private serialRootWork<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.rootWork.then(fn);
    this.rootWork = run.then(
      () => undefined,
      () => undefined,
    );
    this.track(this.rootWork);
    return run;
  }

  /** Saves the leaf records; a burst of issues (many services at start) costs two writes, not N. */
  private persist(): void {
    if (this.persisting) {
      this.persistAgain = true;
      return;
    }
    const run = (async () => {
      do {
        this.persistAgain = false;
        const records = new Map<string, LeafRecord>(this.inherited);
        for (const [service, entry] of this.entries) records.set(service, leafRecordOf(entry.leaf));
        const leaves = [...records.values()].sort((a, b) => compareStrings(a.service, b.service));
        await this.ca.store.saveLeaves(leaves).catch((err: unknown) => {
          this.log?.warn({ error: (err as Error).message }, 'saving leaf records failed');
        });
        await this.publishHoldings(leaves);
      } while (this.persistAgain);
    })();
    this.persisting = run.finally(() => (this.persisting = undefined));
    this.track(this.persisting);
  }

  /** Tells the leader which roots this replica's leaves are signed by, when that changes. */
  private async publishHoldings(leaves: readonly LeafRecord[]): Promise<void> {
    if (!this.holders) return;
    const holdings = holdingsOf(leaves);
    const text = JSON.stringify(holdings);
    if (text === this.published) return;
    this.published = text;
    await this.holders.publishLeafRoots(holdings).catch((err: unknown) => {
      // The store keeps retrying the write; the leader keeps the root meanwhile only if the
      // previous record named it.
      this.log?.warn(
        { error: (err as Error).message },
        "publishing the roots of this replica's leaves failed; retrying",
      );
    });
  }

  private emit(change: CaChange): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(change);
      } catch (err) {
        this.log?.error({ error: (err as Error).message }, 'CA change listener threw');
      }
    }
  }

  private track(promise: Promise<unknown>): void {
    this.pending.add(promise);
    void promise.finally(() => this.pending.delete(promise));
  }
}
