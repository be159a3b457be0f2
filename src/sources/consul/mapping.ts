// Consul's health view (`/v1/health/service/<name>` for every service) → the catalog model.
//
// Rules (docs/consul.md has the user-facing version):
// - A plain service instance (no Kind) becomes a catalog instance: Service.Address, or the
//   node's address when empty; Service.Port; Tags; Meta.
// - Consul's sidecar registrations (Kind `connect-proxy`, e.g. `web-1-sidecar-proxy` from
//   `Connect: {SidecarService: {}}`) are not services. Each is joined to the instance it fronts
//   (same node, Proxy.DestinationServiceID): the instance's id becomes the proxy's service ID
//   (the Envoy node id, as with `consul connect envoy`), its address the proxy's address, its
//   sidecarPort the proxy's port and its port Proxy.LocalServicePort. Peers then reach the
//   instance through its sidecar; an instance without one is reached directly. The sidecar's
//   Proxy.LocalServiceAddress (an IP; default 127.0.0.1) is where it reaches the app.
// - Health is the worst status of the instance's checks, its node's checks and, when meshed,
//   its sidecar's checks. `warning` maps to `warningAs` (default passing); critical stays
//   critical (the translator sends no traffic there); unknown statuses count as critical.
// - `Meta.protocol` (http | http2 | grpc | tcp; else the sidecar's Proxy.Config.protocol,
//   Consul's own convention; default http, or tcp with --consul-default-protocol) picks the
//   protocol. tcp services get a local listener on every sidecar at `Meta.outbound_port`;
//   without one they keep their cluster.
// - The sidecar's Proxy.Config.lucid_local_app_idle_timeout_ms (docs/local-app.md) is the
//   service's localAppIdleTimeoutMs; sidecars that disagree are reported, the most common wins.
// - Mesh gateways (Kind `mesh-gateway`) become catalog gateways: the registration's ID is the
//   gateway's node id, TaggedAddresses.lan (else Service.Address/Port, else the node's
//   address) where its own datacenter reaches it, TaggedAddresses.wan where others do.
// - Other kinds are ignored; so is the `consul` service (the servers' RPC port).
// - Locality: every instance carries the datacenter it was read from, and `region`/`zone` from
//   the service's Meta.region/Meta.zone, else its sidecar registration's, else its node's
//   Node.Meta.region/zone (the order `lucid-mesh bootstrap --consul-service-id` uses).
// - Several datacenters map together (mapConsulDatacenters), the local one first: a service is
//   the union of its instances in every datacenter (one protocol for all), and an instance id
//   (an Envoy node id) already taken in an earlier datacenter skips the later one, reported.
// - Every instance is validated with the catalog's instanceSchema. A bad instance (or a
//   service that cannot be built) is skipped and reported in `problems`; the rest is kept.
import { isIP } from 'node:net';
import {
  PROTOCOLS,
  normalizeCatalog,
  type Catalog,
  type Gateway,
  type Health,
  type Instance,
  type Protocol,
  type Service,
  type Upstream,
} from '../../catalog/model.js';
import {
  formatIssues,
  gatewaySchema,
  instanceSchema,
  MAX_TIMEOUT_MS,
  show,
  sourceServiceSchema,
  timeoutMs,
} from '../../catalog/schema.js';
import { LOCAL_APP_IDLE_TIMEOUT_KEY } from '../../traffic/local-app.js';
import type { ConsulHealthEntry } from './client.js';
import { mergeUpstreams, sidecarUpstreams } from './upstreams.js';
import { compareStrings } from '../../text-order.js';

export interface MappingOptions {
  /** Catalog health for Consul's `warning`. */
  readonly warningAs: Health;
  /** Protocol of a service none of whose registrations names one (default http). */
  readonly defaultProtocol?: 'http' | 'tcp';
  /** mapConsulCatalog: the datacenter the entries were read from (every instance's). */
  readonly datacenter?: string;
}

