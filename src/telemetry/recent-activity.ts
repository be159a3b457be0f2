// What the web console shows beyond the live stream: each connected proxy's last pushes (what
// they upserted and removed, and whether the proxy ACKed or NACKed them) and the convergence
// time of the last snapshots. Bounded: PUSHES_PER_PROXY per stream (forgotten when it closes)
// and CONVERGENCE_HISTORY snapshots. Costs a row of a shared table per push (~90 B); no
// decoding or diffing.
import type { ResourceKind } from '../protos/envoy.js';
import type { SnapshotStore } from '../snapshot/store.js';
import type { ResponseReport, SnapshotRef, XdsObserver } from '../xds/observer.js';
import type { StreamInfo } from '../xds/type-status.js';
import { ConvergenceTracker } from './convergence.js';
import { RecentPushes, type PushRow } from './recent-pushes.js';
import { compareStrings } from '../text-order.js';

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

const cut = (names: readonly string[]): readonly string[] =>
  names.length === 0
    ? EMPTY
    : names.length > NAMES_PER_PUSH
      ? names.slice(0, NAMES_PER_PUSH)
      : names;

export class RecentActivity implements XdsObserver {
  /** Every stream's last pushes, in one table (recent-pushes.ts). */
  private readonly recent = new RecentPushes(PUSHES_PER_PROXY);
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
    for (const { row, newestOfKind } of this.recent.pushesOf(node)) {
      pushes.push(view(row, !newestOfKind));
    }
    // Newest first; the sort is stable, so pushes of the same millisecond keep that order.
    pushes.sort((a, b) => compareStrings(b.at, a.at));
    return { node, connected: pushes.length > 0, pushes };
  }

  /** Convergence of the last snapshots, oldest first. */
  convergence(): ConvergencePoint[] {
    return [...this.points];
  }

  streamOpened(): void {}
  streamClosed(s: StreamInfo): void {
    this.recent.forget(s.id);
    this.tracker.streamClosed(s);
  }
  responseSent(s: StreamInfo, r: ResponseReport): void {
    this.tracker.responseSent(s, r.kind, r.snapshot);
    if (!s.proxy) return;
    const up = r.upserted;
    this.recent.add(s.id, s.proxy.nodeId, {
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
    });
  }
  acked(s: StreamInfo, type: ResourceKind, _version: string, snapshot?: SnapshotRef): void {
    this.tracker.acked(s, type, snapshot);
    // The answer is to the newest push of that type (a proxy answers the last nonce it got).
    this.recent.answer(s.id, type, 'acked', Date.now());
  }
  nacked(s: StreamInfo, type: ResourceKind, _version: string, error: string): void {
    this.tracker.nacked();
    this.recent.answer(s.id, type, 'nacked', Date.now(), error);
  }
  staleNonce(): void {}
  badRequest(): void {}
  authFailed(): void {}
  throttled(): void {}
  streamRefused(): void {}
}

function view(k: PushRow, superseded: boolean): PushRecord {
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
