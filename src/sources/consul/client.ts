// A thin wrapper around the `consul` npm package: the few reads the source and the bootstrap
// command need, with blocking-query support (index + wait in, X-Consul-Index out),
// cancellation, timeouts, and errors that say which Consul, which request and what to do.
//
// The package does blocking queries properly: `index`, `wait` and `timeout` are passed
// through, the response headers are available with `ctx.includeResponse`, and an EventEmitter
// `ctx` aborts a request on `cancel`. We give it our own http(s).Agent so that the number of
// TCP connections to Consul is capped (`maxSockets`) and TLS follows CONSUL_CACERT & co.
import { EventEmitter } from 'node:events';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { createRequire } from 'node:module';
import type Consul from 'consul';

export interface ConsulTls {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly serverName?: string;
  /** false only for testing (CONSUL_HTTP_SSL_VERIFY=false). */
  readonly rejectUnauthorized: boolean;
}

export interface ConsulConnection {
  readonly secure: boolean;
  readonly host: string;
  readonly port: number;
  readonly token?: string;
  readonly datacenter?: string;
  readonly tls?: ConsulTls;
  /** `?stale`: any server may answer (default: the leader). */
  readonly stale?: boolean;
}

/** One Consul health entry (`/v1/health/service/<name>`), the fields we read. */
export interface ConsulHealthEntry {
  readonly Node: {
    readonly ID?: string;
    readonly Node: string;
    readonly Address: string;
    readonly Datacenter?: string;
    /** Node metadata (`node_meta`): `region` and `zone` locate the node's instances. */
    readonly Meta?: Readonly<Record<string, string>> | null;
  };
  readonly Service: ConsulService;
  readonly Checks?: readonly ConsulCheck[];
}

export interface ConsulService {
  readonly ID: string;
  readonly Service: string;
  readonly Kind?: string;
  readonly Tags?: readonly string[] | null;
  readonly Address?: string;
  readonly Meta?: Readonly<Record<string, string>> | null;
  readonly Port: number;
  readonly Proxy?: ConsulProxy | null;
  /** lan / wan addresses (mesh gateways: where their own and other datacenters reach them). */
  readonly TaggedAddresses?: Readonly<
    Record<string, { readonly Address?: string; readonly Port?: number } | undefined>
  > | null;
}

export interface ConsulProxy {
  readonly DestinationServiceName?: string;
  readonly DestinationServiceID?: string;
  readonly LocalServiceAddress?: string;
  readonly LocalServicePort?: number;
  readonly Config?: Readonly<Record<string, unknown>> | null;
}

export interface ConsulCheck {
  readonly CheckID: string;
  readonly Name?: string;
  readonly Status: string;
  /** The last run's output; "" until the check first runs (also after an agent restart). */
  readonly Output?: string;
  /** ttl, tcp, http, grpc, alias, script, ... (Consul ≥ 1.7). */
  readonly Type?: string;
  readonly ServiceID?: string;
  readonly ServiceName?: string;
}

/** What `/v1/agent/services` returns per service (the fields the bootstrap reads). */
export interface ConsulAgentService {
  readonly ID: string;
  readonly Service: string;
  readonly Kind?: string;
  readonly Port: number;
  readonly Address?: string;
  readonly Meta?: Readonly<Record<string, string>> | null;
  readonly Proxy?: ConsulProxy | null;
}

export interface BlockingQuery {
  /** Last X-Consul-Index seen; 0/undefined = do not block. */
  readonly index?: number;
  /** How long Consul may hold the request, ms (sent as `wait`). */
  readonly waitMs?: number;
  readonly signal?: AbortSignal;
  /**
   * `?dc=`: read another datacenter through this agent (Consul forwards the request across WAN
   * federation). Default: the connection's datacenter, else the agent's own.
   */
  readonly dc?: string;
}

export interface QueryResult<T> {
  readonly body: T;
  /** X-Consul-Index of the response (0 when absent). */
  readonly index: number;
}

export type ConsulErrorKind =
  | 'unreachable'
  | 'timeout'
  | 'forbidden'
  | 'too-many-connections'
  | 'no-leader'
  | 'not-found'
  | 'http'
  | 'aborted'
  | 'invalid-response';

/** A failed Consul request; the message names the Consul address and the request. */
export class ConsulRequestError extends Error {
  constructor(
    message: string,
    readonly kind: ConsulErrorKind,
    readonly statusCode?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'ConsulRequestError';
  }
}

/** Consul adds up to wait/16 of jitter to a blocking query; allow that plus a margin. */
export function requestTimeoutMs(waitMs: number | undefined): number {
  return waitMs ? waitMs + Math.ceil(waitMs / 16) + 10_000 : 15_000;
}