/** The health entries of one datacenter, for mapConsulDatacenters. */
export interface DatacenterEntries {
  /** Its name, carried by every instance read from it; absent: not known, none carried. */
  readonly datacenter?: string;
  readonly byService: ReadonlyMap<string, readonly ConsulHealthEntry[]>;
}

export interface MappingResult {
  readonly catalog: Catalog;
  /** One line per skipped or adjusted item, naming the service, the instance and the field. */
  readonly problems: readonly string[];
  /** Instances joined with a Consul sidecar registration. */
  readonly meshedInstances: number;
  /** Instances without a sidecar (reached directly), as "<service>/<instance id>". */
  readonly unmeshed: readonly string[];
  /**
   * Critical instances whose every critical check has not run yet (no Output: the state
   * Consul registers and restores a check in until its first run; TTL checks, which never
   * run, excepted), as "<service>/<id>".
   */
  readonly criticalNotRun: readonly string[];
}

/** Consul's own service: its servers' RPC port, never mesh traffic. */
export const IGNORED_SERVICES: ReadonlySet<string> = new Set(['consul']);

export const PROXY_KIND = 'connect-proxy';
export const META_PROTOCOL = 'protocol';
export const META_OUTBOUND_PORT = 'outbound_port';
export const META_REGION = 'region';
export const META_ZONE = 'zone';

const RANK: Record<string, number> = { passing: 0, warning: 1, critical: 2 };

interface Candidate {
  readonly instance: Instance;
  readonly protocol?: Protocol;
  /** Where the protocol was read: Meta.protocol or the sidecar's Proxy.Config.protocol. */
  readonly protocolFrom?: string;
  readonly outboundPort?: number;
  /** Critical only by checks that have not run yet. */
  readonly criticalNotRun: boolean;
  /** Its sidecar registration's Proxy.Upstreams (absent: none declared). */
  readonly upstreams?: readonly Upstream[];
  /** Its sidecar registration's Proxy.Config.lucid_local_app_idle_timeout_ms. */
  readonly localAppIdleTimeoutMs?: number;
}

/** One datacenter's entries (see mapConsulDatacenters). */
export function mapConsulCatalog(
  byService: ReadonlyMap<string, readonly ConsulHealthEntry[]>,
  opts: MappingOptions,
): MappingResult {
  return mapConsulDatacenters(
    [{ ...(opts.datacenter !== undefined ? { datacenter: opts.datacenter } : {}), byService }],
    opts,
  );
}

/**
 * Several datacenters' entries into one catalog; `datacenters[0]` is the local one. Problem
 * lines about the local datacenter read `consul service "web" ...`, about another one
 * `consul datacenter "dc2" service "web" ...`.
 */
