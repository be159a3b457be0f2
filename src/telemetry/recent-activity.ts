// What the web console shows beyond the live stream: each connected proxy's last pushes (what
// they upserted and removed, and whether the proxy ACKed or NACKed them) and the convergence
// time of the last snapshots. Bounded: PUSHES_PER_PROXY per stream (forgotten when it closes)
// and CONVERGENCE_HISTORY snapshots. Costs one small object per push; no decoding or diffing.
import type { ResourceKind } from '../protos/envoy.js';
import type { SnapshotStore } from '../snapshot/store.js';
import type { ResponseReport, SnapshotRef, XdsObserver } from '../xds/observer.js';
import type { StreamInfo } from '../xds/type-status.js';
import { ConvergenceTracker } from './convergence.js';

export const PUSHES_PER_PROXY = 20;
/**
 * Names kept per push (upserted, removed). A delta stream's first push names every cluster:
 * at 1,000 services, two 1,000-name arrays per proxy, kept until 20 later pushes replace them
 * (~16 KB a proxy, 160 MB at 10,000: bench W9). The counts stay exact.
 */
export const NAMES_PER_PUSH = 16;
export const CONVERGENCE_HISTORY = 60;

export interface PushRecord {
  readonly at: string;
  readonly type: ResourceKind;
  readonly version: string;
  readonly nonce: string;
  readonly resources: number;
  /** Delta streams: the names this push upserted (state of the world sends them all). */
  readonly upserted?: readonly string[];
  readonly removed: readonly string[];
  /** Set when a list above holds only its first NAMES_PER_PUSH names: how many there were. */
  readonly upsertedCount?: number;
  readonly removedCount?: number;
  readonly bytes: number;
  /** superseded: a newer push of the type went out before the proxy answered this one. */
  readonly outcome: 'pending' | 'acked' | 'nacked' | 'superseded';
  /** When the proxy answered. */
  readonly answeredAt?: string;
  /** Envoy's error text, for a NACK. */
  readonly error?: string;
}

export interface ConvergencePoint {
  readonly version: string;
  /** When the change was seen (source change), ISO. */
  readonly changedAt: string;
  /** Until every proxy sent this snapshot had ACKed it. */
  readonly seconds: number;
}

const EMPTY: readonly string[] = Object.freeze([]);

/**
 * One push as kept: one object with every field present from the start (one shape, fields in
 * the object: a field added later, as answeredAt was, moved them to a separate array per
 * push), and a name list only when it has names.
 */
interface Kept {
  readonly at: number;
  readonly kind: ResourceKind;
  readonly version: string;
  readonly nonce: string;
  readonly resources: number;
  readonly bytes: number;
  /** Delta: the first NAMES_PER_PUSH names upserted (undefined for SotW). */
  readonly upserted: readonly string[] | undefined;
  readonly removed: readonly string[];
  /** How many names there were, when a list was cut (else -1). */
  readonly upsertedCount: number;
  readonly removedCount: number;
  outcome: 'pending' | 'acked' | 'nacked';
  answeredAt: number | undefined;
  error: string | undefined;
}

const cut = (names: readonly string[]): readonly string[] =>
  names.length === 0
    ? EMPTY
    : names.length > NAMES_PER_PUSH
      ? names.slice(0, NAMES_PER_PUSH)
      : names;

function keep(r: ResponseReport): Kept {
  const up = r.upserted;
  return {
    at: Date.now(),
    kind: r.kind,
    version: r.version,
    nonce: r.nonce,
    resources: r.resources,
    bytes: r.bytes,
    upserted: up ? cut(up) : undefined,
    removed: cut(r.removed),
    upsertedCount: up && up.length > NAMES_PER_PUSH ? up.length : -1,
    removedCount: r.removed.length > NAMES_PER_PUSH ? r.removed.length : -1,
    outcome: 'pending',
    answeredAt: undefined,
    error: undefined,
  };
}

interface StreamPushes {
  readonly node: string;
  /** Oldest first. */
  readonly pushes: Kept[];
  /** The newest push of each type: the one a proxy's answer is for (a field per type, not a Map). */
  readonly newest: { [K in ResourceKind]: Kept | undefined };
}

