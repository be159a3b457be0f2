// One simulated sidecar: an ADS stream that subscribes the way Envoy does (wildcard CDS and
// LDS; then EDS for the EDS clusters it received and RDS for the route configurations its
// listeners name), ACKs every response, and reports when it is fully configured and when a
// watched resource arrives with new content. It never decodes whole resources.
import { createHash } from 'node:crypto';
import { TYPE_URLS } from '../../src/protos/envoy.js';
import { GrpcH2Channel, type Call } from './grpc-h2.js';
import type { WatchKind, XdsMode } from './protocol.js';
import { nowMs } from './protocol.js';
import {
  edsNameOfCluster,
  encodeDeltaRequest,
  hasVhds,
  encodeNames,
  encodeSotwRequest,
  nameEquals,
  nameOf,
  rdsNamesOfListener,
  readDeltaResponse,
  readSotwResponse,
  type NodeInfo,
  type Span,
} from './wire.js';

const ADS = '/envoy.service.discovery.v3.AggregatedDiscoveryService';

export const KINDS: readonly WatchKind[] = ['clusters', 'endpoints', 'listeners', 'routes'];
const KIND_BY_URL = new Map<string, WatchKind>(KINDS.map((k) => [TYPE_URLS[k], k]));

/** A watch as armed in a worker: which proxies have seen the change, and when. */
export interface ArmedWatch {
  readonly watchId: number;
  readonly kind: WatchKind;
  readonly name: string;
  readonly nameBuf: Buffer;
  readonly marker: Buffer;
  readonly present: boolean;
  /** Per sidecar index: arrival time, or 0 while not seen. */
  readonly times: Float64Array;
  count: number;
}

/** Whether the resource value in `v` shows the watched change. */
function shows(w: ArmedWatch, buf: Buffer, v: Span): boolean {
  return buf.subarray(v.start, v.end).indexOf(w.marker) >= 0 === w.present;
}

export interface SidecarHooks {
  /** Watches of `kind` not yet complete (the worker keeps the list). */
  activeWatches(kind: WatchKind): readonly ArmedWatch[];
  detected(watch: ArmedWatch, index: number, at: number): void;
  configured(index: number, at: number): void;
  response(bytes: number): void;
  request(): void;
  anomaly(message: string): void;
  streamError(index: number, message: string): void;
  /** Failover: a broken stream is about to be reopened on the next replica. */
  reconnecting?(index: number): void;
}

export interface SidecarOptions {
  readonly index: number;
  readonly node: NodeInfo;
  readonly target: string;
  readonly hooks: SidecarHooks;
  /** Every replica's address, `target` among them: fail over as Envoy does (see reconnect). */
  readonly failover?: readonly string[];
}

/** Envoy's ADS retry back-off in our bootstrap: jittered, base 0.25 s, at most 2 s. */
const RETRY_BASE_MS = 250;
const RETRY_MAX_MS = 2000;

export abstract class Sidecar {
  configuredAt = 0;
  /** Its own HTTP/2 connection (one TCP connection per sidecar, as with real Envoys). */
  protected channel: GrpcH2Channel;
  private targetIndex: number;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  protected call: Call | undefined;
  protected closed = false;
  /** Names this proxy's own resources contain (excluded from the shared-content digests). */
  protected readonly ownMarker: string;

  constructor(protected readonly opts: SidecarOptions) {
    this.channel = new GrpcH2Channel(opts.target);
    this.ownMarker = opts.node.id;
    this.targetIndex = Math.max(0, opts.failover?.indexOf(opts.target) ?? 0);
  }

  abstract start(): void;

  /** Its connection's stages (0 = not yet): up, and the first response bytes received. */
  get stages(): { connected: number; firstResponse: number } {
    return { connected: this.channel.connectedAt, firstResponse: this.channel.firstDataAt };
  }
  /** A new stream after a failover: everything subscribed, with the versions held. */
  protected abstract resume(): void;

