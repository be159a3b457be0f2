// The live event stream behind GET /v1/events and `lucid-mesh tail`: every snapshot change
// (which resources were added, changed, removed, field by field), every push, ACK and NACK.
// Each Server-Sent Events client has a bounded buffer: one that falls behind is sent `lost`
// and disconnected, so a slow or stuck reader cannot make the process buffer without limit.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { RESOURCE_KINDS, type ResourceKind } from '../protos/envoy.js';
import type { Snapshot } from '../snapshot/snapshot.js';
import type { SnapshotStore } from '../snapshot/store.js';
import { resourceJson } from '../admin/resource-json.js';
import type { ResponseReport, SnapshotRef, XdsObserver } from '../xds/observer.js';
import type { StreamInfo } from '../xds/type-status.js';
import { jsonDiff, type FieldChange } from './json-diff.js';
import type { Logger } from './logger.js';

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
  /** Only these kinds of event (default: all). Kinds nobody wants are never built. */
  events?: ReadonlySet<MeshEvent['event']>;
}

type Listener = (e: MeshEvent) => void;

/**
 * The last thing an SSE client that fell behind is sent (as `event: lost`) before it is
 * disconnected: the events since were dropped, so it should reconnect and re-read state.
 */
export interface LostEvent {
  readonly at: string;
  readonly event: 'lost';
  readonly reason: string;
  readonly droppedEvents: number;
}

/** Default for --max-event-clients: `tail`s and dashboards, not one per proxy. */
export const DEFAULT_MAX_EVENT_CLIENTS = 64;
/**
 * What one SSE client may fall behind by: bytes held for it in this process (queued here, and
 * handed to its socket but not yet taken by the kernel) before it is dropped. The kernel's own
 * socket buffer comes on top. A fan-out to 1,000 proxies is ~250 B of push and ~100 B of ACK
 * event per proxy and type: 2 MiB holds a change of every type in such a mesh for a reader
 * that is momentarily slow; 64 stuck clients hold at most ~128 MiB.
 */
export const DEFAULT_EVENT_CLIENT_BUFFER_BYTES = 2 * 1024 * 1024;
const SSE_HEARTBEAT_MS = 15_000;
/** A dropped client that does not read its last bytes within this is cut. */
const LOST_GRACE_MS = 5_000;

export interface EventHubOptions {
  /** At most this many SSE clients at once; more are refused with 503. */
  readonly maxClients?: number;
  readonly maxClientBufferBytes?: number;
  readonly heartbeatMs?: number;
  readonly logger?: Logger;
}

/** What the SSE side has done (tests, and for the record). */
export interface EventClientCounters {
  /** Clients refused: --max-event-clients were connected. */
  refused: number;
  /** Clients sent `lost` and disconnected for falling behind. */
  lost: number;
  /** The most bytes ever held for one client (maxClientBufferBytes at most, plus one event). */
  maxQueuedBytes: number;
}

export class EventHub implements XdsObserver {
  private readonly subscribers = new Map<Listener, EventFilter>();
  private readonly clients = new Set<SseClient>();
  private readonly maxClients: number;
  private readonly maxClientBufferBytes: number;
  private readonly heartbeatMs: number;
  private readonly logger: Logger | undefined;
  readonly sse: EventClientCounters = { refused: 0, lost: 0, maxQueuedBytes: 0 };

  constructor(
    store: SnapshotStore,
    private readonly connectedNodes: () => string[],
    options: EventHubOptions = {},
  ) {
    this.maxClients = options.maxClients ?? DEFAULT_MAX_EVENT_CLIENTS;
    this.maxClientBufferBytes = options.maxClientBufferBytes ?? DEFAULT_EVENT_CLIENT_BUFFER_BYTES;
    this.heartbeatMs = options.heartbeatMs ?? SSE_HEARTBEAT_MS;
    this.logger = options.logger;
    store.onSnapshot((snapshot, previous) => {
      // Decoding and diffing costs something: only when someone is watching.
      if (this.wants('snapshot')) this.publish(this.snapshotEvent(snapshot, previous));
    });
  }

  /** SSE clients connected now. */
  get clientCount(): number {
    return this.clients.size;
  }

