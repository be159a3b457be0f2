// The load client's gRPC transport: just enough gRPC over node:http2 for one bidirectional
// stream of opaque messages. @grpc/grpc-js's per-call and per-message machinery (call objects,
// interceptors, decoder, event plumbing) was about a third of the simulated sidecars' CPU, and
// that CPU is taken from the machine the control plane is measured on.
// What is left here is what the protocol needs: a POST with the gRPC headers, messages framed
// as 1 flag byte + 4-byte big-endian length + payload, and the status in the trailers.
import http2 from 'node:http2';
import { nowMs } from './protocol.js';

const { NGHTTP2_CANCEL } = http2.constants;

/** Envoy's default HTTP/2 stream and connection windows (grpc-js would advertise 64 KiB). */
const WINDOW = 256 * 1024 * 1024;

// gRPC status names, for messages that read like grpc-js's ("14 UNAVAILABLE: …").
const STATUS = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
];

export interface CallHandlers {
  /** One complete message (the payload, without the 5-byte prefix). */
  message(payload: Buffer): void;
  /** The call failed: non-OK status, reset, or the connection went away. At most once. */
  error(message: string): void;
}

export interface Call {
  write(payload: Buffer): void;
  /** Half-closes (END_STREAM); the call stays open for responses. */
  end(): void;
}

/**
 * Splits a gRPC response body into messages. A message may span DATA chunks and a chunk may
 * hold several. Every message is handed out in a buffer of its own: chunks are views of the
 * session's 64 KiB socket reads, and a sidecar keeps its last CDS/LDS response, which as a
 * view would pin a whole read buffer per proxy.
 */
class Deframer {
  private parts: Buffer[] = [];
  private have = 0;
  /** Bytes wanted for the current header (5) or payload. */
  private want = 5;
  private inHeader = true;

  constructor(private readonly emit: (payload: Buffer) => void) {}

  push(chunk: Buffer): void {
    let off = 0;
    const len = chunk.length;
    while (off < len) {
      if (this.have === 0 && this.inHeader) {
        // Fast path: a whole header here, and maybe the whole message.
        if (len - off >= 5) {
          checkFlag(chunk[off]!);
          const size = chunk.readUInt32BE(off + 1);
          off += 5;
          if (len - off >= size) {
            this.emit(Buffer.from(chunk.subarray(off, off + size)));
            off += size;
          } else {
            this.inHeader = false;
            this.want = size;
          }
          continue;
        }
      }
      const take = Math.min(this.want - this.have, len - off);
      this.parts.push(chunk.subarray(off, off + take));
      this.have += take;
      off += take;
      if (this.have < this.want) return;
      // Buffer.concat copies even a single part, which is what we want (see above).
      const whole = Buffer.concat(this.parts, this.have);
      this.parts = [];
      this.have = 0;
      if (this.inHeader) {
        checkFlag(whole[0]!);
        this.want = whole.readUInt32BE(1);
        this.inHeader = false;
        if (this.want === 0) this.finishEmpty();
      } else {
        this.emit(whole);
        this.inHeader = true;
        this.want = 5;
      }
    }
  }

  private finishEmpty(): void {
    this.emit(Buffer.alloc(0));
    this.inHeader = true;
    this.want = 5;
  }
}

function checkFlag(flag: number): void {
  // We send no grpc-accept-encoding, so a conforming server never compresses.
  if (flag !== 0) throw new Error(`compressed or invalid message (flag ${flag})`);
}

