// A programmable upstream app for the traffic-management tests, and clients that call through a
// sidecar with any path, method and headers. The app answers JSON `{ app, method, path, headers }`
// with `x-app: <name>`; it can fail every Nth request with a status, answer late, and it records
// every request it sees (for PrefixRewrite, header edits and mirroring) and how many it was
// serving at once (for circuit breakers).
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import { listenOnLoopback } from './http-app.js';
import type { EnvoyHandle } from './envoy.js';
import type { Sidecar } from './mesh.js';

export interface TrafficAppBehaviour {
  /**
   * Fail every `every`-th request (counting from the first one the app sees since this was
   * set) with `status`: `every: 2` fails the 2nd, 4th, ... (half), `every: 1` fails all.
   */
  fail?: { readonly status: number; readonly every: number };
  /** Answer this many ms after the request arrived. */
  delayMs?: number;
}

export interface RecordedRequest {
  readonly method: string;
  /** Path and query as the app received them. */
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  /** Date.now() on arrival. */
  readonly at: number;
}

export interface TrafficApp {
  readonly name: string;
  readonly port: number;
  /** Requests received so far (answered or not). */
  readonly hits: number;
  /** Every request received, in arrival order. */
  readonly log: readonly RecordedRequest[];
  /** Requests being served right now, and the most ever served at once (see resetStats). */
  readonly inFlight: number;
  readonly maxInFlight: number;
  /** Replaces the behaviour (fail counting restarts). */
  behave(behaviour: TrafficAppBehaviour): void;
  /** Clears the log and maxInFlight (hits keep counting). */
  resetStats(): void;
  close(): Promise<void>;
}

export interface AppReply {
  readonly app: string;
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
}

export async function startTrafficApp(
  name: string,
  behaviour: TrafficAppBehaviour = {},
): Promise<TrafficApp> {
  let current = { ...behaviour };
  let counted = 0;
  let hits = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  let log: RecordedRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();

  const server: Server = createServer((req, res) => {
    hits++;
    counted++;
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    const path = req.url ?? '';
    log.push({ method: req.method ?? '', path, headers: req.headers, at: Date.now() });
    const fail = current.fail && counted % current.fail.every === 0 ? current.fail.status : 0;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      inFlight--;
    };
    // The client (Envoy, on a timeout) may give up first: that ends the request too.
    res.on('close', finish);
    const answer = (): void => {
      const reply: AppReply = { app: name, method: req.method ?? '', path, headers: req.headers };
      const body = JSON.stringify(fail ? { ...reply, error: `failing on purpose` } : reply);
      if (!res.destroyed) {
        res.writeHead(fail || 200, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'x-app': name,
        });
        res.end(body);
      }
      finish();
    };
    req.resume();
    req.on('end', () => {
      const delay = current.delayMs ?? 0;
      if (delay <= 0) return answer();
      const timer = setTimeout(() => {
        timers.delete(timer);
        answer();
      }, delay);
      timers.add(timer);
    });
  });
  // Pending delayed answers are dropped at close.
  const listening = await listenOnLoopback(server, 0, () => {
    for (const t of timers) clearTimeout(t);
    timers.clear();
  });
  return {
    name,
    port: listening.port,
    get hits() {
      return hits;
    },
    get log() {
      return log;
    },
    get inFlight() {
      return inFlight;
    },
    get maxInFlight() {
      return maxInFlight;
    },
    behave(next) {
      current = { ...next };
      counted = 0;
    },
    resetStats() {
      log = [];
      maxInFlight = inFlight;
    },
    close: listening.close,
  };
}

export interface CallOptions {
  /** Default "/". */
  readonly path?: string;
  /** Default GET. */
  readonly method?: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** Default 5 s. */
  readonly timeoutMs?: number;
}

export interface CallResult {
  readonly status: number;
  readonly body: string;
  readonly headers: IncomingHttpHeaders;
  /** The answering app (its x-app header); undefined when Envoy answered itself. */
  readonly app?: string;
  /** From sending the request to the end of the response. */
  readonly elapsedMs: number;
}

/**
 * One request through `sidecar`'s outbound listener to `host` (the service name, as an app in
 * the mesh would send it), on a fresh connection. Resolves for any HTTP status; rejects on
 * connection errors or when no complete response arrives within the timeout.
 */