export function mapConsulDatacenters(
  raw: readonly DatacenterEntries[],
  opts: Pick<MappingOptions, 'warningAs' | 'defaultProtocol'>,
): MappingResult {
  const problems: string[] = [];
  const datacenters = raw.map((d) => ({ ...d, byService: wellFormed(d.byService, problems) }));
  const prefix = (d: number): string =>
    d === 0 ? 'consul' : `consul datacenter "${datacenters[d]?.datacenter ?? '?'}"`;

  // Per datacenter and service: the candidates, local datacenter first.
  const perName = new Map<string, Array<{ d: number; c: Candidate; where: string }>>();
  const withInstances = new Set<string>();
  const gateways: Gateway[] = [];
  datacenters.forEach(({ datacenter, byService }, d) => {
    const names = [...byService.keys()].sort();
    const proxies = sidecars(byService, names, prefix(d), problems);
    for (const name of names) {
      for (const e of byService.get(name) ?? []) {
        if (e.Service?.Kind !== 'mesh-gateway') continue;
        const g = gatewayOf(
          e,
          datacenter,
          opts,
          `${prefix(d)} mesh gateway "${e.Service.ID}"`,
          problems,
        );
        // Gateway ids are node ids too (Consul's default id is `mesh-gateway` in every
        // datacenter): the first one read keeps it, a later one is skipped and reported.
        if (g && gateways.some((o) => o.id === g.id)) {
          problems.push(
            `${prefix(d)} mesh gateway "${g.id}": id: duplicate (already a gateway of another datacenter); give each gateway its own service ID; gateway skipped`,
          );
        } else if (g) gateways.push(g);
      }
    }
    for (const name of names) {
      if (IGNORED_SERVICES.has(name)) continue;
      const entries = [...(byService.get(name) ?? [])]
        .filter((e) => e.Service && (e.Service.Kind === undefined || e.Service.Kind === ''))
        .sort((a, b) =>
          cmp(`${a.Node?.Node}\0${a.Service.ID}`, `${b.Node?.Node}\0${b.Service.ID}`),
        );
      if (entries.length === 0) continue; // only proxies/gateways: not a service
      withInstances.add(name);
      const list = perName.get(name) ?? [];
      perName.set(name, list);
      const where = `${prefix(d)} service "${name}"`;
      for (const entry of entries) {
        const c = candidate(where, entry, proxies, datacenter, opts, problems);
        if (c) list.push({ d, c, where });
      }
    }
  });

  // Instance ids are Envoy node ids: unique across the catalog. The local datacenter claims
  // first, then the others in order; within one, by service name.
  const ids = new Map<string, { name: string; d: number }>();
  const accepted = new Set<Candidate>();
  for (let d = 0; d < datacenters.length; d++) {
    for (const name of [...perName.keys()].sort()) {
      for (const item of perName.get(name)!) {
        if (item.d !== d) continue;
        const { id } = item.c.instance;
        const owner = ids.get(id);
        if (owner === undefined) {
          ids.set(id, { name, d });
          accepted.add(item.c);
        } else if (owner.d === d) {
          problems.push(
            `${item.where} instance "${id}": id: duplicate (also in service "${owner.name}"); ids are Envoy node ids and must be unique; instance skipped`,
          );
        } else {
          const where = datacenters[owner.d]?.datacenter;
          problems.push(
            `${item.where} instance "${id}": id: duplicate (also in service "${owner.name}" of ${where !== undefined ? `datacenter "${where}"` : 'the local datacenter'}); ids are Envoy node ids and must be unique across datacenters; instance skipped`,
          );
        }
      }
    }
  }

  const services: Service[] = [];
  const outboundPorts = new Map<number, string>();
  let meshedInstances = 0;
  const unmeshed: string[] = [];
  const criticalNotRun: string[] = [];

  for (const name of [...withInstances].sort()) {
    const where = `consul service "${name}"`;
    const candidates = (perName.get(name) ?? []).map((item) => item.c);

    const protocol = pick(
      candidates.map((c) => c.protocol),
      opts.defaultProtocol ?? 'http',
      `${where}: instances disagree on Meta.${META_PROTOCOL}`,
      problems,
    );
    let outboundPort: number | undefined;
    if (protocol === 'tcp') {
      outboundPort = pick(
        candidates.map((c) => c.outboundPort),
        undefined,
        `${where}: instances disagree on Meta.${META_OUTBOUND_PORT}`,
        problems,
      );
      // A tcp service is never dropped for want of a local port: it keeps its cluster and
      // endpoints (reachable through declared upstreams), only the shared listener is missing.
      const from = candidates.find((c) => c.protocol === 'tcp')?.protocolFrom;
      if (outboundPort === undefined) {
        // Not when tcp by --consul-default-protocol, as every Consul service is: its
        // sidecars' bind ports reach it, as in Consul.
        if (from !== undefined) {
          problems.push(
            `${where}: tcp (from ${from}) without Meta.${META_OUTBOUND_PORT}: served without a local listener on every sidecar (set Meta.${META_OUTBOUND_PORT} to give it one)`,
          );
        }
      } else {
        const owner = outboundPorts.get(outboundPort);
        if (owner !== undefined) {
          problems.push(
            `${where}: Meta.${META_OUTBOUND_PORT}: port ${outboundPort} already used by tcp service "${owner}"; served without a local listener`,
          );
          outboundPort = undefined;
        }
      }
    } else if (candidates.some((c) => c.outboundPort !== undefined)) {
      problems.push(`${where}: Meta.${META_OUTBOUND_PORT}: ignored, only used by tcp services`);
    }

    const instances: Instance[] = [];
    for (const c of candidates) {
      if (!accepted.has(c)) continue;
      const { instance } = c;
      if (instance.sidecarPort !== undefined) meshedInstances++;
      else unmeshed.push(`${name}/${instance.id}`);
      if (c.criticalNotRun) criticalNotRun.push(`${name}/${instance.id}`);
      instances.push(instance);
    }

    const upstreams = mergeUpstreams(
      candidates.filter((c) => accepted.has(c)).map((c) => c.upstreams),
      where,
      problems,
    );
    const localAppIdleTimeoutMs = pick(
      candidates.map((c) => c.localAppIdleTimeoutMs),
      undefined,
      `${where}: sidecars disagree on Proxy.Config.${LOCAL_APP_IDLE_TIMEOUT_KEY}`,
      problems,
    );
    const parsed = sourceServiceSchema.safeParse({
      name,
      protocol,
      ...(localAppIdleTimeoutMs !== undefined ? { localAppIdleTimeoutMs } : {}),
      ...(outboundPort !== undefined ? { outboundPort } : {}),
      instances,
      ...(upstreams !== undefined ? { upstreams } : {}),
    });
    if (!parsed.success) {
      for (const issue of formatIssues(parsed.error))
        problems.push(`${where}: ${issue}; service skipped`);
      continue;
    }
    if (outboundPort !== undefined) outboundPorts.set(outboundPort, name);
    services.push(parsed.data);
  }
  return {
    catalog: normalizeCatalog({ services, ...(gateways.length > 0 ? { gateways } : {}) }),
    problems,
    meshedInstances,
    unmeshed,
    criticalNotRun,
  };
}