  /**
   * As Envoy: after a jittered back-off (0..min(2 s, 0.25 s × 2^failures)), a new connection
   * to another replica of the xDS cluster, and the subscriptions again.
   */
  private scheduleReconnect(): void {
    const targets = this.opts.failover;
    if (!targets || targets.length === 0 || this.closed || this.retryTimer) return;
    const ceiling = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** this.failures++);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.closed) return;
      this.channel.close();
      // Envoy's round robin starts at a random host, so a fleet spreads over the others.
      const step = 1 + Math.floor(Math.random() * (targets.length - 1));
      this.targetIndex = (this.targetIndex + step) % targets.length;
      this.channel = new GrpcH2Channel(targets[this.targetIndex]!);
      this.opts.hooks.reconnecting?.(this.opts.index);
      this.resume();
    }, Math.random() * ceiling);
  }
  /** Per type: "<count>:<digest>" of what this proxy holds, own resources excluded. */
  abstract digests(): Record<string, string>;

  protected open(method: string): Call {
    const call = this.channel.open(`${ADS}/${method}`, {
      message: (buf) => {
        this.failures = 0;
        this.opts.hooks.response(buf.length);
        try {
          this.onResponse(buf);
        } catch (err) {
          this.opts.hooks.anomaly(`${this.opts.node.id}: ${(err as Error).message}`);
        }
      },
      error: (message) => {
        if (this.closed) return;
        this.opts.hooks.streamError(this.opts.index, message);
        this.scheduleReconnect();
      },
    });
    this.call = call;
    return call;
  }

  protected write(bytes: Buffer): void {
    this.opts.hooks.request();
    this.call?.write(bytes);
  }

  protected abstract onResponse(buf: Buffer): void;

  protected markConfigured(): void {
    if (this.configuredAt) return;
    this.configuredAt = nowMs();
    this.opts.hooks.configured(this.opts.index, this.configuredAt);
  }

  protected isOwn(name: string): boolean {
    return name.includes(this.ownMarker);
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    // Ends the call and the connection; nothing is reported from here on.
    this.channel.close();
  }
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

function shortHash(text: string | Buffer): string {
  return createHash('sha1').update(text).digest('base64url').slice(0, 12);
}

interface SotwTypeState {
  versionInfo: string;
  nonce: string;
  received: number;
  /** EDS/RDS: the names subscribed to, and their pre-encoded form. */
  names: Set<string>;
  namesBuf?: Buffer;
  /** Digest of the shared content last received. */
  digest: string;
  /** EDS/RDS: whether every subscribed name has been received. */
  complete: boolean;
  /**
   * EDS/RDS: the subscribed names received so far. As in Envoy, a named-type response may
   * carry only the resources that changed; a name left out keeps what it had.
   */
  held: Set<string>;
  /** CDS/LDS: the last response and its shared (not own) resources. */
  last?: { buf: Buffer; shared: Array<[string, Span]> };
}

/** State of the world: every response of a type carries the whole set (for that proxy). */
export class SotwSidecar extends Sidecar {
  private readonly types = new Map<WatchKind, SotwTypeState>();

  start(): void {
    for (const k of KINDS) {
      this.types.set(k, {
        versionInfo: '',
        nonce: '',
        received: 0,
        names: new Set(),
        digest: '',
        complete: false,
        held: new Set(),
      });
    }
    this.open('StreamAggregatedResources');
    // Envoy sends its node on the first message only (our bootstrap sets that).
    this.write(encodeSotwRequest({ node: this.opts.node, typeUrl: TYPE_URLS.clusters }));
    this.write(encodeSotwRequest({ typeUrl: TYPE_URLS.listeners }));
  }

  protected resume(): void {
    this.open('StreamAggregatedResources');
    // As Envoy on a new stream: every type, no nonce, the version it holds.
    let node: NodeInfo | undefined = this.opts.node;
    for (const kind of KINDS) {
      const st = this.types.get(kind)!;
      const named = kind === 'endpoints' || kind === 'routes';
      if (named && st.names.size === 0) continue;
      this.write(
        encodeSotwRequest({
          ...(node ? { node } : {}),
          versionInfo: st.versionInfo,
          typeUrl: TYPE_URLS[kind],
          ...(named && st.namesBuf ? { names: st.namesBuf } : {}),
        }),
      );
      node = undefined;
    }
  }

