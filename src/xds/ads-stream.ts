// What SotW and delta ADS streams share: identifying the proxy, watching its config,
// nonces, ACK/NACK bookkeeping and reporting. The variants implement onRequest/onView.
import { GrpcStatus, grpcStatusName } from './grpc-status-codes.js';
import type { ProxyIdentity } from '../catalog/model.js';
import { kindOfTypeUrl, type ResourceKind } from '../protos/envoy.js';
import type { ProxyView } from '../snapshot/proxy-view.js';
import type { ConfigWatcher, ViewWatcher, WatchHandle } from '../snapshot/store.js';
import type { Logger } from '../telemetry/logger.js';
import type { AdsCall } from './ads-call.js';
import { lifecycleLevel, type LifecycleEvent, type LifecycleLog } from './lifecycle-log.js';
import { AuthError, type ProxyAuthenticator } from './auth.js';
import type { NodeMessage, StatusMessage } from './messages.js';
import { TokenBucket } from './limits.js';
import { InvalidNodeError, proxyIdentityOf } from './node.js';
import type { ResponseReport, XdsObserver } from './observer.js';
import type { PreparedResponse } from './shared-responses.js';
import { TypeStatuses, type StreamInfo, type StreamMode, type TypeStatus } from './type-status.js';
import { WarmingHold } from './warming-hold.js';

export interface StreamContext {
  readonly watcher: ConfigWatcher;
  readonly observer: XdsObserver;
  readonly logger: Logger;
  readonly onClose: (stream: StreamInfo) => void;
  /**
   * When set, streams are authenticated (the server checks the token before it admits a
   * stream and passes the service it proves to start()); its proxy's service is that one.
   */
  readonly authenticator?: ProxyAuthenticator;
  /** Requests per second one stream may send, sustained, and at once (0: no limit). */
  readonly requestRate: number;
  readonly requestBurst: number;
  /** Open/close lines at info up to a budget, then a summary (without it: every line at info). */
  readonly lifecycleLog?: LifecycleLog;
}

/** Why a stream's requests are not being read (while any holds, the call stays paused). */
const THROTTLED = 1; // sending faster than the request rate: read again when the next is due
const BACKLOG = 2; // MAX_PENDING requests read and not yet handled (throttled)
const BLOCKED = 4; // not reading our responses: its requests wait until it does

/** Requests read ahead of handling at most (they wait on the request rate). */
const MAX_PENDING = 32;

/** Envoy's NACK messages run to a few KB (one line per rejected resource). */
const MAX_NACK_MESSAGE = 16 * 1024;

const SETTLED: Promise<void> = Promise.resolve();

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface BaseRequest {
  node?: NodeMessage;
  typeUrl?: string;
  responseNonce?: string;
  errorDetail?: StatusMessage;
}

export type AckResult = 'ack' | 'nack' | 'stale' | 'none';

/** Whether a request rejects the response it answers (error_detail set). */
const rejects = (req: BaseRequest): boolean =>
  !!req.errorDetail && !!(req.errorDetail.message || req.errorDetail.code);

export abstract class AdsStream<Req extends BaseRequest> implements ViewWatcher {
  readonly info: StreamInfo;
  protected proxy: ProxyIdentity | undefined;
  protected view: ProxyView | undefined;
  private childLog: Logger | undefined;
  private watching: WatchHandle | undefined;
  private unwatchAuth: (() => void) | undefined;
  /** The service the stream's token proves (checked before admission; undefined: no auth). */
  private service: string | undefined;
  private nonceSeq = 0;
  private closed = false;
  /** The details this stream was ended with from here (end()), for its close line. */
  private endedWith: string | undefined;
  /**
   * Requests are handled one at a time, in order, even while authentication is pending. With
   * none pending it is the one shared settled promise, not the chain's last (~50 B a stream).
   */
  private queue: Promise<void> = SETTLED;
  /**
   * The proxy is not reading (its gRPC buffers are full). Changes meanwhile are not queued
   * one by one: only the latest view is kept, and pushed once it drains, so a stuck proxy
   * costs bounded memory and gets the current state, not a backlog.
   */
  private blocked = false;
  private pendingView: ProxyView | undefined;
  /** The per-stream request rate (undefined: no limit). */
  private readonly requests: TokenBucket | undefined;
  /** Requests read and not yet handled. */
  private pending = 0;
  private holds = 0;
  /** An unknown type_url is logged at warn once per stream (a loop of them at debug). */
  private warnedUnknownType = false;
  /** Updates held while new clusters warm (warming-hold.ts); made the first time one does. */
  private warmingHold: WarmingHold | undefined;