export class ConsulClient {
  /** "http://127.0.0.1:8500", for messages. */
  readonly address: string;
  private readonly consul: Consul;
  private readonly agent: HttpAgent | HttpsAgent;
  private inFlightCount = 0;
  private requestCount = 0;

  constructor(
    readonly connection: ConsulConnection,
    opts: { maxConnections?: number } = {},
  ) {
    const hostPart = connection.host.includes(':') ? `[${connection.host}]` : connection.host;
    this.address = `${connection.secure ? 'https' : 'http'}://${hostPart}:${connection.port}`;
    // maxSockets caps the TCP connections to this Consul: Consul refuses a client IP beyond
    // http_max_conns_per_client. Requests above the cap would queue inside the agent, which the
    // source never lets happen (it schedules at most maxConnections requests at a time).
    const agentOpts = {
      keepAlive: true,
      maxSockets: opts.maxConnections ?? Infinity,
      maxTotalSockets: opts.maxConnections ?? Infinity,
      maxFreeSockets: 16,
      timeout: 0,
    };
    const tls = connection.tls;
    this.agent = connection.secure
      ? new HttpsAgent({
          ...agentOpts,
          ...(tls?.ca !== undefined ? { ca: tls.ca } : {}),
          ...(tls?.cert !== undefined ? { cert: tls.cert, key: tls.key } : {}),
          ...(tls?.serverName !== undefined ? { servername: tls.serverName } : {}),
          rejectUnauthorized: tls?.rejectUnauthorized ?? true,
        })
      : new HttpAgent(agentOpts);
    // Loaded on first use: a control plane that never talks to Consul never loads its client.
    const ConsulClass = createRequire(import.meta.url)('consul') as typeof Consul;
    this.consul = new ConsulClass({
      host: hostPart,
      port: connection.port,
      secure: connection.secure,
      agent: this.agent,
      defaults: {
        ...(connection.token !== undefined ? { token: connection.token } : {}),
        ...(connection.datacenter !== undefined ? { dc: connection.datacenter } : {}),
      },
    });
  }

  /** Requests sent so far. */
  get requests(): number {
    return this.requestCount;
  }

  /** Requests currently waiting for Consul. */
  get inFlight(): number {
    return this.inFlightCount;
  }

  /** `/v1/catalog/services`: service name -> tags. */
  async servicesList(q: BlockingQuery = {}): Promise<QueryResult<Record<string, string[]>>> {
    const what = 'GET /v1/catalog/services';
    const r = await this.query<Record<string, string[]>>(what, q, (o) =>
      this.consul.catalog.service.list(o),
    );
    // Consul answers an object; anything else must fail the request (and keep the last good
    // catalog), not read as "no services" (found by fuzzing).
    if (r.body === null || typeof r.body !== 'object' || Array.isArray(r.body)) {
      throw this.shapeError(what, 'an object of service names', r.body);
    }
    return r;
  }

  /** `/v1/health/service/<name>`: every instance of `name` with its node and checks. */
  async healthService(
    name: string,
    q: BlockingQuery = {},
  ): Promise<QueryResult<ConsulHealthEntry[]>> {
    const what = `GET /v1/health/service/${name}`;
    const r = await this.query<ConsulHealthEntry[]>(what, q, (o) =>
      this.consul.health.service({ ...o, service: name }),
    );
    if (!Array.isArray(r.body)) throw this.shapeError(what, 'a list of health entries', r.body);
    return r;
  }

  private shapeError(what: string, expected: string, body: unknown): ConsulRequestError {
    const got = body === null ? 'null' : Array.isArray(body) ? 'a list' : typeof body;
    return new ConsulRequestError(
      `Consul ${this.address}: ${what}: expected ${expected}, got ${got}`,
      'invalid-response',
    );
  }

  /**
   * `/v1/health/state/any` filtered to nothing: only its X-Consul-Index matters, the index of
   * the checks table, which moves on every check change anywhere in the datacenter.
   */
  checksIndex(q: BlockingQuery = {}): Promise<QueryResult<unknown[]>> {
    return this.query('GET /v1/health/state/any', q, (o) =>
      this.consul.health.state({ ...o, state: 'any', filter: 'CheckID == ""' }),
    );
  }

  /** `/v1/kv/<key>`: the entry (Value decoded to text), or undefined when there is none. */
  kvGet(
    key: string,
    q: BlockingQuery = {},
  ): Promise<QueryResult<{ Value?: string | null } | undefined>> {
    return this.query(`GET /v1/kv/${key}`, q, (o) => this.consul.kv.get({ ...o, key }));
  }