  protected onResponse(buf: Buffer): void {
    const at = nowMs();
    const res = readSotwResponse(buf);
    const kind = KIND_BY_URL.get(res.typeUrl);
    if (!kind) {
      this.opts.hooks.anomaly(`unexpected type ${res.typeUrl}`);
      return;
    }
    const st = this.types.get(kind)!;
    st.versionInfo = res.versionInfo;
    st.nonce = res.nonce;
    st.received++;
    this.checkWatches(kind, buf, res.values, at);

    if (kind === 'clusters' || kind === 'listeners') {
      // The dependent subscription first (as Envoy does while it pauses the type), then the ACK.
      const dependent = kind === 'clusters' ? 'endpoints' : 'routes';
      const wanted = new Set<string>();
      const shared: Array<[string, Span]> = [];
      for (const v of res.values) {
        const name = nameOf(buf, v);
        if (!this.isOwn(name)) shared.push([name, v]);
        if (kind === 'clusters') {
          const eds = edsNameOfCluster(buf, v);
          if (eds !== undefined) wanted.add(eds);
        } else {
          for (const r of rdsNamesOfListener(buf, v)) wanted.add(r);
        }
      }
      // Hashed only when asked (digests()), not on every response.
      st.last = { buf, shared };
      const dep = this.types.get(dependent)!;
      if (!sameSet(dep.names, wanted)) {
        dep.names = wanted;
        for (const name of dep.held) if (!wanted.has(name)) dep.held.delete(name);
        dep.namesBuf = encodeNames(3, [...wanted].sort());
        dep.complete = false;
        this.write(
          encodeSotwRequest({
            versionInfo: dep.versionInfo,
            typeUrl: TYPE_URLS[dependent],
            nonce: dep.nonce,
            names: dep.namesBuf,
          }),
        );
      }
      this.write(
        encodeSotwRequest({ versionInfo: res.versionInfo, typeUrl: res.typeUrl, nonce: res.nonce }),
      );
    } else {
      // Complete = every subscribed name received (a response to an older subscription may
      // still be in flight after the names changed). The version names the whole set.
      for (const v of res.values) {
        const name = nameOf(buf, v);
        if (st.names.has(name)) st.held.add(name);
      }
      st.complete = st.held.size === st.names.size;
      st.digest = `${st.held.size}:${res.versionInfo}`;
      this.write(
        encodeSotwRequest({
          versionInfo: res.versionInfo,
          typeUrl: res.typeUrl,
          nonce: res.nonce,
          names: st.namesBuf,
        }),
      );
    }
    if (!this.configuredAt) this.checkConfigured();
  }

  private checkConfigured(): void {
    const t = this.types;
    const ready = (k: WatchKind) => {
      const s = t.get(k)!;
      return s.received > 0 && (s.names.size === 0 || s.complete);
    };
    const depReady = (k: WatchKind) => {
      const s = t.get(k)!;
      return s.names.size === 0 || (s.received > 0 && s.complete);
    };
    if (ready('clusters') && ready('listeners') && depReady('endpoints') && depReady('routes')) {
      this.markConfigured();
    }
  }

  private checkWatches(kind: WatchKind, buf: Buffer, values: readonly Span[], at: number): void {
    const pending = this.opts.hooks
      .activeWatches(kind)
      .filter((w) => w.times[this.opts.index] === 0);
    if (pending.length === 0) return;
    if (pending.length <= 4) {
      for (const v of values) {
        for (const w of pending) {
          if (w.times[this.opts.index] === 0 && nameEquals(buf, v, w.nameBuf) && shows(w, buf, v)) {
            this.opts.hooks.detected(w, this.opts.index, at);
          }
        }
      }
      return;
    }
    const byName = new Map<string, ArmedWatch[]>();
    for (const w of pending) {
      const list = byName.get(w.name);
      if (list) list.push(w);
      else byName.set(w.name, [w]);
    }
    for (const v of values) {
      const list = byName.get(nameOf(buf, v));
      if (!list) continue;
      for (const w of list) if (shows(w, buf, v)) this.opts.hooks.detected(w, this.opts.index, at);
    }
  }

