// The shared CA state in Consul KV: compare-and-set with `?cas=<ModifyIndex>`, watches as
// blocking queries on one key, and leadership as a Consul lock (a session with a TTL, renewed,
// and `?acquire=` on the leader key; lock-delay 0 so a successor takes over at once).
// Plain HTTP requests to Consul's documented API: the `consul` package's reads are wrapped
// for the catalog in ../../sources/consul/client.ts, but its writes hide the cas/acquire
// answers we need.
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { ConsulConnection } from '../../sources/consul/client.js';
import type { KvBackend, KvEntry, Leadership } from './kv-backend.js';
import { Campaigner } from './leadership.js';
import { LiveKeys } from './live-keys.js';

interface Response {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

export interface ConsulKvOptions {
  /** Longest a watch's blocking query waits, ms. Default 30 s. */
  readonly waitMs?: number;
  /** Leader session TTL, s (Consul's minimum is 10). Default 10. */
  readonly sessionTtlSeconds?: number;
}

export class ConsulKv implements KvBackend {
  readonly location: string;
  private readonly address: string;
  private readonly agent: HttpAgent | HttpsAgent;
  private readonly controllers = new Set<AbortController>();
  private closed = false;
  /** Keys held by this replica's liveness session (behavior delete): putLive. */
  private readonly live = new LiveKeys((key, value) => this.putUnderSession(key, value));
  private liveSession: Promise<string> | undefined;
  private liveTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly connection: ConsulConnection,
    prefix: string,
    private readonly opts: ConsulKvOptions = {},
  ) {
    const host = connection.host.includes(':') ? `[${connection.host}]` : connection.host;
    this.address = `${connection.secure ? 'https' : 'http'}://${host}:${connection.port}`;
    this.location = `consul ${this.address} kv ${prefix}`;
    const tls = connection.tls;
    this.agent = connection.secure
      ? new HttpsAgent({
          keepAlive: true,
          ...(tls?.ca !== undefined ? { ca: tls.ca } : {}),
          ...(tls?.cert !== undefined ? { cert: tls.cert, key: tls.key } : {}),
          ...(tls?.serverName !== undefined ? { servername: tls.serverName } : {}),
          rejectUnauthorized: tls?.rejectUnauthorized ?? true,
        })
      : new HttpAgent({ keepAlive: true });
  }

  async get(key: string): Promise<KvEntry | undefined> {
    const { entry } = await this.read(key, {});
    return entry;
  }

  async putIf(key: string, value: string, version: string | undefined): Promise<boolean> {
    const res = await this.send('PUT', kvPath(key), { cas: version ?? '0' }, value);
    return res.body.trim() === 'true';
  }

  async put(key: string, value: string): Promise<void> {
    await this.send('PUT', kvPath(key), {}, value);
  }

  async delete(key: string): Promise<void> {
    await this.send('DELETE', kvPath(key), {});
  }

  putLive(key: string, value: string): Promise<void> {
    // Renewed like the leader's session; Consul ends it (deleting the keys) 1-2 TTLs after
    // the last renewal.
    this.liveTimer ??= setInterval(
      () => void this.renewLiveSession(),
      ((this.opts.sessionTtlSeconds ?? 10) * 1000) / 3,
    );
    this.liveTimer.unref();
    return this.live.put(key, value);
  }

  /** `?acquire=` under the liveness session: Consul deletes the key when the session ends. */
  private async putUnderSession(key: string, value: string): Promise<boolean> {
    this.liveSession ??= this.createSession('replica', 'delete');
    const session = await this.liveSession.catch((err: unknown) => {
      this.liveSession = undefined;
      throw err;
    });
    const res = await this.send('PUT', kvPath(key), { acquire: session }, value);
    return res.body.trim() === 'true';
  }

  private async renewLiveSession(): Promise<void> {
    const current = this.liveSession;
    if (!current || this.closed) return;
    try {
      const session = await current;
      const res = await this.send('PUT', `/v1/session/renew/${session}`, {}, undefined, [404]);
      if (res.status === 404 && this.liveSession === current) {
        // Consul ended it (the store was out of reach past the TTL): its keys are gone.
        this.liveSession = undefined;
        this.live.invalidate();
      }
    } catch {
      // Unreachable: try again at the next tick; a session Consul ended answers 404 then.
    }
  }

  private async createSession(what: string, behavior: 'release' | 'delete'): Promise<string> {
    const created = await this.send(
      'PUT',
      '/v1/session/create',
      {},
      JSON.stringify({
        Name: `lucid-mesh ${what}`,
        TTL: `${this.opts.sessionTtlSeconds ?? 10}s`,
        LockDelay: '0s',
        Behavior: behavior,
      }),
    );
    return (JSON.parse(created.body) as { ID: string }).ID;
  }

  async list(prefix: string): Promise<Array<{ key: string; value: string }>> {
    const res = await this.send('GET', kvPath(prefix), { recurse: '' }, undefined, [404]);
    if (res.status === 404) return [];
    return kvEntries(res.body, `GET /v1/kv/${prefix}?recurse`).map((e) => ({
      key: e.Key,
      value: decodeValue(e.Value),
    }));
  }

  watch(key: string, listener: () => void): () => void {
    const controller = new AbortController();
    this.controllers.add(controller);
    const waitMs = this.opts.waitMs ?? 30_000;
    void (async () => {
      let index = 0;
      let failures = 0;
      while (!controller.signal.aborted) {
        try {
          // After a failure, ask without blocking: the answer says at once whether Consul is back.
          const { index: next } = await this.read(
            key,
            failures === 0 && index > 0 ? { index, waitMs } : {},
            controller.signal,
          );
          failures = 0;
          // Consul may answer early without a change; an index going backwards means a reset.
          if (index !== 0 && next !== index) listener();
          index = next < index ? 0 : next;
        } catch {
          if (controller.signal.aborted) return;
          failures++;
          await sleep(Math.min(5_000, 250 * 2 ** Math.min(failures, 5)), controller.signal);
        }
      }
    })();
    return () => {
      controller.abort();
      this.controllers.delete(controller);
    };
  }

