// The xDS gRPC server: protocol only. It serves whatever the ConfigWatcher (the snapshot
// store) holds and knows nothing about where the catalog came from.
import type { ConfigWatcher } from '../snapshot/store.js';
import type { Logger } from '../telemetry/logger.js';
import type { AdsCall } from './ads-call.js';
import {
  DEFAULT_XDS_TRANSPORT,
  type AdsHandlers,
  type AdsTransport,
  type XdsTls,
  type XdsTransportName,
} from './ads-transport.js';
import { AgeOut } from './age-out.js';
import { AuthRefusals } from './auth-refusals.js';
import { DeltaStream } from './delta-stream.js';
import { DeferredGrpcJsTransport } from './grpc-js-deferred.js';
import { GrpcStatus } from './grpc-status-codes.js';
import { LifecycleLog } from './lifecycle-log.js';
import { Http2Transport } from './http2-transport/http2-transport.js';
import { AuthError, type ProxyAuthenticator } from './auth.js';
import {
  STREAM_ADMISSION_WAIT_MS,
  TokenBucket,
  ageOutDelayMs,
  xdsLimits,
  type XdsLimits,
} from './limits.js';
import type { NodeMessage } from './messages.js';
import type { StreamRefusal, XdsObserver } from './observer.js';
import type { StreamContext } from './ads-stream.js';
import { PeerRefusals } from './peer-refusals.js';
import { SotwStream } from './sotw-stream.js';
import type { StreamInfo, StreamMode } from './type-status.js';

export interface XdsServerOptions {
  readonly watcher: ConfigWatcher;
  readonly observer: XdsObserver;
  readonly logger: Logger;
  /** Require callers to authenticate (tokens); without it any node may connect (development). */
  readonly authenticator?: ProxyAuthenticator;
  /** Bounds on what clients may ask of this replica (limits.ts); defaults for what is not given. */
  readonly limits?: Partial<XdsLimits>;
  /** What serves the ADS methods (serve --xds-transport); DEFAULT_XDS_TRANSPORT when not given. */
  readonly transport?: XdsTransportName;
}

/** Refused streams are logged at most this often (a storm refuses thousands). */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

/** A stream past its age waits for the answer to a response in flight, so long at most. */
const AGE_OUT_POSTPONE_MS = 1000;
const AGE_OUT_MAX_POSTPONES = 10;

const DRAIN_REASON = 'control plane replica shutting down (drain): reconnect to another replica';

export class XdsServer {
  private readonly server: AdsTransport;
  readonly transport: XdsTransportName;
  private readonly streams = new Map<number, StreamInfo>();
  /** The streams themselves, to end them (drain, --max-stream-age). */
  private readonly live = new Map<number, SotwStream | DeltaStream>();
  /** --max-stream-age: one timer for every stream (undefined: no age). */
  private readonly ageOut: AgeOut | undefined;
  private draining: Promise<void> | undefined;
  /** Closing (close, drain, forceClose): a stream whose token checks out now is not run. */
  private stopped = false;
  private nextId = 1;
  readonly limits: XdsLimits;
  /** New streams per second (undefined: no limit). */
  private readonly newStreams: TokenBucket | undefined;
  /** Streams admitted but waiting for their turn under the stream rate. */
  private readonly admitting = new Set<NodeJS.Timeout>();
  private readonly observer: XdsObserver;
  private readonly logger: Logger;
  private readonly authenticator: ProxyAuthenticator | undefined;
  /** Streams refused for their credentials, before admission (undefined: --auth none). */
  private readonly authRefusals: AuthRefusals | undefined;
  private refusalsLoggedAt = 0;
  private refusalsUnlogged = 0;

  /** One context for every stream (a thousand streams need not carry a thousand copies). */
  private readonly streamContext: StreamContext;
  private readonly lifecycleLog: LifecycleLog;