  digests(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, s] of this.types) {
      if (!s.received) out[k] = 'none';
      else if (s.last) {
        const { buf, shared } = s.last;
        shared.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
        const h = createHash('sha1');
        for (const [name, v] of shared) h.update(name).update(buf.subarray(v.start, v.end));
        out[k] = `${shared.length}:${h.digest('base64url').slice(0, 12)}`;
      } else out[k] = s.digest;
    }
    return out;
  }
}

interface DeltaTypeState {
  received: number;
  nonce: string;
  /** name → version held. */
  readonly known: Map<string, string>;
  /** EDS/RDS: names subscribed to. */
  subscribed: Set<string>;
}

/** Incremental: responses carry only what changed, removals by name. */
/** VHDS (docs/vhds.md): a delta sidecar's outbound virtual hosts, one resource each. */
const VIRTUAL_HOST_URL = TYPE_URLS.virtualHosts;

export class DeltaSidecar extends Sidecar {
  private readonly types = new Map<WatchKind, DeltaTypeState>();
  /** VHDS hosts held (name → version), once a route configuration said `vhds`. */
  private vhds: { received: number; readonly known: Map<string, string> } | undefined;
  /** CDS: cluster → the EDS name it needs (undefined: not an EDS cluster). */
  private readonly clusterEds = new Map<string, string | undefined>();
  /** LDS: listener → route configurations it needs. */
  private readonly listenerRds = new Map<string, string[]>();

  start(): void {
    for (const k of KINDS) {
      this.types.set(k, { received: 0, nonce: '', known: new Map(), subscribed: new Set() });
    }
    this.open('DeltaAggregatedResources');
    this.write(encodeDeltaRequest({ node: this.opts.node, typeUrl: TYPE_URLS.clusters }));
    this.write(encodeDeltaRequest({ typeUrl: TYPE_URLS.listeners }));
  }

  protected resume(): void {
    this.open('DeltaAggregatedResources');
    // As Envoy on a new stream: every type, its subscriptions, and initial_resource_versions.
    let node: NodeInfo | undefined = this.opts.node;
    for (const kind of KINDS) {
      const st = this.types.get(kind)!;
      const named = kind === 'endpoints' || kind === 'routes';
      if (named && st.subscribed.size === 0) continue;
      this.write(
        encodeDeltaRequest({
          ...(node ? { node } : {}),
          typeUrl: TYPE_URLS[kind],
          ...(named ? { subscribe: [...st.subscribed] } : {}),
          initialVersions: st.known,
        }),
      );
      node = undefined;
    }
    if (this.vhds) {
      this.write(
        encodeDeltaRequest({ typeUrl: VIRTUAL_HOST_URL, initialVersions: this.vhds.known }),
      );
    }
  }