  /**
   * Serves GET /v1/events on `res` until the client leaves or falls behind: one
   * `event: <kind>` + JSON `data:` per mesh event, comments as heartbeats. Past maxClients,
   * answers 503.
   */
  serveEvents(req: IncomingMessage, res: ServerResponse, filter: EventFilter): void {
    if (this.clients.size >= this.maxClients) {
      this.sse.refused++;
      res.writeHead(503, {
        'content-type': 'application/json',
        'retry-after': '5',
        connection: 'close',
      });
      res.end(
        `${JSON.stringify({ error: `too many event clients (at most ${this.maxClients}, --max-event-clients); try again later` })}\n`,
      );
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    const client = new SseClient(res, this.maxClientBufferBytes, this.sse, (dropped) => {
      this.logger?.warn(
        {
          peer: req.socket.remoteAddress,
          droppedEvents: dropped,
          limitBytes: this.maxClientBufferBytes,
        },
        'event stream client fell behind; sent "lost" and disconnected it',
      );
    });
    this.clients.add(client);
    client.send(
      `: lucid-mesh events${filter.node ? ` node=${filter.node}` : ''}${filter.type ? ` type=${filter.type}` : ''}\n\n`,
    );
    const unsubscribe = this.subscribe(filter, (e) =>
      client.send(`event: ${e.event}\ndata: ${JSON.stringify(e)}\n\n`),
    );
    // Comments keep proxies and load balancers from closing an idle stream.
    const heartbeat = setInterval(() => client.send(': keepalive\n\n'), this.heartbeatMs);
    const done = (): void => {
      clearInterval(heartbeat);
      unsubscribe();
      this.clients.delete(client);
      client.close();
    };
    client.onEnd = done;
    res.on('close', done);
  }

  subscribe(filter: EventFilter, listener: Listener): () => void {
    this.subscribers.set(listener, filter);
    return () => this.subscribers.delete(listener);
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  streamOpened(): void {}
  proxyIdentified(s: StreamInfo): void {
    // Built only for a subscriber (a storm opens 10,000 streams: the timestamps alone ~75 ms).
    if (s.proxy && this.wants('connect'))
      this.publish({ at: now(), event: 'connect', node: s.proxy.nodeId, mode: s.mode });
  }
  streamClosed(s: StreamInfo, reason: string): void {
    if (s.proxy && this.wants('disconnect'))
      this.publish({ at: now(), event: 'disconnect', node: s.proxy.nodeId, mode: s.mode, reason });
  }
  responseSent(s: StreamInfo, r: ResponseReport): void {
    if (!this.wants('push')) return;
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
    if (this.wants('ack'))
      this.publish({ at: now(), event: 'ack', node: s.proxy?.nodeId ?? '', type, version });
  }
  nacked(s: StreamInfo, type: ResourceKind, version: string, error: string): void {
    this.publish({ at: now(), event: 'nack', node: s.proxy?.nodeId ?? '', type, version, error });
  }
  staleNonce(): void {}
  badRequest(): void {}
  authFailed(): void {}
  throttled(): void {}
  streamRefused(): void {}

  /** Whether any subscriber takes this kind of event (building some costs at 1,000 proxies). */
  private wants(kind: MeshEvent['event']): boolean {
    for (const filter of this.subscribers.values()) {
      if (!filter.events || filter.events.has(kind)) return true;
    }
    return false;
  }

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

/**
 * One SSE response with a bounded buffer. While the socket takes writes, events go straight
 * to it; once `write` returns false they wait here for 'drain'. When what waits here plus
 * what the socket still holds passes `maxBytes`, the client is sent `lost` and disconnected.
 */
class SseClient {
  private queue: string[] = [];
  private queuedBytes = 0;
  private blocked = false;
  private ended = false;
  /** Called once when the client is dropped for falling behind (the hub forgets it). */
  onEnd: (() => void) | undefined;

  constructor(
    private readonly res: ServerResponse,
    private readonly maxBytes: number,
    private readonly counters: EventClientCounters,
    private readonly dropped: (events: number) => void,
  ) {}

  send(chunk: string): void {
    if (this.ended) return;
    if (!this.blocked) {
      if (!this.res.write(chunk)) {
        this.blocked = true;
        this.res.once('drain', () => this.drain());
      }
      return;
    }
    this.queue.push(chunk);
    this.queuedBytes += Buffer.byteLength(chunk);
    const held = this.queuedBytes + this.res.writableLength;
    if (held > this.counters.maxQueuedBytes) this.counters.maxQueuedBytes = held;
    if (held > this.maxBytes) this.lose();
  }

  close(): void {
    this.ended = true;
    this.queue = [];
    this.queuedBytes = 0;
  }

  private drain(): void {
    if (this.ended) return;
    this.blocked = false;
    if (this.queue.length === 0) return;
    const chunk = this.queue.join('');
    this.queue = [];
    this.queuedBytes = 0;
    this.send(chunk);
  }

  private lose(): void {
    const droppedEvents = this.queue.length;
    this.close();
    this.counters.lost++;
    const lost: LostEvent = {
      at: now(),
      event: 'lost',
      reason: `this client fell more than ${this.maxBytes} bytes behind; reconnect to follow again`,
      droppedEvents,
    };
    // The connection goes too once the reader has what was written (no keep-alive after this);
    // a reader that never reads again must not keep the socket and its buffer.
    const socket = this.res.socket;
    this.res.end(`event: lost\ndata: ${JSON.stringify(lost)}\n\n`, () => socket?.end());
    const cut = setTimeout(() => socket?.destroy(), LOST_GRACE_MS);
    cut.unref();
    socket?.once('close', () => clearTimeout(cut));
    this.dropped(droppedEvents);
    this.onEnd?.();
  }
}

function applyFilter(e: MeshEvent, f: EventFilter): MeshEvent | undefined {
  if (f.events && !f.events.has(e.event)) return undefined;
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
