// A gRPC client at the HTTP/2 frame level (node:http2), for what a gRPC library will not send:
// a message split over many DATA frames, many messages in one, a compressed flag with an
// encoding the server does not know, any :path. Responses are read back as length-prefixed
// messages, and the status from the trailers (or a trailers-only response).
import * as http2 from 'node:http2';

export interface RawCallResult {
  /** The response messages, without their 5-byte prefixes. */
  readonly messages: Buffer[];
  readonly status: number | undefined;
  readonly message: string | undefined;
  readonly httpStatus: number | undefined;
}

export interface RawCall {
  /** Writes bytes as they are (one write: usually one DATA frame). */
  write(bytes: Buffer): void;
  /** Resolves once `n` response messages have come (rejects after `timeoutMs`). */
  messages(n: number, timeoutMs?: number): Promise<Buffer[]>;
  /** Resolves when the call ends (status in trailers, or the stream closed). */
  readonly done: Promise<RawCallResult>;
  close(): void;
}

/** A gRPC message: flag byte, 4-byte big-endian length, the bytes. */
export function grpcFrame(message: Buffer, compressed = false): Buffer {
  const prefix = Buffer.alloc(5);
  prefix[0] = compressed ? 1 : 0;
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

export function rawCall(
  port: number,
  path: string,
  headers: http2.OutgoingHttpHeaders = {},
): RawCall {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on('error', () => undefined);
  const stream = session.request({
    ':method': 'POST',
    ':path': path,
    'content-type': 'application/grpc',
    te: 'trailers',
    ...headers,
  });
  const messages: Buffer[] = [];
  let pending = Buffer.alloc(0);
  const waiters: Array<() => void> = [];
  let status: number | undefined;
  let message: string | undefined;
  let httpStatus: number | undefined;
  const readStatus = (h: http2.IncomingHttpHeaders) => {
    if (h['grpc-status'] !== undefined) status = Number(h['grpc-status']);
    if (h['grpc-message'] !== undefined) message = decodeURIComponent(String(h['grpc-message']));
  };
  stream.on('response', (h) => {
    httpStatus = Number(h[':status']);
    readStatus(h);
  });
  stream.on('trailers', readStatus);
  stream.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
      const length = pending.readUInt32BE(1);
      messages.push(pending.subarray(5, 5 + length));
      pending = pending.subarray(5 + length);
    }
    waiters.splice(0).forEach((w) => w());
  });
  stream.on('error', () => undefined);
  // The server ended its side (status sent): end ours too, so the stream closes.
  stream.on('end', () => stream.close());
  const done = new Promise<RawCallResult>((resolve) => {
    stream.on('close', () => {
      waiters.splice(0).forEach((w) => w());
      resolve({ messages, status, message, httpStatus });
    });
  });
  return {
    write: (bytes) => void stream.write(bytes),
    messages: (n, timeoutMs = 3000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`${messages.length} of ${n} responses within ${timeoutMs} ms`)),
          timeoutMs,
        );
        const check = () => {
          if (messages.length >= n) {
            clearTimeout(timer);
            resolve(messages.slice(0, n));
          } else if (stream.closed) {
            clearTimeout(timer);
            reject(
              new Error(
                `stream closed after ${messages.length} of ${n} responses (status ${status} ${message})`,
              ),
            );
          } else waiters.push(check);
        };
        check();
      }),
    done,
    close: () => {
      stream.close();
      session.close();
    },
  };
}