  constructor(
    protected readonly call: AdsCall<Req>,
    protected readonly ctx: StreamContext,
    id: number,
    mode: StreamMode,
  ) {
    this.info = {
      id,
      mode,
      peer: call.getPeer(),
      connectedAt: Date.now(),
      types: new TypeStatuses(),
      buildError: undefined,
      throttled: 0,
    };
    this.requests =
      ctx.requestRate > 0 ? new TokenBucket(ctx.requestRate, ctx.requestBurst) : undefined;
  }

  /** This stream's logger, made on first use: most streams never log beyond open and close. */
  protected get log(): Logger {
    return (this.childLog ??= this.ctx.logger.child({
      stream: this.info.id,
      mode: this.info.mode,
    }));
  }

  /** Open/close lines carry the stream's fields without keeping a child logger per stream. */
  private lifecycle(event: LifecycleEvent, fields: Record<string, unknown>, message: string): void {
    const line = { stream: this.info.id, mode: this.info.mode, ...fields };
    // Through the server's budget when there is one: a storm is summarised (lifecycle-log.ts).
    if (this.ctx.lifecycleLog) this.ctx.lifecycleLog.line(event, line, message);
    else this.ctx.logger[lifecycleLevel(event)](line, message);
  }

  /** `service`: what the stream's token proves, as the server checked it (auth on). */
  start(service?: string): void {
    this.service = service;
    this.ctx.observer.streamOpened(this.info);
    this.call.on('data', (req: Req) => this.receive(req));
    this.call.on('end', () => {
      this.close('client closed the stream');
      this.call.end();
    });
    this.call.on('cancelled', () => this.close('cancelled'));
    // Ended from here (end()): the status object has no message; its details are the reason.
    this.call.on('error', (err: Error) => this.close(this.endedWith ?? `error: ${err.message}`));
  }

  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.warmingHold?.dispose();
    this.watching?.stop();
    this.unwatchAuth?.();
    this.ctx.observer.streamClosed(this.info, reason);
    this.ctx.onClose(this.info);
    this.lifecycle('closed', { node: this.proxy?.nodeId, reason }, 'xds stream closed');
  }

  /**
   * Queues a request for handling, in order. A stream sending faster than the request rate
   * is not read until its next request is due (slowed, never dropped: an ACK must not be
   * lost), so a client in a tight loop costs at most `requestRate` requests a second.
   */
  private receive(req: Req): void {
    const waitMs = this.requests?.reserve() ?? 0;
    if (waitMs > 0) {
      this.info.throttled++;
      this.ctx.observer.throttled(this.info, waitMs);
      this.hold(THROTTLED);
    }
    if (++this.pending >= MAX_PENDING) this.hold(BACKLOG);
    this.queue = this.queue.then(() => this.process(req, waitMs));
  }

  private async process(req: Req, waitMs: number) {
    if (waitMs > 0) {
      await sleep(waitMs);
      this.release(THROTTLED);
    }
    try {
      this.handle(req);
    } catch (err) {
      this.internalError(err);
    }
    if (--this.pending < MAX_PENDING / 2) this.release(BACKLOG);
    // The last one handled: nothing is chained after it (a request arriving now runs after
    // this returns, in order, as it would after the chain).
    if (this.pending === 0) this.queue = SETTLED;
  }

  private hold(reason: number): void {
    if (this.holds === 0) this.call.pause();
    this.holds |= reason;
  }

  private release(reason: number): void {
    if ((this.holds & reason) === 0) return;
    this.holds &= ~reason;
    if (this.holds === 0 && !this.closed) this.call.resume();
  }

  protected abstract onRequest(kind: ResourceKind, req: Req): void;
  protected abstract onView(view: ProxyView): void;

  private handle(req: Req): void {
    if (this.closed) return;
    if (!this.proxy) {
      const proxy = this.identify(req);
      if (!proxy || this.closed) return;
      this.proxy = proxy;
      this.info.proxy = proxy;
      this.info.tokenExpiresAt = this.ctx.authenticator?.expiresAt?.(this.call.metadata);
      // A credential revoked while the stream is open (a revoked token) closes it.
      this.unwatchAuth = this.ctx.authenticator?.watch?.(this.call.metadata, (err) =>
        this.refuse(err, proxy.nodeId),
      );
      if (this.closed) return;
      this.lifecycle(
        'opened',
        { node: proxy.nodeId, service: proxy.service, peer: this.info.peer },
        'xds stream opened',
      );
      this.ctx.observer.proxyIdentified?.(this.info);
      // The stream itself is the watcher (takeView, buildFailed): no closures per proxy.
      this.watching = this.ctx.watcher.watch(proxy, this);
    }
    const kind = kindOfTypeUrl(req.typeUrl ?? '');
    if (!kind) {
      // Ignored rather than failing the stream: one unknown type must not cut a sidecar
      // off from everything else it receives over the same ADS stream.
      const problem = `unknown type_url ${JSON.stringify(req.typeUrl ?? '')}`;
      this.ctx.observer.badRequest(this.info, problem);
      const level = this.warnedUnknownType ? 'debug' : 'warn';
      this.warnedUnknownType = true;
      this.log[level](
        { node: this.proxy.nodeId, typeUrl: req.typeUrl?.slice(0, 200) },
        'ignoring request: unknown type_url',
      );
      return;
    }
    this.status(kind); // listed (NOT_SENT) from the first request on
    this.onRequest(kind, req);
  }

  /** The proxy's identity: its node, with the service its token proves when auth is on. */
  private identify(req: Req): ProxyIdentity | undefined {
    let claimed: ProxyIdentity;
    try {
      claimed = proxyIdentityOf(req.node);
      // VHDS is a delta protocol: a SotW stream keeps the virtual hosts inline.
      if (claimed.vhds && this.info.mode !== 'delta') {
        const { vhds: _vhds, ...inline } = claimed;
        claimed = inline;
      }
    } catch (err) {
      if (!(err instanceof InvalidNodeError)) throw err;
      this.fail(GrpcStatus.INVALID_ARGUMENT, err.message);
      return undefined;
    }
    if (!this.ctx.authenticator) return claimed;
    const service = this.service;
    // Secure by default: a stream started without its token checked is not served.
    if (service === undefined) throw new Error('stream started before its token was checked');
    if (claimed.service && claimed.service !== service) {
      const message = `node ${JSON.stringify(claimed.nodeId)} claims service ${JSON.stringify(claimed.service)} but its token is for ${JSON.stringify(service)}`;
      this.refuse(
        new AuthError(GrpcStatus.PERMISSION_DENIED, 'wrong-service', message),
        claimed.nodeId,
      );
      return undefined;
    }
    return { ...claimed, service };
  }

  private refuse(err: AuthError, nodeId: string): void {
    this.ctx.observer.authFailed(this.info, err.reason, err.message);
    // Through the lifecycle budget: anyone who reaches the port can open refused streams.
    this.lifecycle(
      'refused',
      {
        node: nodeId,
        peer: this.info.peer,
        code: grpcStatusName(err.code),
        reason: err.reason,
        details: err.message,
      },
      'xds stream refused',
    );
    this.end(err.code, err.message);
  }

  /** From the store: the proxy's view, first and after every change (ViewWatcher). */
  takeView(view: ProxyView): void {
    this.guard(() => this.acceptView(view));
  }

  /** From the store: why the proxy's own resources cannot be built, or undefined once they can. */
  buildFailed(message: string | undefined): void {
    this.info.buildError = message === undefined ? undefined : { message, at: Date.now() };
  }

  private acceptView(view: ProxyView): void {
    if (this.closed) return;
    if (this.blocked) {
      this.pendingView = view;
      return;
    }
    this.view = view;
    this.onView(view);
  }

  /** The stream's hold for warming clusters; its release pushes the current view again. */
  protected get warming(): WarmingHold {
    return (this.warmingHold ??= new WarmingHold(() =>
      this.guard(() => {
        if (this.view) this.acceptView(this.view);
      }),
    ));
  }

  /** Whether updates that may refer to a new cluster are held until it has its endpoints. */
  protected get holdingForWarming(): boolean {
    return this.warmingHold?.active ?? false;
  }

  private unblock(): void {
    this.blocked = false;
    this.release(BLOCKED);
    const view = this.pendingView;
    this.pendingView = undefined;
    if (view) this.acceptView(view);
  }

  protected status(kind: ResourceKind): TypeStatus {
    return this.info.types.open(kind);
  }

  /**
   * Classifies the ACK/NACK part of a request. A nonce other than the last one sent for the
   * type is stale: Envoy is answering a response it has since been sent a newer one for.
   */
  protected settle(kind: ResourceKind, req: Req): AckResult {
    const nonce = req.responseNonce ?? '';
    if (nonce === '') return 'none';
    const s = this.status(kind);
    if (nonce !== s.sentNonce && this.info.mode === 'delta' && rejects(req)) {
      // Delta responses are increments: a newer one does not replace an earlier one, so a
      // NACK of an earlier one still means the proxy lacks what that one carried.
      return this.nacked(kind, s, req, nonce, true);
    }
    if (nonce !== s.sentNonce) {
      this.ctx.observer.staleNonce(this.info, kind, nonce);
      this.log.debug(
        { node: this.proxy?.nodeId, kind, nonce, current: s.sentNonce },
        'stale nonce',
      );
      return 'stale';
    }
    const version = s.sentVersion ?? '';
    if (rejects(req)) return this.nacked(kind, s, req, nonce, false);
    s.ackedVersion = version;
    s.ackedNonce = nonce;
    // A NACK of an earlier delta response stands until a response sent after it is accepted.
    if (!s.nack?.earlier || s.nack.nonce !== nonce) s.nack = undefined;
    s.ackedAt = Date.now();
    this.ctx.observer.acked(this.info, kind, version, s.sentFrom);
    return 'ack';
  }

  /**
   * Records a rejection: of the last response, or (`earlier`, delta only) of an earlier one,
   * which is then pinned to the last response so the type shows NACKED until a later one is
   * accepted.
   */
  private nacked(
    kind: ResourceKind,
    s: TypeStatus,
    req: Req,
    nonce: string,
    earlier: boolean,
  ): AckResult {
    const version = s.sentVersion ?? '';
    // Kept per type, logged and published: at most so much of what the client wrote.
    const detail = req.errorDetail!;
    const message = (detail.message ?? `code ${detail.code}`).slice(0, MAX_NACK_MESSAGE);
    // The same response NACKed again (a client repeating itself) is not news for the log.
    const again = s.nack?.nonce === nonce || (earlier && s.nack?.rejectedNonce === nonce);
    s.nack = {
      version,
      nonce: earlier ? (s.sentNonce ?? nonce) : nonce,
      message,
      at: Date.now(),
      ...(earlier ? { earlier: true, rejectedNonce: nonce } : {}),
    };
    this.ctx.observer.nacked(this.info, kind, version, message);
    this.log[again ? 'debug' : 'warn'](
      { node: this.proxy?.nodeId, kind, version, error: message, ...(earlier ? { nonce } : {}) },
      'proxy rejected config (NACK)',
    );
    return 'nack';
  }

  /**
   * The proxy already holds `version` of this type (it said so on a new stream, and this
   * replica has the same): nothing is sent, and the type counts as sent and acknowledged.
   */
  protected alreadyHeld(kind: ResourceKind, version: string): void {
    const s = this.status(kind);
    const now = Date.now();
    // An empty nonce: no response carries it, so no request can be mistaken for its ACK.
    s.sentVersion = s.ackedVersion = version;
    s.sentNonce = s.ackedNonce = '';
    s.sentAt = s.ackedAt = now;
    s.sentFrom = undefined;
    s.nack = undefined;
    this.ctx.observer.acked(this.info, kind, version, undefined);
  }

  /**
   * Writes a response and records it: one made for this stream (given its nonce), or one
   * prepared once and shared by every stream owed the same bytes (it carries its own nonce).
   */
  protected send(
    kind: ResourceKind,
    response: PreparedResponse | ((nonce: string) => Buffer),
    report: Pick<ResponseReport, 'version' | 'resources' | 'removed' | 'upserted'>,
    view: ProxyView,
  ): void {
    const started = performance.now();
    let nonce: string;
    let bytes: Buffer;
    if (typeof response === 'function') {
      nonce = (++this.nonceSeq).toString(36);
      bytes = response(nonce);
    } else ({ nonce, bytes } = response);
    const s = this.status(kind);
    s.sentVersion = report.version;
    s.sentNonce = nonce;
    s.sentAt = Date.now();
    const snapshot = view.ref;
    s.sentFrom = snapshot;
    if (!this.call.write(bytes) && !this.blocked) {
      this.blocked = true;
      // Its requests wait too: a client that asks for everything again and again without
      // reading the answers would otherwise have them all buffered here.
      this.hold(BLOCKED);
      this.log.debug(
        { node: this.proxy?.nodeId },
        'proxy not reading; coalescing changes until it drains',
      );
      this.call.once('drain', () => this.guard(() => this.unblock()));
    }
    this.ctx.observer.responseSent(this.info, {
      kind,
      version: report.version,
      resources: report.resources,
      removed: report.removed,
      upserted: report.upserted,
      nonce,
      bytes: bytes.length,
      durationMs: performance.now() - started,
      snapshot,
    });
    // One line per push is a thousand lines per change in a large mesh: debug, not info.
    // Asked of the shared logger: a per-stream child is only made when there is a line to write.
    if (this.ctx.logger.isLevelEnabled('debug')) {
      this.log.debug(
        {
          node: this.proxy?.nodeId,
          type: kind,
          version: report.version,
          nonce,
          resources: report.resources,
          removed: report.removed.length,
          bytes: bytes.length,
        },
        'pushed',
      );
    }
  }

  /**
   * Ends the stream with UNAVAILABLE so the sidecar reconnects (after its back-off) through
   * its xDS cluster: to another replica when this one drains, or to any after --max-stream-age.
   */
  goAway(details: string): void {
    if (this.closed) return;
    this.end(GrpcStatus.UNAVAILABLE, details);
  }

  /** A response is on its way and not yet answered (ACK or NACK) for some type. */
  get awaitingAnswer(): boolean {
    for (const s of this.info.types.values()) {
      if (s.sentNonce && s.ackedNonce !== s.sentNonce && s.nack?.nonce !== s.sentNonce) return true;
    }
    return false;
  }

  protected fail(code: GrpcStatus, details: string): void {
    this.ctx.observer.badRequest(this.info, details);
    this.log.warn(
      { node: this.proxy?.nodeId, code: grpcStatusName(code), details },
      'closing xds stream',
    );
    this.end(code, details);
  }

  private end(code: GrpcStatus, details: string): void {
    this.endedWith = details;
    this.call.emit('error', { code, details });
    this.close(details);
  }

  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.internalError(err);
    }
  }

  private internalError(err: unknown): void {
    this.log.error({ err, node: this.proxy?.nodeId }, 'xds stream failed');
    this.fail(GrpcStatus.INTERNAL, `internal error: ${(err as Error).message}`);
  }
}
