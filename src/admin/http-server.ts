// The operator HTTP server (seeds: port 8080): liveness, readiness, Prometheus metrics,
// per-proxy sync status, snapshot dumps, a live event stream, and the mesh model (see
// mesh-endpoints.ts). Everything but the probes and /metrics needs an operator token when an
// authorizer is given (auth.ts); HTTPS when given a certificate.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Registry } from 'prom-client';
import type { SnapshotStore } from '../snapshot/store.js';
import type { EventHub } from '../telemetry/events.js';
import type { StreamInfo } from '../xds/type-status.js';
import type { RecentActivity } from '../telemetry/recent-activity.js';
import { OPEN_PATHS, type AdminAuthorizer } from './auth.js';
import { callGraph } from './call-graph.js';
import { isConsolePath, serveConsole } from './console-assets.js';
import { configErrors, meshDump, routeExplain, type ConfigErrors } from './mesh-endpoints.js';
import { proxyRows } from './proxies.js';
import { DumpError, parseKind, parsePreviewMode, snapshotDump } from './snapshot-dump.js';

export interface AdminDeps {
  /** undefined when ready; otherwise the reason, shown in the /ready body. */
  notReadyReason(): string | undefined;
  registry: Registry;
  store: SnapshotStore;
  streams(): Iterable<StreamInfo>;
  events: EventHub;
  /** /v1/config/errors; default: the current mesh's problems and unsupported input. */
  configErrors?(): ConfigErrors;
  /** Operator tokens for every path but /health, /ready, /metrics; without it all is open. */
  auth?: AdminAuthorizer;
  /** A request refused by `auth` (the reason is a metric label). */
  authFailed?(reason: string): void;
  /** Each proxy's last pushes and the last convergence times (/v1/proxies/pushes, /v1/convergence). */
  activity?: RecentActivity;
  /** Where the web console's built files are (default dist/console/). */
  consoleDir?: string;
  /** Serve HTTPS with this certificate chain and key (PEM). */
  tls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
}

const ENDPOINTS = [
  '/health (also /healthz)',
  '/ready',
  '/metrics',
  '/v1/proxies',
  '/v1/proxies/pushes?node=ID',
  '/v1/convergence',
  '/v1/snapshot?node=ID[&type=T]',
  '/v1/events[?node=ID&type=T]',
  '/v1/mesh[?service=S]',
  '/v1/mesh/calls',
  '/v1/config/errors',
  '/v1/route/explain?from=A&to=B&path=P[&method=M][&header=k:v]',
  '/ui (the web console)',
];

export class AdminServer {
  private readonly server: Server;

  constructor(private readonly deps: AdminDeps) {
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      this.route(req, res).catch((err: Error) => {
        if (err instanceof DumpError) send(res, err.status, { error: err.message });
        else send(res, 500, { error: err.message });
      });
    };
    this.server = deps.tls
      ? createHttpsServer({ cert: deps.tls.cert, key: deps.tls.key }, handler)
      : createServer(handler);
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
    const url = new URL(req.url ?? '/', 'http://x');
    // The console's files hold no data: the page asks for a token and reads /v1/ with it.
    const open = OPEN_PATHS.has(url.pathname) || isConsolePath(url.pathname);
    if (!open && !(await this.authorized(req, res))) return;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      // RFC 9110 §15.5.6: a 405 names the methods the resource takes.
      res.setHeader('allow', 'GET, HEAD');
      return send(res, 405, { error: `only GET and HEAD, got ${req.method ?? '?'}` });
    }
    if (isConsolePath(url.pathname)) return serveConsole(url.pathname, res, this.deps.consoleDir);
    switch (url.pathname) {
      case '/health':
      case '/healthz':
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
      case '/v1/proxies':
        return send(res, 200, { proxies: proxyRows(this.deps.streams(), this.deps.store.mesh) });
      case '/v1/proxies/pushes': {
        const node = url.searchParams.get('node');
        if (!node) throw new DumpError(400, 'node: required, e.g. /v1/proxies/pushes?node=hello-1');
        return send(res, 200, this.activity().pushes(node));
      }
      case '/v1/convergence':
        return send(res, 200, { changes: this.activity().convergence() });
      case '/v1/snapshot': {
        const kind = parseKind(url.searchParams.get('type'));
        return send(
          res,
          200,
          snapshotDump(
            this.deps.store,
            this.deps.streams(),
            url.searchParams.get('node'),
            kind,
            parsePreviewMode(url.searchParams.get('mode')),
          ),
        );
      }
      case '/v1/events':
        return this.events(req, res, url);
      case '/v1/mesh':
        return send(
          res,
          200,
          meshDump(
            this.deps.store.mesh,
            this.deps.store.snapshot?.version ?? '',
            url.searchParams.get('service'),
          ),
        );
      case '/v1/mesh/calls':
        return send(res, 200, callGraph(this.deps.store.mesh));
      case '/v1/config/errors':
        return send(
          res,
          200,
          this.deps.configErrors?.() ?? configErrors(this.deps.store.mesh, undefined),
        );
      case '/v1/route/explain':
        return send(res, 200, routeExplain(this.deps.store.mesh, url.searchParams));
      default:
        return send(res, 404, { error: `no such endpoint ${url.pathname}`, endpoints: ENDPOINTS });
    }
  }

  private activity(): RecentActivity {
    if (!this.deps.activity) throw new DumpError(404, 'this server keeps no recent activity');
    return this.deps.activity;
  }

  /**
   * Whether the request carries a token allowed to do this; if not, the refusal is sent
   * (401/403, JSON naming the reason). A granted request ends if its token is revoked while it
   * runs (an event stream).
   */
  private async authorized(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const auth = this.deps.auth;
    if (!auth) return true;
    const result = await auth.authorize(req.headers.authorization, req.method);
    if (!result.ok) {
      this.deps.authFailed?.(result.reason);
      const error = result.status === 401 ? 'invalid_token' : 'insufficient_scope';
      res.setHeader(
        'www-authenticate',
        req.headers.authorization === undefined
          ? 'Bearer realm="lucid-mesh"'
          : `Bearer realm="lucid-mesh", error="${error}"`,
      );
      send(res, result.status, { error: result.message, reason: result.reason });
      return false;
    }
    const stop = auth.onRevoked(result.id, () => res.destroy());
    res.once('close', stop);
    return true;
  }

  /** Server-Sent Events (events.ts: bounded per client, at most --max-event-clients). */
  private events(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const type = parseKind(url.searchParams.get('type'));
    const node = url.searchParams.get('node') || undefined;
    this.deps.events.serveEvents(req, res, { node, type });
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(`${JSON.stringify(body, null, 2)}\n`);
}
