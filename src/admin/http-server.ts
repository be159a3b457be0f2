// The operator HTTP server (seeds: port 8080): liveness, readiness, Prometheus metrics.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';

export interface AdminDeps {
  /** undefined when ready; otherwise the reason, shown in the /ready body. */
  notReadyReason(): string | undefined;
  registry: Registry;
}

export class AdminServer {
  private readonly server: Server;

  constructor(private readonly deps: AdminDeps) {
    this.server = createServer((req, res) => {
      this.route(req, res).catch((err: Error) => send(res, 500, { error: err.message }));
    });
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', (err) =>
        reject(new Error(`cannot listen for admin HTTP on ${host}:${port}: ${err.message}`)),
      );
      this.server.listen(port, host, () => {
        const addr = this.server.address();
        resolve(typeof addr === 'object' && addr ? addr.port : port);
      });
    });
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { error: 'only GET' });
    switch (path) {
      case '/health':
        return send(res, 200, { status: 'ok' });
      case '/ready': {
        const reason = this.deps.notReadyReason();
        return reason === undefined
          ? send(res, 200, { status: 'ready' })
          : send(res, 503, { status: 'not ready', reason });
      }
      case '/metrics': {
        const body = await this.deps.registry.metrics();
        res.writeHead(200, { 'content-type': this.deps.registry.contentType });
        res.end(body);
        return;
      }
      default:
        return send(res, 404, {
          error: `no such endpoint ${path}`,
          endpoints: ['/health', '/ready', '/metrics'],
        });
    }
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(`${JSON.stringify(body)}\n`);
}
