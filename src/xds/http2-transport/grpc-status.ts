// gRPC status on the wire: the headers and trailers a call ends with.
import { constants } from 'node:http2';
import type { OutgoingHttpHeaders } from 'node:http2';

/**
 * Response headers: what gRPC requires (Envoy checks the content-type). Not grpc-js's
 * grpc-encoding/grpc-accept-encoding: responses are never compressed, and Node keeps the
 * headers sent for each stream's life (472 B a proxy at W9 with them).
 */
export const RESPONSE_HEADERS: OutgoingHttpHeaders = {
  [constants.HTTP2_HEADER_STATUS]: 200,
  [constants.HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc+proto',
};

/**
 * grpc-message is percent-encoded (gRPC over HTTP/2): every byte of its UTF-8 outside
 * printable ASCII, and '%' itself, as %XX.
 */
export function encodeGrpcMessage(message: string): string {
  if (/^[\x20-\x24\x26-\x7e]*$/.test(message)) return message;
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export function statusTrailers(code: number, details: string): OutgoingHttpHeaders {
  return { 'grpc-status': String(code), 'grpc-message': encodeGrpcMessage(details) };
}

/** A call that ends before any response: one HEADERS frame with the status, END_STREAM. */
export function trailersOnly(code: number, details: string): OutgoingHttpHeaders {
  return {
    [constants.HTTP2_HEADER_STATUS]: 200,
    [constants.HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc+proto',
    ...statusTrailers(code, details),
  };
}