/** A Consul mesh-gateway registration as a catalog gateway (validated as the file's). */
function gatewayOf(
  e: ConsulHealthEntry,
  datacenter: string | undefined,
  opts: Pick<MappingOptions, 'warningAs'>,
  where: string,
  problems: string[],
): Gateway | undefined {
  const svc = e.Service;
  const lan = svc.TaggedAddresses?.lan;
  const wan = svc.TaggedAddresses?.wan;
  const statuses = (e.Checks ?? []).map((c) => c.Status);
  let worst = 0;
  for (const s of statuses) worst = Math.max(worst, RANK[s] ?? 2);
  const parsed = gatewaySchema.safeParse({
    id: svc.ID,
    ...(datacenter !== undefined ? { datacenter } : {}),
    address: lan?.Address || svc.Address || e.Node?.Address,
    port: lan?.Port || svc.Port,
    ...(wan?.Address ? { wanAddress: wan.Address } : {}),
    ...(wan?.Port ? { wanPort: wan.Port } : {}),
    health: worst === 2 ? 'critical' : worst === 1 ? opts.warningAs : 'passing',
  });
  if (!parsed.success) {
    problems.push(`${where}: ${formatIssues(parsed.error).join('; ')}; gateway skipped`);
    return undefined;
  }
  return parsed.data;
}

