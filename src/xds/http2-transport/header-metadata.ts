// The request's HTTP/2 headers as call metadata (what the authenticator reads). Only the
// metadata headers are kept (not the pseudo-headers, content-type, te, user-agent, grpc-*),
// so a stream holds a few strings, not the whole header block, for its lifetime.
import type { IncomingHttpHeaders } from 'node:http2';
import type { CallMetadata } from '../ads-call.js';

const TRANSPORT_HEADERS = new Set(['content-type', 'te', 'user-agent', 'accept-encoding']);
const NONE: Readonly<Record<string, string | string[]>> = Object.freeze({});

export class HeaderMetadata implements CallMetadata {
  private readonly values: Readonly<Record<string, string | string[]>>;

  constructor(headers: IncomingHttpHeaders) {
    let kept: Record<string, string | string[]> | undefined;
    for (const [name, value] of Object.entries(headers)) {
      if (value === undefined || name.startsWith(':') || name.startsWith('grpc-')) continue;
      if (TRANSPORT_HEADERS.has(name)) continue;
      (kept ??= {})[name] = value;
    }
    this.values = kept ?? NONE;
  }

  get(key: string): Array<string | Buffer> {
    const name = key.toLowerCase();
    const value = this.values[name];
    if (value === undefined) return [];
    const list = Array.isArray(value) ? value : [value];
    return name.endsWith('-bin') ? list.map((v) => Buffer.from(v, 'base64')) : list;
  }
}