export function callThrough(
  sidecar: Sidecar,
  host: string,
  opts: CallOptions = {},
): Promise<CallResult> {
  const path = opts.path ?? '/';
  const method = opts.method ?? 'GET';
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const what = `${method} http://${host}${path} via 127.0.0.1:${sidecar.outboundPort}`;
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let settled = false;
    const finish = (err: Error | undefined, result?: CallResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(result!);
    };
    const req = request(
      {
        host: '127.0.0.1',
        port: sidecar.outboundPort,
        path,
        method,
        headers: { ...opts.headers, host },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const app = res.headers['x-app'];
          finish(undefined, {
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
            headers: res.headers,
            ...(typeof app === 'string' ? { app } : {}),
            elapsedMs: performance.now() - started,
          });
        });
        res.on('error', (e) => finish(new Error(`${what}: response failed: ${e.message}`)));
      },
    );
    const timer = setTimeout(() => {
      finish(new Error(`${what}: no response within ${timeoutMs}ms`));
      req.destroy();
    }, timeoutMs);
    req.on('error', (e) => finish(new Error(`${what}: ${e.message}`)));
    req.end();
  });
}

export interface Tally {
  readonly total: number;
  /** Responses per answering app; Envoy's own answers (no x-app) count under "(envoy)". */
  readonly apps: Readonly<Record<string, number>>;
  /** Responses per HTTP status. */
  readonly statuses: Readonly<Record<number, number>>;
  /** Requests that got no HTTP response (connection errors, timeouts). */
  readonly errors: readonly string[];
  /** Requests whose status was not 2xx, or that got no response. */
  readonly failed: number;
  /** Elapsed time of each request, in completion order. */
  readonly elapsedMs: readonly number[];
}

export const ENVOY = '(envoy)';

/**
 * `n` requests through `sidecar` to `host`, at most `concurrency` (default 1) at a time.
 * Never rejects: what went wrong is in the tally.
 */
export async function callMany(
  sidecar: Sidecar,
  host: string,
  n: number,
  opts: CallOptions & { readonly concurrency?: number } = {},
): Promise<Tally> {
  const apps: Record<string, number> = {};
  const statuses: Record<number, number> = {};
  const errors: string[] = [];
  const elapsedMs: number[] = [];
  let failed = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      next++;
      try {
        const res = await callThrough(sidecar, host, opts);
        const app = res.app ?? ENVOY;
        apps[app] = (apps[app] ?? 0) + 1;
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
        if (res.status < 200 || res.status > 299) failed++;
        elapsedMs.push(res.elapsedMs);
      } catch (err) {
        errors.push((err as Error).message);
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 1) }, worker));
  return { total: n, apps, statuses, errors, failed, elapsedMs };
}

// ---- what Envoy has applied (config_dump, /clusters) ----------------------------------------

/** An Envoy route as config_dump prints it (snake_case JSON). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type DumpedRoute = Record<string, any>;

/** The routes of one virtual host of the sidecar's RDS route configurations; [] if none. */
export async function envoyRoutes(envoy: EnvoyHandle, virtualHost: string): Promise<DumpedRoute[]> {
  const dump = (await envoy.configDump()) as { configs: Array<Record<string, unknown>> };
  for (const section of dump.configs) {
    const configs = (section.dynamic_route_configs ?? []) as Array<{
      route_config?: { virtual_hosts?: Array<{ name: string; routes?: DumpedRoute[] }> };
    }>;
    for (const rc of configs) {
      // Over VHDS (delta) a host is named `outbound/<service>` (translate/vhds.ts).
      const host = rc.route_config?.virtual_hosts?.find(
        (h) => h.name === virtualHost || h.name === `outbound/${virtualHost}`,
      );
      if (host) return host.routes ?? [];
    }
  }
  return [];
}

/** One active dynamic cluster as config_dump prints it; undefined if Envoy does not have it. */
export async function envoyCluster(
  envoy: EnvoyHandle,
  name: string,
): Promise<DumpedRoute | undefined> {
  const dump = (await envoy.configDump()) as { configs: Array<Record<string, unknown>> };
  for (const section of dump.configs) {
    const clusters = (section.dynamic_active_clusters ?? []) as Array<{ cluster?: DumpedRoute }>;
    const found = clusters.find((c) => c.cluster?.name === name);
    if (found) return found.cluster;
  }
  return undefined;
}

/** `health_flags` of a host of a cluster in Envoy's /clusters ("healthy", "/failed_outlier_check", ...). */
export async function hostHealthFlags(
  envoy: EnvoyHandle,
  cluster: string,
  host: string,
): Promise<string | undefined> {
  for (const line of (await envoy.clusters()).split('\n')) {
    const parts = line.split('::');
    if (parts[0] === cluster && parts[1] === host && parts[2] === 'health_flags') return parts[3];
  }
  return undefined;
}