/** Sidecar registrations of one datacenter, by the instance they front. */
function sidecars(
  byService: ReadonlyMap<string, readonly ConsulHealthEntry[]>,
  names: readonly string[],
  prefix: string,
  problems: string[],
): Map<string, ConsulHealthEntry> {
  const proxies = new Map<string, ConsulHealthEntry>();
  for (const name of names) {
    for (const entry of byService.get(name) ?? []) {
      if (entry.Service?.Kind !== PROXY_KIND) continue;
      const dest = entry.Service.Proxy?.DestinationServiceID;
      if (!dest) {
        problems.push(
          `${prefix} service "${name}" proxy "${entry.Service.ID}": Proxy.DestinationServiceID: missing; proxy ignored`,
        );
        continue;
      }
      const key = instanceKey(entry.Node?.Node, dest);
      const other = proxies.get(key);
      if (other && other.Service.ID <= entry.Service.ID) {
        problems.push(
          `${prefix} service "${name}" proxy "${entry.Service.ID}": a second sidecar for "${dest}" on node "${entry.Node?.Node}"; using "${other.Service.ID}"`,
        );
        continue;
      }
      if (other) {
        problems.push(
          `${prefix} service "${other.Service.Service}" proxy "${other.Service.ID}": a second sidecar for "${dest}" on node "${entry.Node?.Node}"; using "${entry.Service.ID}"`,
        );
      }
      proxies.set(key, entry);
    }
  }
  return proxies;
}

function instanceKey(node: string | undefined, serviceId: string): string {
  return `${node ?? ''}\0${serviceId}`;
}

function candidate(
  service: string,
  entry: ConsulHealthEntry,
  proxies: ReadonlyMap<string, ConsulHealthEntry>,
  datacenter: string | undefined,
  opts: Pick<MappingOptions, 'warningAs'>,
  problems: string[],
): Candidate | undefined {
  const svc = entry.Service;
  const sidecar = proxies.get(instanceKey(entry.Node?.Node, svc.ID));
  const id = sidecar ? sidecar.Service.ID : svc.ID;
  const where = `${service} instance "${id}"`;
  const meta = { ...(svc.Meta ?? {}) };
  const sidecarMeta = sidecar?.Service.Meta;
  const region = locality(META_REGION, meta, sidecarMeta, entry.Node?.Meta);
  const zone = locality(META_ZONE, meta, sidecarMeta, entry.Node?.Meta);
  const located = {
    ...(datacenter !== undefined ? { datacenter } : {}),
    ...(region ? { region: region.value } : {}),
    ...(zone ? { zone: zone.value } : {}),
  };

  let protocol: Protocol | undefined;
  const rawProtocol = meta[META_PROTOCOL] ?? sidecar?.Service.Proxy?.Config?.protocol;
  const protocolField =
    meta[META_PROTOCOL] !== undefined ? `Meta.${META_PROTOCOL}` : 'Proxy.Config.protocol';
  if (rawProtocol !== undefined && rawProtocol !== '') {
    if (
      typeof rawProtocol !== 'string' ||
      !(PROTOCOLS as readonly string[]).includes(rawProtocol)
    ) {
      problems.push(
        `${where}: ${protocolField}: expected one of ${PROTOCOLS.join(' | ')}, got ${show(rawProtocol)}; instance skipped`,
      );
      return undefined;
    }
    protocol = rawProtocol as Protocol;
  }

  let outboundPort: number | undefined;
  const rawOutbound = meta[META_OUTBOUND_PORT];
  if (rawOutbound !== undefined && rawOutbound !== '') {
    const n = Number(rawOutbound);
    if (!/^\d{1,5}$/.test(rawOutbound) || n < 1 || n > 65535) {
      problems.push(
        `${where}: Meta.${META_OUTBOUND_PORT}: expected integer 1-65535, got ${show(rawOutbound)}; instance skipped`,
      );
      return undefined;
    }
    outboundPort = n;
  }

  const checks = [...(entry.Checks ?? []), ...(sidecar?.Checks ?? [])];
  let worst = 0;
  for (const c of checks) worst = Math.max(worst, RANK[c.Status] ?? 2);
  const health: Health = worst === 2 ? 'critical' : worst === 1 ? opts.warningAs : 'passing';
  // A check that ran leaves its output (TCP, HTTP, alias, script ... all write one). A TTL
  // check is never run: critical without output there is its app's word (or its never having
  // sent one), not a restart artefact.
  const criticalNotRun =
    health === 'critical' &&
    checks.every(
      (c) =>
        (RANK[c.Status] ?? 2) < 2 ||
        ((c.Output === undefined || c.Output === '') && c.Type !== 'ttl'),
    );

  const raw = sidecar
    ? {
        id,
        address: sidecar.Service.Address || sidecar.Node?.Address,
        port: sidecar.Service.Proxy?.LocalServicePort || svc.Port,
        sidecarPort: sidecar.Service.Port,
        ...localAppAddress(sidecar, where, problems),
        health,
        tags: [...(svc.Tags ?? [])],
        meta,
        ...located,
      }
    : {
        id,
        address: svc.Address || entry.Node?.Address,
        port: svc.Port,
        health,
        tags: [...(svc.Tags ?? [])],
        meta,
        ...located,
      };
  const upstreams = sidecarUpstreams(sidecar, where, problems);
  const localAppIdleTimeoutMs = sidecarIdleTimeout(sidecar, where, problems);
  const parsed = instanceSchema.safeParse(raw);
  if (!parsed.success) {
    // Name the Consul field a bad region or zone came from.
    const from: Record<string, string | undefined> = {
      [META_REGION]: region?.from,
      [META_ZONE]: zone?.from,
    };
    const issues = formatIssues(parsed.error)
      .map((issue) => {
        const field = /^(\w+):/.exec(issue)?.[1];
        const source = field !== undefined ? from[field] : undefined;
        return source !== undefined ? `${source}${issue.slice(field!.length)}` : issue;
      })
      .join('; ');
    problems.push(`${where}: ${issues}; instance skipped`);
    return undefined;
  }
  return {
    instance: parsed.data,
    ...(protocol !== undefined ? { protocol, protocolFrom: protocolField } : {}),
    ...(outboundPort !== undefined ? { outboundPort } : {}),
    criticalNotRun,
    ...(upstreams !== undefined ? { upstreams } : {}),
    ...(localAppIdleTimeoutMs !== undefined ? { localAppIdleTimeoutMs } : {}),
  };
}

