// ADS served by node:http2 directly (serve --xds-transport http2, the default): a server of
// our own for the two streaming methods instead of @grpc/grpc-js. Measured in the W9 storm
// (10,000 sidecars, bench/RESULTS.md), grpc-js's per-call objects, its extra copy of every
// message to frame it and its per-session timers were a third of the control plane's memory
// per proxy and a share of its CPU per sidecar; ADS needs none of what grpc-js adds (unary
// calls, interceptors, deadlines, channelz), only framing, status and keepalive.
import * as http2 from 'node:http2';
import { GrpcStatus } from '../grpc-status-codes.js';
import type { AdsHandlers, AdsTransport, XdsTls } from '../ads-transport.js';
import { DELTA_PATH, SOTW_PATH } from '../ads-transport.js';
import { decodeDeltaRequest, type DecodedDeltaRequest } from '../delta-request.js';
import type { XdsLimits } from '../limits.js';
import { XDS_LISTEN_BACKLOG } from '../listen-backlog.js';
import { decodeSotwRequest, type SotwRequest } from '../sotw-request.js';
import { HeaderMetadata } from './header-metadata.js';
import { Http2AdsCall, ignore, type Http2CallOptions } from './http2-call.js';
import { Acceptor } from './acceptor.js';
import { Keepalive } from './keepalive.js';
import { trailersOnly } from './grpc-status.js';

const { HTTP2_HEADER_PATH, HTTP2_HEADER_METHOD, HTTP2_HEADER_CONTENT_TYPE } = http2.constants;

/**
 * As grpc-js sets them: headers of any size, and no cap on session memory (nghttp2's own
 * accounting refuses streams of a busy session past it, which a storm reaches).
 */
const SERVER_OPTIONS: http2.ServerOptions = {
  maxSendHeaderBlockLength: Number.MAX_SAFE_INTEGER,
  maxSessionMemory: Number.MAX_SAFE_INTEGER,
};

export class Http2Transport implements AdsTransport {
  private server: http2.Http2Server | http2.Http2SecureServer | undefined;
  /** Listens and accepts; the http2 server above only sets up what it is handed. */
  private acceptor: Acceptor | undefined;
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private readonly keepalive = new Keepalive();
  private readonly sotwOptions: Http2CallOptions<SotwRequest>;
  private readonly deltaOptions: Http2CallOptions<DecodedDeltaRequest>;

  constructor(
    limits: XdsLimits,
    private readonly handlers: AdsHandlers,
  ) {
    const { maxRequestBytes } = limits;
    this.sotwOptions = { decode: decodeSotwRequest, maxRequestBytes, encoding: 'identity' };
    this.deltaOptions = { decode: decodeDeltaRequest, maxRequestBytes, encoding: 'identity' };
  }

  listen(host: string, port: number, tls?: XdsTls): Promise<number> {
    const server = tls
      ? http2.createSecureServer({
          ...SERVER_OPTIONS,
          cert: tls.cert,
          key: tls.key,
          ALPNProtocols: ['h2'],
        })
      : http2.createServer(SERVER_OPTIONS);
    this.server = server;
    server.on('session', (session) => this.track(session));
    server.on('stream', (stream, headers) => this.route(stream, headers));
    // A client speaking anything but HTTP/2 (or TLS gone wrong): its connection is dropped.
    server.on('sessionError', () => undefined);
    server.on('tlsClientError' as 'sessionError', () => undefined);
    // Connections are accepted by a plain listener and handed on (acceptor.ts); the http2
    // (or TLS) server sets each one up as if it had accepted it.
    const acceptor = new Acceptor((socket) => {
      server.emit('connection', socket);
      socket.resume(); // accepted paused: read from now on, by its session
    });
    this.acceptor = acceptor;
    const listener = acceptor.server;
    const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    return new Promise((resolve, reject) => {
      const failed = (err: Error) =>
        reject(new Error(`cannot listen for xDS on ${address}: ${err.message}`));
      listener.once('error', failed);
      // A storm of sidecars connects at once: an accept queue of more than Node's 511.
      listener.listen({ host, port, backlog: XDS_LISTEN_BACKLOG }, () => {
        listener.off('error', failed);
        const bound = listener.address();
        resolve(typeof bound === 'object' && bound ? bound.port : port);
      });
    });
  }

  shutdown(done: () => void): void {
    this.keepalive.stop();
    const listener = this.acceptor?.server;
    this.acceptor?.dropWaiting();
    if (!listener?.listening) {
      for (const session of this.sessions) session.destroy();
      done();
      return;
    }
    // Stops accepting; calls back once every connection is gone. Each session gets a GOAWAY
    // (no new streams) and closes once its streams have ended.
    listener.close(() => done());
    for (const session of this.sessions) session.close();
  }

  forceShutdown(): void {
    this.keepalive.stop();
    const listener = this.acceptor?.server;
    this.acceptor?.dropWaiting();
    if (listener?.listening) listener.close();
    for (const session of this.sessions) session.destroy();
    this.sessions.clear();
  }

  private track(session: http2.ServerHttp2Session): void {
    this.sessions.add(session);
    // One listener function for every session (a closure each is memory per proxy).
    session.once('close', this.onSessionClose);
    session.on('error', ignore); // followed by 'close'
    this.keepalive.add(session);
  }

  private readonly onSessionClose = (() => {
    const sessions = this.sessions;
    const keepalive = this.keepalive;
    return function (this: http2.ServerHttp2Session): void {
      sessions.delete(this);
      keepalive.remove(this);
    };
  })();

  private route(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    const contentType = headers[HTTP2_HEADER_CONTENT_TYPE];
    if (typeof contentType !== 'string' || !contentType.startsWith('application/grpc')) {
      stream.on('error', ignore);
      // As grpc-js: not gRPC at all gets HTTP 415.
      stream.respond(
        { ':status': http2.constants.HTTP_STATUS_UNSUPPORTED_MEDIA_TYPE },
        { endStream: true },
      );
      return;
    }
    const path = headers[HTTP2_HEADER_PATH];
    const sotw = path === SOTW_PATH;
    if ((!sotw && path !== DELTA_PATH) || headers[HTTP2_HEADER_METHOD] !== 'POST') {
      stream.on('error', ignore);
      stream.respond(
        trailersOnly(GrpcStatus.UNIMPLEMENTED, `The server does not implement the method ${path}`),
        { endStream: true },
      );
      return;
    }
    const metadata = new HeaderMetadata(headers);
    const encoding = headerValue(headers['grpc-encoding']) ?? 'identity';
    // One options object per method for every call (a storm makes 10,000 of them).
    const identity = encoding === 'identity';
    if (sotw) {
      const options = identity ? this.sotwOptions : { ...this.sotwOptions, encoding };
      this.handlers.sotw(new Http2AdsCall(stream, metadata, options));
    } else {
      const options = identity ? this.deltaOptions : { ...this.deltaOptions, encoding };
      this.handlers.delta(new Http2AdsCall(stream, metadata, options));
    }
  }
}

const headerValue = (v: string | string[] | undefined): string | undefined =>
  Array.isArray(v) ? v[0] : v;
