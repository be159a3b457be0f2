// Time from a source change until every proxy that was sent the resulting config has ACKed it.
// A snapshot is tracked from the moment it is built until it converges, is superseded by a
// newer snapshot, or a proxy NACKs it (then it never converges, and no number is made up).
// Only proxies connected when it was built take part: one that connects later gets it as its
// first config, and the time until it connected (a control plane's start until its first
// sidecar) is no change's convergence.
import type { ResourceKind } from '../protos/envoy.js';
import type { SnapshotRef } from '../xds/observer.js';
import type { StreamInfo } from '../xds/type-status.js';

interface Tracking {
  readonly changedAt: number;
  /** When the snapshot was built: streams opened after it are not waited for. */
  readonly builtAt: number;
  /** stream id → types sent from this snapshot and not yet ACKed. */
  readonly pending: Map<number, Set<ResourceKind>>;
  sentAny: boolean;
}

export class ConvergenceTracker {
  private current: { version: string; tracking: Tracking } | undefined;

  constructor(private readonly observe: (seconds: number, version: string) => void) {}

  snapshotBuilt(version: string, changedAt: number): void {
    this.current = {
      version,
      tracking: { changedAt, builtAt: Date.now(), pending: new Map(), sentAny: false },
    };
  }

  responseSent(stream: StreamInfo, kind: ResourceKind, snapshot: SnapshotRef): void {
    const t = this.tracked(snapshot);
    if (!t || stream.connectedAt > t.builtAt) return;
    let kinds = t.pending.get(stream.id);
    if (!kinds) t.pending.set(stream.id, (kinds = new Set()));
    kinds.add(kind);
    t.sentAny = true;
  }

  acked(stream: StreamInfo, kind: ResourceKind, snapshot: SnapshotRef | undefined): void {
    const t = snapshot && this.tracked(snapshot);
    if (!t) return;
    const kinds = t.pending.get(stream.id);
    kinds?.delete(kind);
    if (kinds?.size === 0) t.pending.delete(stream.id);
    this.maybeDone();
  }

  nacked(): void {
    this.current = undefined;
  }

  streamClosed(stream: StreamInfo): void {
    this.current?.tracking.pending.delete(stream.id);
    this.maybeDone();
  }

  private tracked(snapshot: SnapshotRef): Tracking | undefined {
    return this.current?.version === snapshot.version ? this.current.tracking : undefined;
  }

  private maybeDone(): void {
    const current = this.current;
    const t = current?.tracking;
    if (!current || !t || !t.sentAny || t.pending.size > 0) return;
    this.observe((Date.now() - t.changedAt) / 1000, current.version);
    this.current = undefined;
  }
}