/** grpc-message is percent-encoded. */
function grpcMessage(raw: string | string[] | undefined): string {
  const text = String(raw ?? '');
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** One HTTP/2 connection (h2c) to `target` ("host:port"), as one Envoy holds to its xDS server. */
export class GrpcH2Channel {
  private readonly session: http2.ClientHttp2Session;
  /** Open streams: connection failures are reported to them, close() resets them. */
  private readonly live = new Map<http2.ClientHttp2Stream, (message: string) => void>();
  private closed = false;
  /** When the connection was up, and when its first response bytes came (the storm's stages). */
  connectedAt = 0;
  firstDataAt = 0;

  constructor(target: string) {
    this.session = http2.connect(`http://${target}`, {
      settings: { initialWindowSize: WINDOW },
      // As grpc-js: Node's default (10 MB) would throttle us under large responses.
      maxSessionMemory: Number.MAX_SAFE_INTEGER,
    });
    // The connection window can only be raised once the session has its socket.
    // A channel closed before it connected (a soak client reopening fast) has no session left.
    this.session.once('connect', () => {
      this.connectedAt = nowMs();
      if (!this.session.destroyed) this.session.setLocalWindowSize(WINDOW);
    });
    this.session.on('error', (err) => this.failAll(err.message));
    this.session.on('goaway', (code) => {
      // Calls already running may finish; a non-zero code means they will not.
      if (code !== 0) this.failAll(`GOAWAY received (code ${code})`);
    });
    this.session.on('close', () => this.failAll('connection closed'));
  }

  private failAll(message: string): void {
    for (const fail of [...this.live.values()]) fail(message);
  }

  open(path: string, handlers: CallHandlers): Call {
    const stream = this.session.request(
      {
        ':method': 'POST',
        ':path': path,
        'content-type': 'application/grpc',
        te: 'trailers',
        'user-agent': 'lucid-mesh-bench',
      },
      { endStream: false },
    );
    let done = false;
    const fail = (message: string): void => {
      if (done) return;
      done = true;
      if (!this.closed) handlers.error(message);
    };
    this.live.set(stream, fail);
    const deframer = new Deframer(handlers.message);
    // Status arrives in the trailers, or in the headers of a trailers-only response.
    const status = (headers: http2.IncomingHttpHeaders): boolean => {
      const raw = headers['grpc-status'];
      if (raw === undefined) return false;
      const code = Number(raw);
      if (code === 0) done = true;
      else {
        fail(`${code} ${STATUS[code] ?? 'UNKNOWN'}: ${grpcMessage(headers['grpc-message'])}`);
      }
      return true;
    };
    stream.on('response', (headers) => {
      if (status(headers)) return;
      const code = headers[':status'];
      if (code !== 200) fail(`HTTP status ${code}`);
    });
    stream.on('trailers', status);
    let unframeable = false;
    stream.on('data', (chunk: Buffer) => {
      if (this.firstDataAt === 0) this.firstDataAt = nowMs();
      if (unframeable) return;
      try {
        deframer.push(chunk);
      } catch (err) {
        unframeable = true;
        fail((err as Error).message);
        stream.close(NGHTTP2_CANCEL);
      }
    });
    stream.on('error', (err) => fail(err.message));
    // Ended without a status: reset by the peer, or the connection dropped.
    stream.on('close', () => {
      this.live.delete(stream);
      fail(
        this.session.destroyed
          ? 'connection closed'
          : `stream closed without status (RST_STREAM ${stream.rstCode})`,
      );
    });
    return {
      write: (payload) => {
        // Nothing to say on a call that has ended (as grpc-js, which drops such writes).
        if (done || stream.destroyed) return;
        // One buffer, one write: the copy costs less than a second write (or cork/uncork),
        // measured up to the ~20 KiB of a SotW EDS ACK that names 1000 clusters.
        const frame = Buffer.allocUnsafe(5 + payload.length);
        frame[0] = 0;
        frame.writeUInt32BE(payload.length, 1);
        payload.copy(frame, 5);
        stream.write(frame);
      },
      end: () => {
        if (!stream.writableEnded && !stream.destroyed) stream.end();
      },
    };
  }

  /** Closes the connection without reporting the calls it cuts short. */
  close(): void {
    this.closed = true;
    if (this.session.destroyed) return;
    // Half-close, then reset: the session's close() then need not wait for the server to end
    // the calls (an ADS server never does on its own).
    for (const stream of [...this.live.keys()]) {
      if (!stream.writableEnded) stream.end();
      stream.close(NGHTTP2_CANCEL);
    }
    if (this.session.connecting) this.session.destroy();
    else this.session.close();
  }
}
