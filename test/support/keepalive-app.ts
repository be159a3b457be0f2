// An app server that closes idle keep-alive connections on its own timer, as Node's http
// server does (keepAliveTimeout, 5 s by default), and counts who closed each connection:
// the app (its timer fired) or its peer (a FIN arrived first). Node 20.20 closes an idle
// connection 1 s after the keepAliveTimeout it advertises (Keep-Alive: timeout=N), so when it
// really closes is measured once at start (closesIdleAfterMs).
import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { listenOnLoopback } from './http-app.js';

export interface KeepAliveApp {
  readonly port: number;
  readonly hits: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Idle connections the app closed itself when keepAliveTimeout ran out. */
  readonly closedByApp: number;
  /** Connections whose peer (the sidecar) closed them first. */
  readonly closedByPeer: number;
  /** Measured: how long after a response the app closes the idle connection. */
  readonly closesIdleAfterMs: number;
  close(): Promise<void>;
}

/** `keepAliveTimeoutMs` absent: Node's default (5 s). */
export async function startKeepAliveApp(keepAliveTimeoutMs?: number): Promise<KeepAliveApp> {
  let hits = 0;
  let connections = 0;
  let closedByApp = 0;
  let closedByPeer = 0;
  const server: Server = createServer((_req, res) => {
    hits++;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 });
    res.end('ok');
  });
  if (keepAliveTimeoutMs !== undefined) server.keepAliveTimeout = keepAliveTimeoutMs;
  server.on('connection', (socket: Socket) => {
    connections++;
    socket.once('end', () => closedByPeer++);
  });
  // Node emits 'timeout' when keepAliveTimeout runs out on an idle connection, and destroys
  // the socket only if nobody listens: count it, then close it as Node would.
  server.on('timeout', (socket: Socket) => {
    closedByApp++;
    socket.destroy();
  });
  const listening = await listenOnLoopback(server);
  const closesIdleAfterMs = await idleCloseTime(listening.port).catch(async (err: unknown) => {
    await listening.close();
    throw err;
  });
  return {
    port: listening.port,
    closesIdleAfterMs,
    get hits() {
      return hits;
    },
    get connections() {
      return connections;
    },
    get closedByApp() {
      return closedByApp;
    },
    get closedByPeer() {
      return closedByPeer;
    },
    close: listening.close,
  };
}

/** One raw request, then how long until the server closes the idle connection. */
function idleCloseTime(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let answeredAt = 0;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`keep-alive app on ${port}: idle connection still open after 10 s`));
    }, 10_000);
    socket.once('data', () => (answeredAt = performance.now()));
    socket.on('error', () => undefined);
    socket.once('close', () => {
      clearTimeout(timer);
      if (answeredAt === 0) reject(new Error(`keep-alive app on ${port}: no answer`));
      else resolve(Math.round(performance.now() - answeredAt));
    });
    socket.write('GET /probe HTTP/1.1\r\nHost: probe\r\n\r\n');
  });
}