  /**
   * `/v1/config/<kind>`: every config entry of one kind (service-router, ...), as Consul stores
   * them (PascalCase JSON, with its CreateIndex/ModifyIndex bookkeeping).
   */
  configEntries(kind: string, q: BlockingQuery = {}): Promise<QueryResult<unknown[]>> {
    return this.query(`GET /v1/config/${kind}`, q, (o) =>
      this.rawGet(`/config/${encodeURIComponent(kind)}`, o),
    );
  }

  /** `/v1/agent/connect/ca/roots`: the Connect CA's trust domain and roots (blocking). */
  connectRoots(q: BlockingQuery = {}): Promise<QueryResult<unknown>> {
    return this.query('GET /v1/agent/connect/ca/roots', q, (o) =>
      this.rawGet('/agent/connect/ca/roots', o),
    );
  }

  /**
   * `/v1/agent/connect/ca/leaf/<service>`: the agent's current leaf for `service` (blocking:
   * answers when the agent renews it). Needs `service:write` on the service with ACLs on.
   */
  connectLeaf(service: string, q: BlockingQuery = {}): Promise<QueryResult<unknown>> {
    return this.query(`GET /v1/agent/connect/ca/leaf/${service}`, q, (o) =>
      this.rawGet(`/agent/connect/ca/leaf/${encodeURIComponent(service)}`, o),
    );
  }

  /** `/v1/agent/services?filter=ID == "<id>"`: one service registered with this agent. */
  async agentService(id: string): Promise<ConsulAgentService | undefined> {
    const { body } = await this.query<Record<string, ConsulAgentService>>(
      `GET /v1/agent/services (ID ${JSON.stringify(id)})`,
      {},
      (o) => this.consul.agent.service.list({ ...o, filter: `ID == ${JSON.stringify(id)}` }),
    );
    return Object.values(body ?? {}).find((s) => s.ID === id);
  }

  /** `/v1/agent/services?filter=Kind == "connect-proxy"`: the proxies registered with this agent. */
  async agentProxies(): Promise<ConsulAgentService[]> {
    const { body } = await this.query<Record<string, ConsulAgentService>>(
      'GET /v1/agent/services (Kind "connect-proxy")',
      {},
      (o) => this.consul.agent.service.list({ ...o, filter: 'Kind == "connect-proxy"' }),
    );
    return Object.values(body ?? {});
  }

  /**
   * `/v1/agent/self`: the agent's own datacenter (`Config.Datacenter`). Needs `agent:read`
   * when ACLs are on.
   */
  async agentDatacenter(q: BlockingQuery = {}): Promise<string> {
    const { body } = await this.query<{ Config?: { Datacenter?: unknown } }>(
      'GET /v1/agent/self',
      { ...(q.signal ? { signal: q.signal } : {}) },
      (o) => this.consul.agent.self(o),
    );
    const dc = body?.Config?.Datacenter;
    if (typeof dc !== 'string' || dc === '') {
      throw new ConsulRequestError(
        `Consul ${this.address}: GET /v1/agent/self: no Config.Datacenter in the answer`,
        'invalid-response',
      );
    }
    return dc;
  }

  /** `/v1/status/leader`: "" while there is no leader. */
  async leader(): Promise<string> {
    const { body } = await this.query<string>('GET /v1/status/leader', {}, (o) =>
      this.consul.status.leader(o),
    );
    return typeof body === 'string' ? body : '';
  }

  /**
   * A GET the `consul` package has no method for, sent through its request machinery (same
   * agent, codecs, cancellation, timeouts and errors as the package's own reads), with the
   * options `query` builds plus the connection's token and datacenter.
   */
  private rawGet(path: string, o: Record<string, unknown>): Promise<unknown> {
    type Request = { err?: Error; res?: { body?: unknown } };
    type Next = (stop: boolean, err?: Error, result?: unknown) => void;
    const papi = this.consul as unknown as {
      _get(
        req: Record<string, unknown>,
        handle: (r: Request, next: Next) => void,
      ): Promise<unknown>;
    };
    const query: Record<string, string> = {};
    if (this.connection.datacenter !== undefined) query.dc = this.connection.datacenter;
    if (o.stale) query.stale = '1';
    if (o.index !== undefined) query.index = String(o.index);
    if (o.wait !== undefined) query.wait = String(o.wait);
    return papi._get(
      {
        name: 'config.list',
        path,
        query,
        headers:
          this.connection.token !== undefined ? { 'x-consul-token': this.connection.token } : {},
        ctx: o.ctx,
        timeout: o.timeout,
      },
      (request, next) => {
        if (request.err) {
          next(false, request.err);
          return;
        }
        next(false, undefined, [request.res, request.res?.body]);
      },
    );
  }

