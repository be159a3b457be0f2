// Time from a source change until every proxy that was sent the resulting config has ACKed it
// (or a newer snapshot, which holds the change too). A snapshot is tracked from the moment it
// is built until it converges or a proxy NACKs it (then it never converges, and no number is
// made up). A snapshot superseded before it converged is carried into the next one: its
// proxies that have not ACKed yet are still waited for, and when the newer snapshot converges
// each carried change is counted from its own source change. Otherwise, with changes coming
// faster than the proxies ACK (a large mesh under a steady trickle), nothing would ever be
// measured, exactly while convergence is slow.
// Only proxies connected when a snapshot was built take part: one that connects later gets it
// as its first config, and the time until it connected (a control plane's start until its
// first sidecar) is no change's convergence.
import type { ResourceKind } from '../protos/envoy.js';
import type { SnapshotRef } from '../xds/observer.js';
import type { StreamInfo } from '../xds/type-status.js';

/** Changes carried while none converges; older ones are dropped unmeasured. */
const MAX_CARRIED = 60;

interface Change {
  readonly version: string;
  readonly changedAt: number;
}

interface Tracking {
  /** The changes it waits for, oldest first; the last is the current snapshot's. */
  readonly changes: Change[];
  /** When the current snapshot was built: streams opened after it are not waited for. */
  readonly builtAt: number;
  /** stream id → types sent (from these changes' snapshots) and not yet ACKed. */
  readonly pending: Map<number, Set<ResourceKind>>;
  sentAny: boolean;
}

export class ConvergenceTracker {
  private current: Tracking | undefined;

  constructor(private readonly observe: (seconds: number, version: string) => void) {}

  snapshotBuilt(version: string, changedAt: number): void {
    const previous = this.current;
    const change = { version, changedAt };
    const builtAt = Date.now();
    if (previous?.sentAny) {
      // Superseded before it converged: carried (what was sent and not ACKed is still awaited).
      const changes = [...previous.changes, change].slice(-MAX_CARRIED);
      this.current = { changes, builtAt, pending: previous.pending, sentAny: true };
    } else {
      this.current = { changes: [change], builtAt, pending: new Map(), sentAny: false };
    }
  }

  responseSent(stream: StreamInfo, kind: ResourceKind, snapshot: SnapshotRef): void {
    const t = this.current;
    if (!t || t.changes.at(-1)!.version !== snapshot.version) return;
    if (stream.connectedAt > t.builtAt) return;
    let kinds = t.pending.get(stream.id);
    if (!kinds) t.pending.set(stream.id, (kinds = new Set()));
    kinds.add(kind);
    t.sentAny = true;
  }

  acked(stream: StreamInfo, kind: ResourceKind, snapshot: SnapshotRef | undefined): void {
    const t = this.current;
    // The ACK of a stream's latest response of that type: from the current snapshot or, when
    // it was not sent anything of that type since, from a carried one.
    if (!t || !snapshot || !t.changes.some((c) => c.version === snapshot.version)) return;
    const kinds = t.pending.get(stream.id);
    kinds?.delete(kind);
    if (kinds?.size === 0) t.pending.delete(stream.id);
    this.maybeDone();
  }

  nacked(): void {
    this.current = undefined;
  }

  streamClosed(stream: StreamInfo): void {
    this.current?.pending.delete(stream.id);
    this.maybeDone();
  }

  private maybeDone(): void {
    const t = this.current;
    if (!t || !t.sentAny || t.pending.size > 0) return;
    this.current = undefined;
    const now = Date.now();
    for (const change of t.changes) this.observe((now - change.changedAt) / 1000, change.version);
  }
}