/**
 * Where the sidecar reaches its app: Proxy.LocalServiceAddress (Consul's default, and
 * "localhost", are 127.0.0.1, left implicit). Envoy does not resolve it, so a hostname is
 * reported and 127.0.0.1 used, as before this was read.
 */
function localAppAddress(
  sidecar: ConsulHealthEntry,
  where: string,
  problems: string[],
): { localAppAddress?: string } {
  const raw = sidecar.Service.Proxy?.LocalServiceAddress;
  if (raw === undefined || raw === '' || raw === '127.0.0.1' || raw === 'localhost') return {};
  if (isIP(raw) !== 0) return { localAppAddress: raw };
  problems.push(
    `${where}: Proxy.LocalServiceAddress: expected an IP address, got ${show(raw)}; 127.0.0.1 used`,
  );
  return {};
}

/**
 * The sidecar's idle timeout towards its app (docs/local-app.md), from its registration's
 * Proxy.Config as registered (proxy-defaults' key is read from that entry). Consul keeps
 * Config values as given, so "4000" counts too. A bad value is reported and ignored: the
 * default still applies.
 */
function sidecarIdleTimeout(
  sidecar: ConsulHealthEntry | undefined,
  where: string,
  problems: string[],
): number | undefined {
  const raw = sidecar?.Service.Proxy?.Config?.[LOCAL_APP_IDLE_TIMEOUT_KEY];
  if (raw === undefined || raw === null || raw === '') return undefined;
  const parsed = timeoutMs.safeParse(
    typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw,
  );
  if (parsed.success) return parsed.data;
  problems.push(
    `${where}: Proxy.Config.${LOCAL_APP_IDLE_TIMEOUT_KEY}: expected integer 0-${MAX_TIMEOUT_MS} (ms), got ${show(raw)}; ignored`,
  );
  return undefined;
}

