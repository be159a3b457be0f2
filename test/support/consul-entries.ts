// Consul config entries for end-to-end tests, written and deleted with Consul's HTTP API as
// `consul config write` / `consul config delete` do (PUT /v1/config with the entry as the body,
// DELETE /v1/config/<kind>/<name>); requests with any method through a sidecar; and what a
// sidecar's Envoy admin endpoint says about its routes and clusters.
import { request } from 'node:http';
import type { ConsulAgent, TextResponse } from './consul.js';
import type { EnvoyHandle } from './envoy.js';
import type { Sidecar } from './mesh.js';

/** A config entry as Consul's API takes it (PascalCase, `Kind` and `Name` required). */
export interface ConfigEntry {
  readonly Kind: string;
  readonly Name: string;
  readonly [field: string]: unknown;
}

/** PUT /v1/config; Consul's answer whatever it is (for entries it may refuse). */
export function tryWriteEntry(consul: ConsulAgent, entry: ConfigEntry): Promise<TextResponse> {
  return consul.api('PUT', '/v1/config', entry);
}

/** PUT /v1/config; throws unless Consul stored it (HTTP 200, body `true`). */
export async function writeEntry(consul: ConsulAgent, entry: ConfigEntry): Promise<void> {
  const res = await tryWriteEntry(consul, entry);
  if (res.status !== 200 || res.body.trim() !== 'true') {
    throw new Error(
      `consul config write ${entry.Kind}/${entry.Name}: HTTP ${res.status}: ${res.body.slice(0, 500)}`,
    );
  }
}

/** DELETE /v1/config/<kind>/<name>; throws unless HTTP 200. */
export async function deleteEntry(consul: ConsulAgent, kind: string, name: string): Promise<void> {
  const res = await consul.api(
    'DELETE',
    `/v1/config/${encodeURIComponent(kind)}/${encodeURIComponent(name)}`,
  );
  if (res.status !== 200) {
    throw new Error(
      `consul config delete ${kind}/${name}: HTTP ${res.status}: ${res.body.slice(0, 500)}`,
    );
  }
}

export interface Reply {
  readonly status: number;
  /** The answering app (its x-app header); undefined when Envoy answered itself. */
  readonly app?: string;
  readonly body: string;
}

/**
 * One request through `sidecar`'s outbound listener to `host` on a fresh connection. Resolves
 * for any HTTP status; rejects on connection errors or after `timeoutMs` (default 3 s).
 */
export function send(
  sidecar: Sidecar,
  host: string,
  opts: { path?: string; method?: string; timeoutMs?: number } = {},
): Promise<Reply> {
  const path = opts.path ?? '/';
  const method = opts.method ?? 'GET';
  const what = `${method} http://${host}${path} via 127.0.0.1:${sidecar.outboundPort}`;
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: sidecar.outboundPort,
        path,
        method,
        headers: { host, 'content-length': '0' },
        agent: false,
        timeout: opts.timeoutMs ?? 3_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const app = res.headers['x-app'];
          resolve({
            status: res.statusCode ?? 0,
            ...(typeof app === 'string' ? { app } : {}),
            body: Buffer.concat(chunks).toString('utf8'),
          });
        });
        res.on('error', (e) => reject(new Error(`${what}: ${e.message}`)));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${what}: timed out`)));
    req.on('error', (e) => reject(new Error(`${what}: ${e.message}`)));
    req.end();
  });
}

export interface Tally {
  /** Answers per app; Envoy's own answers (no x-app) count under "(envoy)". */
  readonly apps: Record<string, number>;
  readonly statuses: Record<number, number>;
  /** Requests that got no HTTP response. */
  readonly errors: string[];
}

/** `n` requests, `concurrency` (default 1) at a time; never rejects. */
export async function tally(
  sidecar: Sidecar,
  host: string,
  n: number,
  opts: { path?: string; method?: string; concurrency?: number } = {},
): Promise<Tally> {
  const result: Tally = { apps: {}, statuses: {}, errors: [] };
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      next++;
      try {
        const r = await send(sidecar, host, opts);
        const app = r.app ?? '(envoy)';
        result.apps[app] = (result.apps[app] ?? 0) + 1;
        result.statuses[r.status] = (result.statuses[r.status] ?? 0) + 1;
      } catch (err) {
        result.errors.push((err as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 1) }, worker));
  return result;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

/** The dynamic (xDS) sections of /config_dump of one type, e.g. "dynamic_active_clusters". */
async function dumpSections(envoy: EnvoyHandle, key: string): Promise<Json[]> {
  const dump = (await envoy.configDump()) as { configs: Json[] };
  return dump.configs.flatMap((c) => (Array.isArray(c[key]) ? (c[key] as Json[]) : []));
}

/** One active dynamic cluster as /config_dump prints it (snake_case); undefined if absent. */
export async function dumpedCluster(envoy: EnvoyHandle, name: string): Promise<Json | undefined> {
  const found = (await dumpSections(envoy, 'dynamic_active_clusters')).find(
    (c) => (c.cluster as Json | undefined)?.name === name,
  );
  return found?.cluster as Json | undefined;
}

/**
 * The routes of the outbound virtual host `service` as /config_dump prints them, each as its
 * path match ("prefix:/admin", "*" for none) and cluster ("api~v2", or "api~v1=5000,api~v2=5000"
 * for weighted clusters).
 */
export async function routeTable(
  envoy: EnvoyHandle,
  service: string,
): Promise<Array<{ match: string; cluster: string }>> {
  for (const rc of await dumpSections(envoy, 'dynamic_route_configs')) {
    const hosts = ((rc.route_config as Json | undefined)?.virtual_hosts ?? []) as Json[];
    // Over VHDS (delta) a host is named `outbound/<service>` (translate/vhds.ts).
    const host = hosts.find((h) => h.name === service || h.name === `outbound/${service}`);
    if (!host) continue;
    return ((host.routes ?? []) as Json[]).map((r) => {
      const m = (r.match ?? {}) as Json;
      const match =
        m.prefix !== undefined
          ? `prefix:${m.prefix}`
          : m.path !== undefined
            ? `exact:${m.path}`
            : m.safe_regex !== undefined
              ? `regex:${(m.safe_regex as Json).regex}`
              : m.path_separated_prefix !== undefined
                ? `prefix:${m.path_separated_prefix}`
                : '*';
      const action = (r.route ?? {}) as Json;
      const weighted = action.weighted_clusters as { clusters: Json[] } | undefined;
      const cluster = weighted
        ? weighted.clusters.map((c) => `${c.name}=${c.weight}`).join(',')
        : String(action.cluster ?? '');
      return { match, cluster };
    });
  }
  return [];
}

/**
 * A cluster's default-priority circuit breaker thresholds from Envoy's /clusters
 * (`api::default_priority::max_connections::1024`): max_connections, max_pending_requests,
 * max_requests, max_retries.
 */
export async function circuitBreakers(
  envoy: EnvoyHandle,
  cluster: string,
): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const line of (await envoy.clusters()).split('\n')) {
    const parts = line.split('::');
    if (parts.length === 4 && parts[0] === cluster && parts[1] === 'default_priority') {
      out[parts[2]!] = Number(parts[3]);
    }
  }
  return out;
}

/** Median of a non-empty list. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