  /** Closes idle keep-alive connections; in-flight requests should be aborted first. */
  destroy(): void {
    this.agent.destroy();
  }

  private async query<T>(
    what: string,
    q: BlockingQuery,
    call: (opts: Record<string, unknown>) => Promise<unknown>,
  ): Promise<QueryResult<T>> {
    if (q.signal?.aborted) throw new ConsulRequestError(`${what}: aborted`, 'aborted');
    const ctx = Object.assign(new EventEmitter(), { includeResponse: true });
    const onAbort = (): void => void ctx.emit('cancel');
    q.signal?.addEventListener('abort', onAbort, { once: true });
    const blocking = q.index !== undefined && q.index > 0;
    const opts: Record<string, unknown> = {
      ctx,
      timeout: requestTimeoutMs(blocking ? q.waitMs : undefined),
      ...(blocking
        ? { index: String(q.index), wait: `${Math.max(1, Math.round(q.waitMs ?? 60_000))}ms` }
        : {}),
      ...(this.connection.stale ? { stale: true } : {}),
      ...(q.dc !== undefined ? { dc: q.dc } : {}),
    };
    this.inFlightCount++;
    this.requestCount++;
    try {
      const result = (await call(opts)) as [{ headers?: Record<string, unknown> }, T] | undefined;
      const [res, body] = Array.isArray(result) ? result : [undefined, undefined];
      const raw = res?.headers?.['x-consul-index'];
      const index = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : 0;
      return { body: body as T, index };
    } catch (err) {
      throw this.describe(what, err, q.signal);
    } finally {
      this.inFlightCount--;
      q.signal?.removeEventListener('abort', onAbort);
    }
  }

  private describe(what: string, err: unknown, signal?: AbortSignal): ConsulRequestError {
    const e = err as {
      message?: string;
      code?: string;
      isAbort?: boolean;
      isTimeout?: boolean;
      isResponse?: boolean;
      isCodec?: boolean;
      response?: { statusCode?: number; body?: unknown };
    };
    const where = `Consul ${this.address}: ${what}`;
    const cause = err instanceof Error ? { cause: err } : undefined;
    if (signal?.aborted || e.isAbort) return new ConsulRequestError(`${where}: aborted`, 'aborted');
    if (e.isTimeout) {
      return new ConsulRequestError(
        `${where}: no response in time (${e.message ?? ''})`,
        'timeout',
        undefined,
        cause,
      );
    }
    if (e.isResponse && e.response) {
      const status = e.response.statusCode ?? 0;
      const body = bodyText(e.response.body);
      const detail = body ? `: ${body}` : '';
      if (status === 429) {
        return new ConsulRequestError(
          `${where}: HTTP 429, Consul refuses more connections from this client ` +
            `(http_max_conns_per_client, default 200, counts every connection from this IP); ` +
            `lower --consul-max-connections or raise the limit${detail}`,
          'too-many-connections',
          status,
          cause,
        );
      }
      if (status === 403) {
        return new ConsulRequestError(
          `${where}: HTTP 403, the ACL token (--consul-token / CONSUL_HTTP_TOKEN) lacks permission${detail}`,
          'forbidden',
          status,
          cause,
        );
      }
      if (status === 404)
        return new ConsulRequestError(`${where}: HTTP 404${detail}`, 'not-found', status, cause);
      if (/no (cluster )?leader/i.test(body)) {
        return new ConsulRequestError(
          `${where}: HTTP ${status}, no Consul leader yet${detail}`,
          'no-leader',
          status,
          cause,
        );
      }
      return new ConsulRequestError(`${where}: HTTP ${status}${detail}`, 'http', status, cause);
    }
    if (e.isCodec) {
      return new ConsulRequestError(
        `${where}: unreadable response: ${e.message}`,
        'invalid-response',
        undefined,
        cause,
      );
    }
    const code = e.code ? ` (${e.code})` : '';
    const message = (e.message ?? String(err)).replace(/^consul: [\w.]+: /, '');
    return new ConsulRequestError(
      `${where}: ${message}${message.includes(e.code ?? '\0') ? '' : code}`,
      'unreachable',
      undefined,
      cause,
    );
  }
}

function bodyText(body: unknown): string {
  let text = '';
  if (typeof body === 'string') text = body;
  else if (Buffer.isBuffer(body)) text = body.toString('utf8');
  else if (body !== undefined && body !== null) text = JSON.stringify(body) ?? '';
  text = text.trim();
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}
