// One ADS call on a node:http2 stream: gRPC messages in (frame-parser.ts, decoded), encoded
// responses out with their 5-byte prefix, status in trailers. It behaves as the AdsCall the
// streams were written against (grpc-js's ServerDuplexStream): 'data', 'end', 'cancelled',
// 'error' with a status ends the call, write() === false until 'drain'.
import { EventEmitter } from 'node:events';
import type { ServerHttp2Stream } from 'node:http2';
import { gunzipSync, inflateSync } from 'node:zlib';
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { AdsCall, CallMetadata, CallStatus } from '../ads-call.js';
import { GrpcFrameParser, MessageTooLarge, type RawMessage } from './frame-parser.js';
import { RESPONSE_HEADERS, statusTrailers, trailersOnly } from './grpc-status.js';

export interface Http2CallOptions<Req> {
  readonly decode: (bytes: Buffer) => Req;
  /** --max-request-bytes (-1: no limit). */
  readonly maxRequestBytes: number;
  /** The request's grpc-encoding: how a message with the compressed flag is compressed. */
  readonly encoding: string;
}

export class Http2AdsCall<Req> extends EventEmitter implements AdsCall<Req> {
  cancelled = false;
  /** A status was sent (or the stream is gone): nothing more is written. */
  private ended = false;
  private headersSent = false;
  private readonly parser: GrpcFrameParser;

  constructor(
    private readonly stream: ServerHttp2Stream,
    readonly metadata: CallMetadata,
    private readonly options: Http2CallOptions<Req>,
  ) {
    super();
    this.parser = new GrpcFrameParser(options.maxRequestBytes, (m) => this.receive(m));
    // As grpc-js: emitting 'error' with a status ends the call with it.
    this.on('error', (status: CallStatus) => this.sendStatus(status.code, status.details));
    // Requests are read once someone listens for them (a stream waiting for admission is not).
    const onListener = (event: string | symbol): void => {
      if (event !== 'data') return;
      this.off('newListener', onListener);
      stream.on('data', (chunk: Buffer) => this.read(chunk));
    };
    this.on('newListener', onListener);
    stream.on('end', () => {
      if (!this.ended) this.emit('end');
    });
    stream.on('drain', () => this.emit('drain'));
    // Errors are followed by 'close'; the session's own errors are the transport's to log.
    stream.on('error', () => undefined);
    stream.once('close', () => {
      if (this.ended) return;
      this.ended = true;
      this.cancelled = true;
      this.emit('cancelled');
    });
  }

  getPeer(): string {
    const socket = this.stream.session?.socket;
    if (!socket?.remoteAddress) return 'unknown';
    return socket.remotePort
      ? `${socket.remoteAddress}:${socket.remotePort}`
      : socket.remoteAddress;
  }

  pause(): this {
    this.stream.pause();
    return this;
  }

  resume(): this {
    this.stream.resume();
    return this;
  }

  /**
   * The prefix and the message go out as two chunks of one corked write (one writev): the
   * message, encoded once and often shared by many streams, is never copied to frame it.
   */
  write(message: Buffer): boolean {
    if (this.ended || this.stream.destroyed || this.stream.closed) return true;
    this.sendHeaders();
    const prefix = Buffer.allocUnsafe(5);
    prefix[0] = 0;
    prefix.writeUInt32BE(message.length, 1);
    this.stream.cork();
    this.stream.write(prefix);
    const ok = this.stream.write(message);
    this.stream.uncork();
    return ok;
  }

  end(): void {
    this.sendStatus(GrpcStatus.OK, 'OK');
  }

  private sendHeaders(): void {
    if (this.headersSent) return;
    this.headersSent = true;
    this.stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
  }

  private sendStatus(code: number, details: string): void {
    if (this.ended) return;
    this.ended = true;
    const stream = this.stream;
    if (stream.destroyed || stream.closed) return;
    if (this.headersSent) {
      stream.once('wantTrailers', () => stream.sendTrailers(statusTrailers(code, details)));
      stream.end();
    } else {
      stream.respond(trailersOnly(code, details), { endStream: true });
    }
  }

  private read(chunk: Buffer): void {
    if (this.ended) return;
    try {
      this.parser.push(chunk);
    } catch (err) {
      if (!(err instanceof MessageTooLarge)) throw err;
      this.fail(GrpcStatus.RESOURCE_EXHAUSTED, err.message);
    }
  }

  private receive(message: RawMessage): void {
    if (this.ended) return;
    let bytes = message.bytes;
    if (message.compressed) {
      const inflated = this.decompress(bytes);
      if (!inflated) return;
      bytes = inflated;
    }
    let req: Req;
    try {
      req = this.options.decode(bytes);
    } catch {
      this.fail(GrpcStatus.INTERNAL, 'Error deserializing request');
      return;
    }
    this.emit('data', req);
  }

  /**
   * Envoy never compresses its requests; other gRPC clients may (gzip, deflate), and grpc-js
   * accepts those, so this transport does too, within --max-request-bytes once inflated.
   */
  private decompress(bytes: Buffer): Buffer | undefined {
    const { encoding, maxRequestBytes } = this.options;
    if (encoding === 'identity') return bytes;
    if (encoding !== 'gzip' && encoding !== 'deflate') {
      this.fail(
        GrpcStatus.UNIMPLEMENTED,
        `Received message compressed with unsupported encoding "${encoding}"`,
      );
      return undefined;
    }
    const max = maxRequestBytes === -1 ? undefined : maxRequestBytes;
    try {
      const opts = max === undefined ? {} : { maxOutputLength: max };
      return encoding === 'gzip' ? gunzipSync(bytes, opts) : inflateSync(bytes, opts);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
        this.fail(
          GrpcStatus.RESOURCE_EXHAUSTED,
          `Received message that decompresses to a size larger than ${maxRequestBytes}`,
        );
      } else this.fail(GrpcStatus.INTERNAL, 'Failed to decompress message');
      return undefined;
    }
  }

  /** Ends the call from here, telling the stream as grpc-js does (an 'error' with the status). */
  private fail(code: GrpcStatus, details: string): void {
    this.emit('error', { code, details });
  }
}