  campaign(key: string, id: string): Leadership {
    const ttl = this.opts.sessionTtlSeconds ?? 10;
    let session: string | undefined;
    let sessionRenewedAt = 0;
    return new Campaigner({
      // Renewing the session is the heartbeat; the lock key's Session says who holds it.
      attempt: async () => {
        if (session) {
          const renewed = await this.send(
            'PUT',
            `/v1/session/renew/${session}`,
            {},
            undefined,
            [404],
          );
          if (renewed.status === 404) session = undefined;
          else sessionRenewedAt = Date.now();
        }
        if (!session) {
          session = await this.createSession(`leader ${id}`, 'release');
          sessionRenewedAt = Date.now();
        }
        const acquired = await this.send('PUT', kvPath(key), { acquire: session }, id);
        return acquired.body.trim() === 'true';
      },
      // Without a renewal for a whole TTL Consul has (or will have) released the lock.
      stillValid: () => Date.now() - sessionRenewedAt < ttl * 1000,
      intervalMs: (ttl * 1000) / 3,
      resign: async () => {
        if (!session) return;
        await this.send('PUT', kvPath(key), { release: session }).catch(() => undefined);
        await this.send('PUT', `/v1/session/destroy/${session}`, {}).catch(() => undefined);
        session = undefined;
      },
      wake: (listener) => this.watch(key, listener),
    });
  }

  async close(): Promise<void> {
    if (this.liveTimer) clearInterval(this.liveTimer);
    this.live.stop();
    const live = this.liveSession;
    this.liveSession = undefined;
    // Ending the session deletes its keys at once (behavior delete).
    if (live) {
      await live
        .then((id) => this.send('PUT', `/v1/session/destroy/${id}`, {}))
        .catch(() => undefined);
    }
    this.closed = true;
    for (const controller of this.controllers) controller.abort();
    this.controllers.clear();
    this.agent.destroy();
  }

  private async read(
    key: string,
    q: { index?: number; waitMs?: number },
    signal?: AbortSignal,
  ): Promise<{ entry: KvEntry | undefined; index: number }> {
    const query: Record<string, string> = {};
    if (q.index) {
      query.index = String(q.index);
      query.wait = `${Math.round((q.waitMs ?? 30_000) / 1000)}s`;
    }
    const timeoutMs = q.index ? (q.waitMs ?? 30_000) * 1.1 + 5_000 : 10_000;
    const res = await this.send('GET', kvPath(key), query, undefined, [404], signal, timeoutMs);
    const raw = res.headers['x-consul-index'];
    const index = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : 0;
    if (res.status === 404) return { entry: undefined, index };
    const [first] = kvEntries(res.body, `GET /v1/kv/${key}`);
    if (!first) return { entry: undefined, index };
    return {
      entry: { value: decodeValue(first.Value), version: String(first.ModifyIndex) },
      index,
    };
  }

  private send(
    method: string,
    path: string,
    query: Record<string, string>,
    body?: string,
    okStatuses: readonly number[] = [],
    signal?: AbortSignal,
    timeoutMs = 10_000,
  ): Promise<Response> {
    if (this.closed) return Promise.reject(new Error(`${this.location}: closed`));
    const params = new URLSearchParams(query);
    if (this.connection.datacenter !== undefined) params.set('dc', this.connection.datacenter);
    const qs = params.toString().replace(/=(&|$)/g, '$1');
    const url = new URL(`${path}${qs ? `?${qs}` : ''}`, this.address);
    const what = `${method} ${path}`;
    const send = this.connection.secure ? httpsRequest : httpRequest;
    return new Promise<Response>((resolve, reject) => {
      const req = send(
        url,
        {
          method,
          agent: this.agent,
          signal,
          timeout: timeoutMs,
          headers: {
            ...(this.connection.token !== undefined
              ? { 'x-consul-token': this.connection.token }
              : {}),
            ...(body !== undefined ? { 'content-type': 'application/octet-stream' } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            if ((status >= 200 && status < 300) || okStatuses.includes(status)) {
              resolve({ status, headers: res.headers, body: text });
            } else {
              const hint =
                status === 403
                  ? ' (the ACL token needs key_prefix write on the state prefix and session write; see docs/ha.md)'
                  : '';
              reject(
                new Error(
                  `Consul ${this.address}: ${what}: HTTP ${status}${hint}: ${text.trim().slice(0, 200)}`,
                ),
              );
            }
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('no response in time')));
      req.on('error', (err) =>
        reject(new Error(`Consul ${this.address}: ${what}: ${(err as Error).message}`)),
      );
      req.end(body);
    });
  }
}

interface RawKvEntry {
  Key: string;
  Value: string | null;
  ModifyIndex: number;
}

function kvPath(key: string): string {
  return `/v1/kv/${key.split('/').map(encodeURIComponent).join('/')}`;
}

function kvEntries(body: string, what: string): RawKvEntry[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new Error(`${what}: Consul answered something that is not JSON`);
  }
  if (!Array.isArray(parsed))
    throw new Error(`${what}: Consul answered ${typeof parsed}, not a list`);
  return parsed as RawKvEntry[];
}

function decodeValue(value: string | null): string {
  return value === null ? '' : Buffer.from(value, 'base64').toString('utf8');
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}
