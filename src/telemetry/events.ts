// The live event stream behind GET /v1/events and `lucid-mesh tail`: every snapshot change
// (which resources were added, changed, removed, field by field), every push, ACK and NACK.
import { RESOURCE_KINDS, type ResourceKind } from '../protos/envoy.js';
import type { Snapshot } from '../snapshot/snapshot.js';
import type { SnapshotStore } from '../snapshot/store.js';
import { resourceJson } from '../admin/resource-json.js';
import type { ResponseReport, SnapshotRef, XdsObserver } from '../xds/observer.js';
import type { StreamInfo } from '../xds/type-status.js';
import { jsonDiff, type FieldChange } from './json-diff.js';

export interface ResourceChange {
  readonly type: ResourceKind;
  readonly name: string;
  readonly change: 'added' | 'changed' | 'removed';
  readonly fields: readonly FieldChange[];
}

interface Base {
  readonly at: string;
}
export type MeshEvent = Base &
  (
    | {
        readonly event: 'snapshot';
        readonly version: string;
        readonly previous?: string;
        readonly resources: readonly ResourceChange[];
        /** Connected proxies, each of which is sent whatever of this it subscribes to. */
        readonly proxies: readonly string[];
      }
    | {
        readonly event: 'push';
        readonly node: string;
        readonly mode: string;
        readonly type: ResourceKind;
        readonly version: string;
        readonly nonce: string;
        readonly resources: number;
        readonly upserted?: readonly string[];
        readonly removed: readonly string[];
        readonly bytes: number;
      }
    | {
        readonly event: 'ack';
        readonly node: string;
        readonly type: ResourceKind;
        readonly version: string;
      }
    | {
        readonly event: 'nack';
        readonly node: string;
        readonly type: ResourceKind;
        readonly version: string;
        readonly error: string;
      }
    | {
        readonly event: 'connect' | 'disconnect';
        readonly node: string;
        readonly mode: string;
        readonly reason?: string;
      }
  );

export interface EventFilter {
  node?: string;
  type?: ResourceKind;
}

type Listener = (e: MeshEvent) => void;

export class EventHub implements XdsObserver {
  private readonly subscribers = new Map<Listener, EventFilter>();

  constructor(
    store: SnapshotStore,
    private readonly connectedNodes: () => string[],
  ) {
    store.onSnapshot((snapshot, previous) => {
      // Decoding and diffing costs something: only when someone is watching.
      if (this.subscribers.size > 0) this.publish(this.snapshotEvent(snapshot, previous));
    });
  }

  subscribe(filter: EventFilter, listener: Listener): () => void {
    this.subscribers.set(listener, filter);
    return () => this.subscribers.delete(listener);
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  streamOpened(): void {}
  streamClosed(s: StreamInfo, reason: string): void {
    if (s.proxy)
      this.publish({ at: now(), event: 'disconnect', node: s.proxy.nodeId, mode: s.mode, reason });
  }
  responseSent(s: StreamInfo, r: ResponseReport): void {
    if (this.subscribers.size === 0) return;
    this.publish({
      at: now(),
      event: 'push',
      node: s.proxy?.nodeId ?? '',
      mode: s.mode,
      type: r.kind,
      version: r.version,
      nonce: r.nonce,
      resources: r.resources,
      ...(r.upserted ? { upserted: r.upserted } : {}),
      removed: r.removed,
      bytes: r.bytes,
    });
  }
  acked(s: StreamInfo, type: ResourceKind, version: string, _snapshot?: SnapshotRef): void {
    if (this.subscribers.size > 0)
      this.publish({ at: now(), event: 'ack', node: s.proxy?.nodeId ?? '', type, version });
  }
  nacked(s: StreamInfo, type: ResourceKind, version: string, error: string): void {
    this.publish({ at: now(), event: 'nack', node: s.proxy?.nodeId ?? '', type, version, error });
  }
  staleNonce(): void {}
  badRequest(): void {}
  authFailed(): void {}

  private publish(event: MeshEvent): void {
    for (const [listener, filter] of this.subscribers) {
      const filtered = applyFilter(event, filter);
      if (filtered) listener(filtered);
    }
  }

  private snapshotEvent(snapshot: Snapshot, previous: Snapshot | undefined): MeshEvent {
    const resources: ResourceChange[] = [];
    for (const type of RESOURCE_KINDS) {
      const before = previous?.shared[type] ?? new Map();
      const after = snapshot.shared[type];
      const diff = previous
        ? snapshot.sharedDiffFrom(previous, type)
        : { changed: new Set(after.keys()), removed: new Set<string>() };
      for (const name of [...diff.changed].sort()) {
        const old = before.get(name);
        const fields = jsonDiff(
          old ? resourceJson(old) : undefined,
          resourceJson(after.get(name)!),
        );
        resources.push({ type, name, change: old ? 'changed' : 'added', fields });
      }
      for (const name of [...diff.removed].sort())
        resources.push({ type, name, change: 'removed', fields: [] });
    }
    return {
      at: now(),
      event: 'snapshot',
      version: snapshot.version,
      ...(previous ? { previous: previous.version } : {}),
      resources,
      proxies: this.connectedNodes().sort(),
    };
  }
}

function applyFilter(e: MeshEvent, f: EventFilter): MeshEvent | undefined {
  if (e.event === 'snapshot') {
    if (f.node && !e.proxies.includes(f.node)) return undefined;
    if (!f.type) return e;
    const resources = e.resources.filter((r) => r.type === f.type);
    return resources.length > 0 ? { ...e, resources } : undefined;
  }
  if (f.node && e.node !== f.node) return undefined;
  if (f.type && 'type' in e && e.type !== f.type) return undefined;
  return e;
}

const now = (): string => new Date().toISOString();
