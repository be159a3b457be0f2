// A tiny upstream app for end-to-end tests, and a client to call through a sidecar.
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { Socket } from 'node:net';

export interface HttpApp {
  readonly name: string;
  readonly port: number;
  /** Requests answered so far. */
  readonly hits: number;
  close(): Promise<void>;
}

/**
 * Starts a node:http server on 127.0.0.1:`port` (default: a free port) that answers every
 * request with 200 and JSON `{ app, path, host }` (path includes the query; host is the
 * Host header) and counts hits.
 */
export async function startHttpApp(name: string, port = 0): Promise<HttpApp> {
  let hits = 0;
  const server: Server = createServer((req, res) => {
    hits++;
    const body = JSON.stringify({ app: name, path: req.url ?? '', host: req.headers.host ?? '' });
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'x-app': name,
    });
    res.end(body);
  });
  const listening = await listenOnLoopback(server, port);
  return {
    name,
    port: listening.port,
    get hits() {
      return hits;
    },
    close: listening.close,
  };
}

export interface Listening {
  readonly port: number;
  /** Stops listening and destroys open connections; idempotent. */
  close(): Promise<void>;
}

/**
 * Starts `server` on 127.0.0.1:`port` (default: a free port). Its close() also destroys the
 * connections left open: Envoy keeps upstream connections alive, so a plain close() would hang.
 */
export async function listenOnLoopback(
  server: Server,
  port = 0,
  beforeClose: () => void = () => undefined,
): Promise<Listening> {
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('listen: no address');
  let closing: Promise<void> | undefined;
  return {
    port: address.port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        beforeClose();
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      return closing;
    },
  };
}

export interface HttpResult {
  status: number;
  body: string;
  headers: IncomingHttpHeaders;
}

/**
 * GET `url` with a fresh connection (no keep-alive pooling, so every call sees the current
 * listener config). Resolves for any HTTP status; rejects with a message naming the URL on
 * connection errors or when no complete response arrives within `timeoutMs` (default 5 s).
 */
export function httpGet(
  url: string,
  headers: Record<string, string> = {},
  timeoutMs = 5_000,
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (err: Error | undefined, result?: HttpResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(result as HttpResult);
    };
    const req = request(url, { method: 'GET', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        finish(undefined, {
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).toString('utf8'),
          headers: res.headers,
        }),
      );
      res.on('error', (e) => finish(new Error(`GET ${url}: response failed: ${e.message}`)));
    });
    const timer = setTimeout(() => {
      finish(new Error(`GET ${url}: no response within ${timeoutMs}ms`));
      req.destroy();
    }, timeoutMs);
    req.on('error', (e: NodeJS.ErrnoException) => {
      const code = e.code && !e.message.includes(e.code) ? ` (${e.code})` : '';
      finish(new Error(`GET ${url}: ${e.message}${code}`));
    });
    req.end();
  });
}