  constructor(options: XdsServerOptions) {
    const limits = (this.limits = xdsLimits(options.limits));
    this.observer = options.observer;
    this.logger = options.logger;
    this.lifecycleLog = new LifecycleLog(options.logger);
    this.authenticator = options.authenticator;
    this.authRefusals = options.authenticator
      ? new AuthRefusals(options.observer, this.lifecycleLog, new PeerRefusals(options.logger))
      : undefined;
    this.newStreams =
      limits.streamRate > 0 ? new TokenBucket(limits.streamRate, limits.streamBurst) : undefined;
    const ageMs = limits.maxStreamAgeMs;
    this.ageOut =
      ageMs > 0
        ? new AgeOut({
            postponeMs: AGE_OUT_POSTPONE_MS,
            maxPostpones: AGE_OUT_MAX_POSTPONES,
            details: `stream older than --max-stream-age (${Math.round(ageMs / 1000)} s ±10 %): reconnect to any replica`,
          })
        : undefined;
    this.streamContext = {
      watcher: options.watcher,
      observer: options.observer,
      logger: options.logger,
      authenticator: options.authenticator,
      onClose: (s: StreamInfo) => this.forget(s.id),
      requestRate: limits.requestRate,
      requestBurst: limits.requestBurst,
      lifecycleLog: this.lifecycleLog,
    };
    const handlers: AdsHandlers = {
      sotw: (call) =>
        this.admit(call, 'sotw', (service) =>
          this.track(new SotwStream(call, this.streamContext, this.nextId++, 'sotw'), service),
        ),
      delta: (call) =>
        this.admit(call, 'delta', (service) =>
          this.track(new DeltaStream(call, this.streamContext, this.nextId++, 'delta'), service),
        ),
    };
    this.transport = options.transport ?? DEFAULT_XDS_TRANSPORT;
    this.server =
      this.transport === 'http2'
        ? new Http2Transport(limits, handlers)
        : new DeferredGrpcJsTransport(limits, handlers);
  }

  /** Binds and starts serving (TLS with `tls`); resolves with the bound port (useful with port 0). */
  listen(host: string, port: number, tls?: XdsTls): Promise<number> {
    return this.server.listen(host, port, tls);
  }

  /** Connected streams and their per-type sync state (read-only use). */
  get connected(): ReadonlyMap<number, StreamInfo> {
    return this.streams;
  }