  protected onResponse(buf: Buffer): void {
    const at = nowMs();
    const res = readDeltaResponse(buf);
    if (res.typeUrl === VIRTUAL_HOST_URL && this.vhds) {
      this.vhds.received++;
      for (const r of res.resources) this.vhds.known.set(r.name, r.version ?? '');
      for (const name of res.removed) this.vhds.known.delete(name);
      // A host is part of the route configuration it is named after (`outbound/<service>`):
      // a watch on that configuration's bytes is met by its host's.
      const asRoutes = res.resources.map((r) => ({ name: r.name.split('/')[0]!, value: r.value }));
      this.checkWatches('routes', buf, asRoutes, at);
      this.write(encodeDeltaRequest({ typeUrl: res.typeUrl, nonce: res.nonce }));
      if (!this.configuredAt) this.checkConfigured();
      return;
    }
    const kind = KIND_BY_URL.get(res.typeUrl);
    if (!kind) {
      this.opts.hooks.anomaly(`unexpected type ${res.typeUrl}`);
      return;
    }
    const st = this.types.get(kind)!;
    st.received++;
    st.nonce = res.nonce;
    if (kind === 'routes' && !this.vhds && res.resources.some((r) => hasVhds(buf, r.value))) {
      // As Envoy: VHDS subscribed (no names) before the route configuration is ACKed.
      this.vhds = { received: 0, known: new Map() };
      this.write(encodeDeltaRequest({ typeUrl: VIRTUAL_HOST_URL }));
    }
    for (const r of res.resources) st.known.set(r.name, r.version ?? '');
    for (const name of res.removed) st.known.delete(name);
    this.checkWatches(kind, buf, res.resources, at);

    if (kind === 'clusters' || kind === 'listeners') {
      const dependent = kind === 'clusters' ? 'endpoints' : 'routes';
      for (const r of res.resources) {
        if (kind === 'clusters') this.clusterEds.set(r.name, edsNameOfCluster(buf, r.value));
        else this.listenerRds.set(r.name, rdsNamesOfListener(buf, r.value));
      }
      for (const name of res.removed) {
        this.clusterEds.delete(name);
        this.listenerRds.delete(name);
      }
      const wanted = new Set<string>();
      if (kind === 'clusters') {
        for (const eds of this.clusterEds.values()) if (eds !== undefined) wanted.add(eds);
      } else {
        for (const list of this.listenerRds.values()) for (const r of list) wanted.add(r);
      }
      const dep = this.types.get(dependent)!;
      const subscribe = [...wanted].filter((n) => !dep.subscribed.has(n));
      const unsubscribe = [...dep.subscribed].filter((n) => !wanted.has(n));
      if (subscribe.length > 0 || unsubscribe.length > 0) {
        dep.subscribed = wanted;
        for (const n of unsubscribe) dep.known.delete(n);
        this.write(encodeDeltaRequest({ typeUrl: TYPE_URLS[dependent], subscribe, unsubscribe }));
      }
    }
    this.write(encodeDeltaRequest({ typeUrl: res.typeUrl, nonce: res.nonce }));
    if (!this.configuredAt) this.checkConfigured();
  }

  private checkConfigured(): void {
    const t = this.types;
    const has = (k: WatchKind) => {
      const s = t.get(k)!;
      for (const n of s.subscribed) if (!s.known.has(n)) return false;
      return s.subscribed.size === 0 || s.received > 0;
    };
    if (
      t.get('clusters')!.received > 0 &&
      t.get('listeners')!.received > 0 &&
      has('endpoints') &&
      has('routes') &&
      (!this.vhds || this.vhds.received > 0)
    ) {
      this.markConfigured();
    }
  }

  private checkWatches(
    kind: WatchKind,
    buf: Buffer,
    resources: ReadonlyArray<{ name: string; value: Span }>,
    at: number,
  ): void {
    if (resources.length === 0) return;
    const pending = this.opts.hooks
      .activeWatches(kind)
      .filter((w) => w.times[this.opts.index] === 0);
    if (pending.length === 0) return;
    const byName = new Map<string, ArmedWatch[]>();
    for (const w of pending) {
      const list = byName.get(w.name);
      if (list) list.push(w);
      else byName.set(w.name, [w]);
    }
    for (const r of resources) {
      const list = byName.get(r.name);
      if (!list) continue;
      for (const w of list)
        if (shows(w, buf, r.value)) this.opts.hooks.detected(w, this.opts.index, at);
    }
  }

  digests(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, s] of this.types) {
      if (!s.received) {
        out[k] = 'none';
        continue;
      }
      const lines: string[] = [];
      for (const [name, version] of s.known)
        if (!this.isOwn(name)) lines.push(`${name}@${version}`);
      lines.sort();
      out[k] = `${lines.length}:${shortHash(lines.join('\n'))}`;
    }
    if (this.vhds) {
      const lines = [...this.vhds.known].map(([name, version]) => `${name}@${version}`).sort();
      out.virtualHosts = `${lines.length}:${shortHash(lines.join('\n'))}`;
    }
    return out;
  }
}

export function createSidecar(mode: XdsMode, opts: SidecarOptions): Sidecar {
  return mode === 'sotw' ? new SotwSidecar(opts) : new DeltaSidecar(opts);
}