export class RecentActivity implements XdsObserver {
  private readonly byStream = new Map<number, StreamPushes>();
  private readonly points: ConvergencePoint[] = [];
  private readonly tracker = new ConvergenceTracker((seconds, version) => {
    const changedAt = new Date(Date.now() - seconds * 1000).toISOString();
    this.points.push({ version, changedAt, seconds });
    if (this.points.length > CONVERGENCE_HISTORY) this.points.shift();
  });

  constructor(store: SnapshotStore) {
    store.onSnapshot((snapshot) => {
      this.tracker.snapshotBuilt(snapshot.version, snapshot.changedAt);
    });
  }

  /** The last pushes to `node` (every stream it has open), newest first. */
  pushes(node: string): { node: string; connected: boolean; pushes: PushRecord[] } {
    const pushes: PushRecord[] = [];
    for (const s of this.byStream.values()) {
      if (s.node !== node) continue;
      // Newest first; the sort is stable, so pushes of the same millisecond keep that order.
      for (let i = s.pushes.length - 1; i >= 0; i--) {
        const k = s.pushes[i]!;
        pushes.push(view(k, s.newest[k.kind] !== k));
      }
    }
    pushes.sort((a, b) => b.at.localeCompare(a.at));
    return { node, connected: pushes.length > 0, pushes };
  }

  /** Convergence of the last snapshots, oldest first. */
  convergence(): ConvergencePoint[] {
    return [...this.points];
  }

  streamOpened(): void {}
  streamClosed(s: StreamInfo): void {
    this.byStream.delete(s.id);
    this.tracker.streamClosed(s);
  }
  responseSent(s: StreamInfo, r: ResponseReport): void {
    this.tracker.responseSent(s, r.kind, r.snapshot);
    if (!s.proxy) return;
    let entry = this.byStream.get(s.id);
    if (!entry) {
      entry = {
        node: s.proxy.nodeId,
        pushes: [],
        newest: {
          clusters: undefined,
          endpoints: undefined,
          listeners: undefined,
          routes: undefined,
          secrets: undefined,
        },
      };
      this.byStream.set(s.id, entry);
    }
    const kept = keep(r);
    entry.pushes.push(kept);
    if (entry.pushes.length > PUSHES_PER_PROXY) entry.pushes.shift();
    entry.newest[r.kind] = kept;
  }
  acked(s: StreamInfo, type: ResourceKind, _version: string, snapshot?: SnapshotRef): void {
    this.tracker.acked(s, type, snapshot);
    this.answer(s, type, 'acked');
  }
  nacked(s: StreamInfo, type: ResourceKind, _version: string, error: string): void {
    this.tracker.nacked();
    this.answer(s, type, 'nacked', error);
  }
  staleNonce(): void {}
  badRequest(): void {}
  authFailed(): void {}
  throttled(): void {}
  streamRefused(): void {}

  /** The answer is to the newest push of that type (a proxy answers the last nonce it got). */
  private answer(
    s: StreamInfo,
    type: ResourceKind,
    outcome: 'acked' | 'nacked',
    error?: string,
  ): void {
    const kept = this.byStream.get(s.id)?.newest[type];
    if (!kept || kept.outcome !== 'pending') return;
    kept.outcome = outcome;
    kept.answeredAt = Date.now();
    if (error !== undefined) kept.error = error;
  }
}

function view(k: Kept, superseded: boolean): PushRecord {
  return {
    at: new Date(k.at).toISOString(),
    type: k.kind,
    version: k.version,
    nonce: k.nonce,
    resources: k.resources,
    ...(k.upserted ? { upserted: k.upserted } : {}),
    removed: k.removed,
    ...(k.upsertedCount >= 0 ? { upsertedCount: k.upsertedCount } : {}),
    ...(k.removedCount >= 0 ? { removedCount: k.removedCount } : {}),
    bytes: k.bytes,
    outcome: superseded && k.outcome === 'pending' ? 'superseded' : k.outcome,
    ...(k.answeredAt !== undefined ? { answeredAt: new Date(k.answeredAt).toISOString() } : {}),
    ...(k.error !== undefined ? { error: k.error } : {}),
  };
}