/**
 * Meta.<key> of the app's registration, else of its sidecar's (as `lucid-mesh bootstrap
 * --consul-service-id` reads them, so an instance and its sidecar agree), else Node.Meta.<key>
 * of its node. Empty counts as absent.
 */
function locality(
  key: string,
  meta: Readonly<Record<string, string>>,
  sidecarMeta: Readonly<Record<string, string>> | null | undefined,
  nodeMeta: Readonly<Record<string, string>> | null | undefined,
): { value: string; from: string } | undefined {
  const sources: Array<[Readonly<Record<string, string>> | null | undefined, string]> = [
    [meta, `Meta.${key}`],
    [sidecarMeta, `the sidecar's Meta.${key}`],
    [nodeMeta, `Node.Meta.${key}`],
  ];
  for (const [values, from] of sources) {
    const value = values?.[key];
    if (value !== undefined && value !== '') return { value, from };
  }
  return undefined;
}

/** The most common defined value (ties: the smallest); `fallback` when none is defined. */
function pick<T extends string | number>(
  values: readonly (T | undefined)[],
  fallback: T | undefined,
  conflict: string,
  problems: string[],
): T | undefined {
  const counts = new Map<T, number>();
  for (const v of values) if (v !== undefined) counts.set(v, (counts.get(v) ?? 0) + 1);
  if (counts.size === 0) return fallback;
  const ranked = [...counts.entries()].sort(
    (a, b) => b[1] - a[1] || cmp(String(a[0]), String(b[0])),
  );
  if (ranked.length > 1) {
    problems.push(
      `${conflict} (${ranked.map(([v, n]) => `${v}: ${n}`).join(', ')}); using ${ranked[0]![0]}`,
    );
  }
  return ranked[0]![0];
}

const cmp = compareStrings;

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Health entries in the shape the mapping reads, whatever Consul (or something in between)
 * sent: an entry that is not an object, or has no Service object with an ID, is skipped and
 * reported; checks that are not objects, and tags, meta or tagged addresses of the wrong type
 * are dropped (found by fuzzing: `Checks: [null]` threw and stopped the process).
 */
function wellFormed(
  byService: ReadonlyMap<string, readonly ConsulHealthEntry[]>,
  problems: string[],
): ReadonlyMap<string, readonly ConsulHealthEntry[]> {
  const out = new Map<string, ConsulHealthEntry[]>();
  for (const [name, entries] of byService) {
    const list: ConsulHealthEntry[] = [];
    for (const e of (Array.isArray(entries) ? entries : []) as unknown[]) {
      const svc = isObject(e) ? e.Service : undefined;
      if (!isObject(e) || !isObject(svc) || typeof svc.ID !== 'string') {
        problems.push(`consul service "${name}": a health entry without a Service ID; skipped`);
        continue;
      }
      const node = isObject(e.Node) ? e.Node : {};
      list.push({
        ...(e as unknown as ConsulHealthEntry),
        Node: {
          ...(node as unknown as ConsulHealthEntry['Node']),
          Meta: isObject(node.Meta) ? (node.Meta as Record<string, string>) : null,
        },
        Service: {
          ...(svc as unknown as ConsulHealthEntry['Service']),
          Tags: Array.isArray(svc.Tags) ? svc.Tags.filter((t) => typeof t === 'string') : null,
          Meta: isObject(svc.Meta) ? (svc.Meta as Record<string, string>) : null,
          TaggedAddresses: isObject(svc.TaggedAddresses)
            ? (svc.TaggedAddresses as ConsulHealthEntry['Service']['TaggedAddresses'])
            : null,
          Proxy: isObject(svc.Proxy) ? (svc.Proxy as ConsulHealthEntry['Service']['Proxy']) : null,
        },
        Checks: Array.isArray(e.Checks)
          ? (e.Checks.filter(isObject) as unknown as ConsulHealthEntry['Checks'])
          : [],
      });
    }
    out.set(name, list);
  }
  return out;
}