  /**
   * Graceful drain (SIGTERM): stops listening and sends every connection an HTTP/2 GOAWAY (no
   * new streams), then ends every stream with UNAVAILABLE so its sidecar reconnects, through
   * its xDS cluster, to another replica. Resolves once the connections are gone, or after
   * `timeoutMs`, when whatever is left is cut.
   */
  drain(timeoutMs: number): Promise<void> {
    this.draining ??= new Promise<void>((resolve) => {
      this.cancelAdmissions();
      const open = this.live.size;
      const started = Date.now();
      const done = (how: string) => {
        clearTimeout(timer);
        this.lifecycleLog.flush();
        this.authRefusals?.flush();
        this.logger.info({ streams: open, ms: Date.now() - started, how }, 'xds drained');
        resolve();
      };
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        done('timed out: cut the rest');
      }, timeoutMs);
      // First no new streams (here or on an open connection), then end the open ones: a
      // sidecar reconnecting meanwhile could otherwise land on this replica again.
      this.server.shutdown(() => done('every connection closed'));
      for (const stream of [...this.live.values()]) stream.goAway(DRAIN_REASON);
    });
    return this.draining;
  }

  /** Stops accepting, gives streams `graceMs` to finish, then cuts them. */
  async close(graceMs = 1000): Promise<void> {
    if (this.draining) return this.draining;
    this.cancelAdmissions();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.shutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    this.lifecycleLog.flush();
    this.authRefusals?.flush();
  }

  /** Cuts every stream at once (tests: simulate a crash). */
  forceClose(): void {
    this.cancelAdmissions();
    this.server.forceShutdown();
  }

  /**
   * Checks a new stream's credentials first (its token is in the call's metadata, there before
   * any request), so one without a valid token is refused (auth-refusals.ts) before it can take
   * a --stream-rate token or a --max-streams slot: those are for sidecars with a token, and
   * anyone who reaches the port could use them up otherwise. A valid token claiming another
   * service is refused on the first request (it names the node), after admission: that
   * caller holds a token this control plane issued. A check is a signature verification (no
   * I/O, ~0.1-0.3 ms of CPU); lucid_mesh_xds_auth_failures_total{reason} counts the refusals.
   */
  private admit(
    call: AdsCall<{ node?: NodeMessage }>,
    mode: StreamMode,
    start: (service: string | undefined) => void,
  ): void {
    if (this.draining) {
      this.goAway(call);
      return;
    }
    const auth = this.authenticator?.authenticate(call.metadata);
    if (!auth) {
      this.admitWithinLimits(call, () => start(undefined));
      return;
    }
    auth.then(
      (service) => {
        if (call.cancelled) return;
        if (this.stopped) this.goAway(call);
        else this.admitWithinLimits(call, () => start(service));
      },
      (err: unknown) => {
        if (err instanceof AuthError) {
          this.authRefusals!.refuse(call, mode, err);
          return;
        }
        this.logger.error({ err, peer: call.getPeer() }, 'xds stream authentication failed');
        call.emit('error', {
          code: GrpcStatus.INTERNAL,
          details: `internal error: ${(err as Error).message}`,
        });
      },
    );
  }

  /** A stream that slipped in before the GOAWAY reached its connection, or while closing. */
  private goAway(call: AdsCall<unknown>): void {
    call.emit('error', {
      code: GrpcStatus.UNAVAILABLE,
      details: DRAIN_REASON,
    });
  }

  /**
   * Starts a new stream, or refuses it with RESOURCE_EXHAUSTED: past --max-streams, or past
   * --stream-rate when its turn would be more than STREAM_ADMISSION_WAIT_MS away. A stream
   * within that wait is started when its turn comes (not read meanwhile).
   */
  private admitWithinLimits(call: AdsCall<unknown>, start: () => void): void {
    const { maxStreams, streamRate, streamBurst } = this.limits;
    if (maxStreams > 0 && this.streams.size + this.admitting.size >= maxStreams) {
      this.refuse(
        call,
        'max-streams',
        `this control plane replica serves at most ${maxStreams} streams (--max-streams); try another replica`,
      );
      return;
    }
    const waitMs = this.newStreams?.reserve(STREAM_ADMISSION_WAIT_MS) ?? 0;
    if (waitMs < 0) {
      this.refuse(
        call,
        'stream-rate',
        `too many new streams (--stream-rate ${streamRate}/s, burst ${streamBurst}); retry later or try another replica`,
      );
      return;
    }
    if (waitMs === 0) {
      start();
      return;
    }
    const timer = setTimeout(() => {
      this.admitting.delete(timer);
      if (!call.cancelled) start();
    }, waitMs);
    this.admitting.add(timer);
  }

  private refuse(call: AdsCall<unknown>, reason: StreamRefusal, details: string): void {
    const peer = call.getPeer();
    this.observer.streamRefused(reason, peer);
    call.emit('error', {
      code: GrpcStatus.RESOURCE_EXHAUSTED,
      details,
    });
    const now = Date.now();
    if (now - this.refusalsLoggedAt < REFUSAL_LOG_INTERVAL_MS) {
      this.refusalsUnlogged++;
      return;
    }
    this.logger.warn(
      { reason, peer, alsoRefusedSinceLastLine: this.refusalsUnlogged, details },
      'xds stream refused',
    );
    this.refusalsLoggedAt = now;
    this.refusalsUnlogged = 0;
  }

  private cancelAdmissions(): void {
    this.stopped = true;
    for (const timer of this.admitting) clearTimeout(timer);
    this.admitting.clear();
  }

  /** `service`: what the stream's token proves (undefined: --auth none). */
  private track(stream: SotwStream | DeltaStream, service: string | undefined): void {
    this.streams.set(stream.info.id, stream.info);
    this.live.set(stream.info.id, stream);
    // ±10 % so that streams opened together (a rollout) do not all end together. A response
    // still waiting for its ACK is given up to 10 s to get it first.
    this.ageOut?.add(stream.info.id, stream, ageOutDelayMs(this.limits.maxStreamAgeMs));
    stream.start(service);
  }

  private forget(id: number): void {
    this.streams.delete(id);
    this.live.delete(id);
    this.ageOut?.forget(id);
  }
}
