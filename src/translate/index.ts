// The mesh model in, Envoy resources out. Pure: no I/O, no encoding. The one entry point the
// snapshot store and the golden tests both call: a sidecar's full configuration is
// translateShared(mesh) ∪ translateProxy(mesh, proxy), the proxy's own resources replacing
// shared ones of the same name (upstream overrides).
import { hash } from 'node:crypto';
import type {
  Backend,
  Mesh,
  MeshProxy,
  MeshService,
  MeshGatewayMode,
  MeshSettings,
  PlacedLocality,
} from '../mesh/types.js';
import { meshService, withoutFailover } from '../mesh/build.js';
import type {
  Cluster,
  ClusterLoadAssignment,
  Listener,
  RouteConfiguration,
  VirtualHost,
} from '../protos/envoy-types.js';
import { aggregateCluster, backendCluster, localAppCluster } from './clusters.js';
import { dnsListener, dnsListenerName } from './dns.js';
import { backendLoadAssignment } from './endpoints.js';
import { inboundListener, outboundHttpListener, outboundTcpListener } from './listeners.js';
import { TRACING_CLUSTER_NAME, hcmObservability, tracingCluster } from './observability.js';
import {
  OUTBOUND_ROUTE_NAME,
  primaryClusterName,
  inboundListenerName,
  localAppClusterName,
  outboundHttpListenerName,
  outboundTcpListenerName,
} from './names.js';
import { gatewayResources } from './gateways.js';
import { authorizationFilters } from './rbac.js';
import { outboundRouteConfiguration, serviceVirtualHost } from './routes.js';
import { downstreamMtls, spiffeMatcherOf } from './tls.js';
import { scopedShared, unowned, type ScopedShared } from './scope.js';
import {
  bindListener,
  bindListenerName,
  bindRouteConfiguration,
  bindRouteName,
  boundServices,
  missingBindRouteConfiguration,
} from './bind-upstreams.js';
import { emptyResourceSet, type ResourceMessage, type ResourceSet } from './types.js';

export * from './names.js';
export type { ScopedShared } from './scope.js';

/** One service's share of the shared resources. */
interface ServiceResources {
  readonly clusters: ReadonlyArray<readonly [string, Cluster]>;
  readonly endpoints: ReadonlyArray<readonly [string, ClusterLoadAssignment]>;
  /** HTTP-family services: the outbound virtual host. */
  readonly virtualHost?: VirtualHost;
  /** tcp services with an outbound port: the local listener every sidecar has for it. */
  readonly tcpListener?: readonly [string, Listener];
}

/** What a service's shared resources are made of: everything but its inbound side. */
function sharedInputs(service: MeshService, mesh: Mesh): unknown {
  // Which failover targets exist (and which fail over themselves) is part of it: a target
  // appearing turns on its aggregate.
  const targets = service.backends.map((b) => failoverTargets(mesh, b));
  return [
    service.name,
    service.protocol,
    service.outboundPort,
    service.backends,
    service.routes,
    targets,
  ];
}

const backendsByName = new WeakMap<Mesh, ReadonlyMap<string, Backend>>();

function existing(mesh: Mesh, backend: Backend): readonly string[] {
  const wanted = backend.failover?.targets;
  if (!wanted || wanted.length === 0) return [];
  let byName = backendsByName.get(mesh);
  if (!byName) {
    byName = new Map(mesh.services.flatMap((s) => s.backends.map((b) => [b.name, b] as const)));
    backendsByName.set(mesh, byName);
  }
  return wanted.filter((t) => byName.has(t));
}

/**
 * The clusters a backend fails over to (other services or subsets that exist in the mesh), in
 * order. A target that fails over itself is an aggregate cluster, and Envoy's aggregate cluster
 * finds no hosts in a nested one (a chained failover answered 503): its own cluster is named
 * instead. Its failover is not followed, as in Consul's discovery chain.
 */
export function failoverTargets(mesh: Mesh, backend: Backend): readonly string[] {
  return existing(mesh, backend).map((t) => {
    const target = backendsByName.get(mesh)!.get(t)!;
    return existing(mesh, target).length > 0 ? primaryClusterName(t) : t;
  });
}

/** Whether clusters carry the per-datacenter transport sockets of paths through gateways. */
export function hasGateways(mesh: Mesh): boolean {
  return mesh.gateways.length > 0;
}

/**
 * A backend's clusters: its EDS cluster, or — with failover targets — an aggregate cluster
 * under its name (what routes reference) over its own EDS cluster, renamed, then the
 * targets' clusters, in order: Envoy uses the first with healthy hosts, each with its own
 * mTLS identity check (Consul's design for failover to another service).
 */
function backendClusters(
  mesh: Mesh,
  backend: Backend,
  viaGateways: boolean,
): Array<readonly [string, Cluster]> {
  const cluster = backendCluster(backend, mesh.settings, viaGateways);
  const targets = failoverTargets(mesh, backend);
  if (targets.length === 0) return [[backend.name, cluster]];
  const primary = primaryClusterName(backend.name);
  return [
    [backend.name, aggregateCluster(backend.name, [primary, ...targets])],
    [primary, { ...cluster, name: primary }],
  ];
}

/**
 * Translations kept between builds. Keys come from content: a service's shared resources are
 * found by a hash of the mesh parts they are made of (the same MeshService object skips the
 * hashing), so a rebuilt but equal service is not translated again.
 */
export class TranslationCache {
  private settings: MeshSettings | undefined;
  /** The gateways and default mode the cached translations were made with. */
  private gateways = '';
  private byObject = new WeakMap<
    MeshService,
    { key: string; part: ServiceResources; vhostKey?: string }
  >();
  private byHash = new Map<string, ServiceResources>();
  private nextByHash = new Map<string, ServiceResources>();
  private routes: { hosts: VirtualHost[]; config: RouteConfiguration } | undefined;
  /**
   * Virtual hosts by the content they are made of, apart from the rest of a service: an
   * endpoint change re-translates the service's clusters and endpoints but finds its virtual
   * host unchanged, so the outbound route configuration (every service's hosts, hundreds of
   * KB in a large mesh) stays the very same object and is neither compared nor re-encoded.
   */
  private vhosts = new Map<string, VirtualHost>();
  private nextVhosts = new Map<string, VirtualHost>();
  /** Services translated (not found in the cache) by the last build: for tests and benches. */
  translated = 0;
  /** This build's parts by service name (for scopes). */
  private parts = new Map<string, ServiceResources>();
  /** Scopes of this build and of the previous one, by scope key (see scope.ts). */
  private scopes = new Map<string, ScopedShared>();
  private lastScopes = new Map<string, ScopedShared>();
  private unownedNames = new Map<string, readonly string[]>();
  /** The last full or patched translation, for patching the next (see translateShared). */
  last: LastTranslation | undefined;
  /**
   * What the last translateShared changed when it patched (undefined: a full translation):
   * the names whose messages may be new, by kind; every other name holds the same message
   * object as in the build before, in the same place.
   */
  patched: PatchedNames | undefined;

  start(settings: MeshSettings, gateways = ''): void {
    if (settings !== this.settings || gateways !== this.gateways) {
      this.settings = settings;
      this.gateways = gateways;
      this.byObject = new WeakMap();
      this.nextByHash = new Map();
      this.nextVhosts = new Map();
      this.routes = undefined;
    }
    this.byHash = this.nextByHash;
    this.nextByHash = new Map();
    this.vhosts = this.nextVhosts;
    this.nextVhosts = new Map();
    this.translated = 0;
    this.parts = new Map();
    this.lastScopes = this.scopes;
    this.scopes = new Map();
    this.unownedNames = new Map();
  }

  /**
   * Starts a build that patches the last one (same settings and gateways): the caches are
   * kept as they are (entries of replaced services are dropped by replace()), only the
   * per-build state is renewed.
   */
  startPatch(): void {
    this.translated = 0;
    // Changed in place (replace()): only this build's scopes read it, and they are made anew.
    this.lastScopes = this.scopes;
    this.scopes = new Map();
    this.unownedNames = new Map();
  }

  /** The part translated for this very service object, if any. */
  partOf(service: MeshService): ServiceResources | undefined {
    return this.byObject.get(service)?.part;
  }

  /** Whether the next build may patch the last one (same settings and gateways). */
  samePlan(settings: MeshSettings, gateways: string): boolean {
    return settings === this.settings && gateways === this.gateways;
  }

  /**
   * `service`'s part in a patched build, `old` (the object it replaces) forgotten: keys hold
   * the service's name, so no other service shares them. Undefined if `old` is unknown.
   */
  replace(old: MeshService, service: MeshService, mesh: Mesh): ServiceResources | undefined {
    const was = this.byObject.get(old);
    if (!was) return undefined;
    const key = hash('sha1', JSON.stringify(sharedInputs(service, mesh)), 'base64');
    let part = this.byHash.get(key) ?? this.nextByHash.get(key);
    if (!part) {
      part = translateService(service, mesh, (s) =>
        this.virtualHost(s, mesh.settings.domainSuffix),
      );
      this.translated++;
    }
    const vhostKey = part.virtualHost ? virtualHostKey(service) : undefined;
    // Forgotten in both maps: left in the last full build's (nextByHash), every service an
    // endpoint flip replaced kept its old translation until the next full build, which
    // endpoint churn never causes (the soak's heap creep: +0.2 MiB/min at 2 flips/s).
    if (was.key !== key) {
      this.byHash.delete(was.key);
      this.nextByHash.delete(was.key);
    }
    if (was.vhostKey !== undefined && was.vhostKey !== vhostKey) {
      this.vhosts.delete(was.vhostKey);
      this.nextVhosts.delete(was.vhostKey);
    }
    // Where the next full build (start()) looks first.
    this.nextByHash.set(key, part);
    if (vhostKey !== undefined && part.virtualHost) this.nextVhosts.set(vhostKey, part.virtualHost);
    this.byObject.set(service, { key, part, ...(vhostKey !== undefined ? { vhostKey } : {}) });
    this.parts.set(service.name, part);
    return part;
  }

  /** Distinct translations and virtual hosts the cache holds (tests: bounded by the services). */
  get kept(): { readonly parts: number; readonly virtualHosts: number } {
    return {
      parts: new Set([...this.byHash.values(), ...this.nextByHash.values()]).size,
      virtualHosts: new Set([...this.vhosts.values(), ...this.nextVhosts.values()]).size,
    };
  }

  /** What proxies scoped to `services` (sorted; `key` their hash) leave out, for this build. */
  scope(services: readonly string[], key: string): ScopedShared {
    let scoped = this.scopes.get(key);
    if (!scoped) {
      scoped = scopedShared(this.parts, services, this.lastScopes.get(key));
      this.scopes.set(key, scoped);
    }
    return scoped;
  }

  /** Names among `all` (this build's shared names of `kind`) that no service owns. */
  unowned(kind: 'clusters' | 'endpoints' | 'listeners', all: Iterable<string>): readonly string[] {
    let names = this.unownedNames.get(kind);
    if (!names) this.unownedNames.set(kind, (names = unowned(all, this.parts, kind)));
    return names;
  }

  private virtualHost(
    service: MeshService,
    domainSuffix: string,
    key = virtualHostKey(service),
  ): VirtualHost {
    const host =
      this.vhosts.get(key) ?? this.nextVhosts.get(key) ?? serviceVirtualHost(service, domainSuffix);
    this.nextVhosts.set(key, host);
    return host;
  }

  service(service: MeshService, mesh: Mesh): ServiceResources {
    let known = this.byObject.get(service);
    if (!known) {
      const key = hash('sha1', JSON.stringify(sharedInputs(service, mesh)), 'base64');
      let part = this.byHash.get(key) ?? this.nextByHash.get(key);
      if (!part) {
        part = translateService(service, mesh, (s) =>
          this.virtualHost(s, mesh.settings.domainSuffix),
        );
        this.translated++;
      }
      known = {
        key,
        part,
        ...(part.virtualHost ? { vhostKey: virtualHostKey(service) } : {}),
      };
      this.byObject.set(service, known);
    }
    this.nextByHash.set(known.key, known.part);
    this.parts.set(service.name, known.part);
    // Keep its virtual host's entry alive while the service is. The key is kept with the
    // service object: hashing every service's routes on every build cost ~60 ms per change
    // at 10,000 services (bench W10, build-probe.ts).
    if (known.vhostKey !== undefined) {
      this.virtualHost(service, mesh.settings.domainSuffix, known.vhostKey);
    }
    return known.part;
  }

  /** The same virtual hosts give the very same route configuration object. */
  outboundRoutes(hosts: VirtualHost[]): RouteConfiguration {
    const last = this.routes;
    if (!last || last.hosts.length !== hosts.length || last.hosts.some((h, i) => h !== hosts[i])) {
      this.routes = { hosts, config: outboundRouteConfiguration(hosts) };
    }
    return this.routes!.config;
  }
}

/** A virtual host is made of these parts of its service only. */
function virtualHostKey(service: MeshService): string {
  return hash('sha1', JSON.stringify([service.name, service.protocol, service.routes]), 'base64');
}

function translateService(
  service: MeshService,
  mesh: Mesh,
  virtualHost: (service: MeshService) => VirtualHost,
): ServiceResources {
  const { settings } = mesh;
  const mtls = settings.mtls !== undefined;
  const main = service.backends[0];
  const viaGateways = hasGateways(mesh);
  const via = { mode: mesh.gatewayMode, gateways: mesh.gateways };
  return {
    clusters: service.backends.flatMap((b) => backendClusters(mesh, b, viaGateways)),
    // Failover backends as a caller in the mesh's own datacenter sees them; callers elsewhere
    // get theirs from translateLocality.
    endpoints: service.backends.map(
      (b) =>
        [
          b.name,
          backendLoadAssignment(b, mtls, homeOf(settings), settings.datacenters, via),
        ] as const,
    ),
    ...(service.protocol !== 'tcp' ? { virtualHost: virtualHost(service) } : {}),
    ...(service.protocol === 'tcp' && service.outboundPort !== undefined && main
      ? {
          tcpListener: [
            outboundTcpListenerName(service.name),
            outboundTcpListener(service.name, main.name, service.outboundPort),
          ] as const,
        }
      : {}),
  };
}

/** Where a caller that states nothing runs. */
export function homeOf(settings: MeshSettings): PlacedLocality {
  return { datacenter: settings.datacenter };
}

const failoverIndex = new WeakMap<Mesh, readonly Backend[]>();
const NO_BACKENDS: readonly Backend[] = Object.freeze([]);

/** The backends whose endpoints depend on where the caller is (see Backend.failover). */
export function failoverBackends(mesh: Mesh): readonly Backend[] {
  let list = failoverIndex.get(mesh);
  if (!list && withoutFailover(mesh)) return NO_BACKENDS;
  if (!list) {
    // A plain loop: flatMap + filter made two arrays per service (~10 ms at 10,000 services).
    const found: Backend[] = [];
    for (const s of mesh.services) {
      for (const b of s.backends) if (b.failover !== undefined) found.push(b);
    }
    failoverIndex.set(mesh, (list = found));
  }
  return list;
}

/**
 * The endpoints a caller at `caller` gets for the failover backends, which replace the shared
 * ones for it. Every caller in the same locality gets the very same objects (encoded once).
 */
export function translateLocality(
  mesh: Mesh,
  caller: PlacedLocality,
  mode: MeshGatewayMode = mesh.gatewayMode,
  reuse?: WeakMap<Backend, ClusterLoadAssignment>,
): Map<string, ClusterLoadAssignment> {
  const mtls = mesh.settings.mtls !== undefined;
  const via = { mode, gateways: mesh.gateways };
  const out = new Map<string, ClusterLoadAssignment>();
  for (const b of failoverBackends(mesh)) {
    // `reuse`: the caller's assignments of earlier builds with the same settings, gateways,
    // locality and mode, by backend object (kept while its service is unchanged).
    let cla = reuse?.get(b);
    if (!cla) {
      cla = backendLoadAssignment(b, mtls, caller, mesh.settings.datacenters, via);
      reuse?.set(b, cla);
    }
    out.set(b.name, cla);
  }
  return out;
}

/** Names a patched translation set anew (see TranslationCache.patched). */
export type PatchedNames = Readonly<
  Record<'clusters' | 'endpoints' | 'listeners' | 'routes', readonly string[]>
>;

/** What translateShared keeps of a build to patch the next. */
interface LastTranslation {
  readonly mesh: Mesh;
  readonly resources: ResourceSet;
  readonly hosts: readonly VirtualHost[];
  /** Index in `hosts` of each service's virtual host, by the service's index (-1: none). */
  readonly hostAt: Int32Array;
  readonly bound: ReadonlySet<string>;
}

/** What every sidecar gets: clusters, their endpoints, outbound routes, tcp listeners. */
export function translateShared(mesh: Mesh, cache = new TranslationCache()): ResourceSet {
  const gateways =
    mesh.gateways.length > 0 ? JSON.stringify([mesh.gatewayMode, mesh.gateways]) : '';
  const bound = boundServices(mesh);
  cache.patched = undefined;
  const patched = patchShared(mesh, cache, gateways, bound);
  if (patched) return patched;
  cache.start(mesh.settings, gateways);
  const resources = emptyResourceSet();
  const hosts: VirtualHost[] = [];
  const hostAt = new Int32Array(mesh.services.length).fill(-1);
  for (const [i, service] of mesh.services.entries()) {
    const part = cache.service(service, mesh);
    if (part.virtualHost && bound.has(service.name)) {
      const config = bindRouteConfiguration(service.name, part.virtualHost);
      resources.routes.set(bindRouteName(service.name), config);
    }
    for (const [name, cluster] of part.clusters) resources.clusters.set(name, cluster);
    for (const [name, cla] of part.endpoints) resources.endpoints.set(name, cla);
    if (part.virtualHost) hostAt[i] = hosts.push(part.virtualHost) - 1;
    if (part.tcpListener) resources.listeners.set(part.tcpListener[0], part.tcpListener[1]);
  }
  return finishShared(mesh, cache, resources, hosts, hostAt, bound);
}

function finishShared(
  mesh: Mesh,
  cache: TranslationCache,
  resources: ResourceSet,
  hosts: VirtualHost[],
  hostAt: Int32Array,
  bound: ReadonlySet<string>,
): ResourceSet {
  resources.routes.set(OUTBOUND_ROUTE_NAME, cache.outboundRoutes(hosts));
  for (const name of bound) {
    if (!meshService(mesh, name)) {
      resources.routes.set(bindRouteName(name), missingBindRouteConfiguration(name));
    }
  }
  const tracing = mesh.observability?.tracing;
  if (tracing) {
    resources.clusters.set(
      TRACING_CLUSTER_NAME,
      tracingCluster(tracing, mesh.settings.connectTimeoutMs),
    );
  }
  // The store adds secrets to the set it is handed: what is kept for the next patch has none.
  cache.last = {
    mesh,
    resources: { ...resources, secrets: new Map() },
    hosts,
    hostAt,
    bound,
  };
  return resources;
}

/** At most this share of the services changed, a build patches the last one's resources. */
const PATCH_SHARE = 1 / 8;

/**
 * The last build's resources with only the services whose MeshService object changed
 * translated again: copying the maps is native work, where going through every service cost
 * ~20 ms per change at 10,000 services (bench W10). Undefined when the services are not the
 * same names in the same order, the settings, gateways or bound upstreams differ, or too
 * many changed: then the full translation runs.
 */
function patchShared(
  mesh: Mesh,
  cache: TranslationCache,
  gateways: string,
  bound: ReadonlySet<string>,
): ResourceSet | undefined {
  const last = cache.last;
  if (!last || !cache.samePlan(mesh.settings, gateways)) return undefined;
  const a = last.mesh.services;
  const b = mesh.services;
  if (a.length !== b.length || !sameSet(last.bound, bound)) return undefined;
  if (last.mesh.observability?.tracing !== mesh.observability?.tracing) return undefined;
  const changed: number[] = [];
  for (let i = 0; i < b.length; i++) {
    if (a[i] === b[i]) continue;
    if (a[i]!.name !== b[i]!.name) return undefined;
    changed.push(i);
  }
  if (changed.length > Math.max(16, b.length * PATCH_SHARE)) return undefined;
  cache.startPatch();
  // The last set's maps are changed in place: the store reads a set only while it builds
  // (encoding copies what a snapshot keeps), and copying 10,000-entry maps on every change
  // was most of the patch and of its garbage.
  const resources: ResourceSet = { ...last.resources, secrets: new Map() };
  const hosts = [...last.hosts];
  const names = { clusters: [] as string[], endpoints: [] as string[], listeners: [] as string[] };
  const routes = [OUTBOUND_ROUTE_NAME];
  if (mesh.observability?.tracing) names.clusters.push(TRACING_CLUSTER_NAME);
  for (const i of changed) {
    const old = cache.partOf(a[i]!);
    const part = old && cache.replace(a[i]!, b[i]!, mesh);
    // Resources are replaced where they stand, so the maps keep the full translation's order
    // (the snapshot's version hashes it; replicas must agree). Other names, or a virtual host
    // gained or lost (every later host moves): the full translation.
    if (!old || !part || !sameShape(old, part)) {
      cache.last = undefined;
      return translateShared(mesh, cache);
    }
    for (const [name, cluster] of part.clusters) {
      resources.clusters.set(name, cluster);
      names.clusters.push(name);
    }
    for (const [name, cla] of part.endpoints) {
      resources.endpoints.set(name, cla);
      names.endpoints.push(name);
    }
    if (part.tcpListener) {
      resources.listeners.set(part.tcpListener[0], part.tcpListener[1]);
      names.listeners.push(part.tcpListener[0]);
    }
    if (part.virtualHost) {
      hosts[last.hostAt[i]!] = part.virtualHost;
      if (bound.has(b[i]!.name)) {
        routes.push(bindRouteName(b[i]!.name));
        resources.routes.set(
          bindRouteName(b[i]!.name),
          bindRouteConfiguration(b[i]!.name, part.virtualHost),
        );
      }
    }
  }
  const out = finishShared(mesh, cache, resources, hosts, last.hostAt, bound);
  cache.patched = { ...names, routes };
  return out;
}

/** The same resource names, in the same order, and a virtual host in both or neither. */
function sameShape(a: ServiceResources, b: ServiceResources): boolean {
  const same = (x: ReadonlyArray<readonly [string, unknown]>, y: typeof x) =>
    x.length === y.length && x.every(([name], i) => name === y[i]![0]);
  return (
    same(a.clusters, b.clusters) &&
    same(a.endpoints, b.endpoints) &&
    a.tcpListener?.[0] === b.tcpListener?.[0] &&
    !a.virtualHost === !b.virtualHost
  );
}

function sameSet(x: ReadonlySet<string>, y: ReadonlySet<string>): boolean {
  if (x.size !== y.size) return false;
  for (const v of x) if (!y.has(v)) return false;
  return true;
}

/**
 * A shared set as a scoped proxy receives it (goldens; the store does the same on encoded
 * resources): the scope's services only. `cache` must be the one translateShared used.
 */
export function scopeResourceSet(
  set: ResourceSet,
  proxy: MeshProxy,
  cache: TranslationCache,
): ResourceSet {
  const scope = proxy.scope;
  if (!scope?.services || scope.key === undefined) return set;
  const { keep, routes } = cache.scope(scope.services, scope.key);
  const out = emptyResourceSet();
  for (const kind of ['clusters', 'endpoints', 'listeners'] as const) {
    const from = set[kind] as Map<string, ResourceMessage>;
    const into = out[kind] as Map<string, ResourceMessage>;
    for (const n of [...cache.unowned(kind, from.keys()), ...keep[kind]]) {
      const r = from.get(n);
      if (r) into.set(n, r);
    }
  }
  for (const [n, r] of set.routes) out.routes.set(n, n === OUTBOUND_ROUTE_NAME ? routes : r);
  for (const [n, s] of set.secrets) out.secrets.set(n, s);
  return out;
}

/**
 * What depends on the node: its outbound HTTP listener (its port), its service's upstream
 * overrides, and, when the node is a meshed instance it may serve, its inbound listener and
 * local app cluster.
 */
export function translateProxy(mesh: Mesh, proxy: MeshProxy): ResourceSet {
  const { settings } = mesh;
  const resources = emptyResourceSet();
  if (proxy.gateway) {
    // A gateway gets its SNI listener and clusters, nothing of a sidecar's.
    const gw = gatewayResources(mesh, proxy.gateway, proxy.exclusivePorts === true);
    for (const [name, l] of gw.listeners) resources.listeners.set(name, l);
    for (const [name, c] of gw.clusters) resources.clusters.set(name, c);
    return resources;
  }
  const observe = hcmObservability(proxy);
  const exclusive = proxy.exclusivePorts === true;
  resources.listeners.set(
    outboundHttpListenerName(proxy.outboundPort),
    outboundHttpListener(proxy.outboundPort, exclusive, observe),
  );
  if (proxy.dns) resources.listeners.set(dnsListenerName(proxy.dns.port), dnsListener(proxy.dns));
  for (const b of proxy.bindUpstreams ?? []) {
    resources.listeners.set(bindListenerName(b), bindListener(b, exclusive, observe));
  }
  for (const backend of proxy.upstreamOverrides) {
    // With failover targets the override replaces the primary cluster under the aggregate.
    const name =
      failoverTargets(mesh, backend).length > 0 ? primaryClusterName(backend.name) : backend.name;
    // As the shared cluster it replaces: with gateways, its other datacenters' endpoints are
    // gateways that route on a per-datacenter SNI (without it: the service's, and a 503).
    resources.clusters.set(name, {
      ...backendCluster(backend, settings, hasGateways(mesh)),
      name,
    });
  }
  const inbound = proxy.inbound;
  if (inbound) {
    const identity = settings.mtls;
    const http = inbound.protocol !== 'tcp';
    const security = identity
      ? {
          transportSocket: downstreamMtls(identity, http),
          rbac: authorizationFilters(
            inbound.authorization,
            (s) => spiffeMatcherOf(identity, s),
            http,
          ),
        }
      : undefined;
    resources.listeners.set(
      inboundListenerName(proxy.nodeId),
      inboundListener(
        proxy.nodeId,
        inbound.protocol,
        inbound.sidecarPort,
        exclusive,
        security,
        observe,
      ),
    );
    resources.clusters.set(
      localAppClusterName(proxy.nodeId),
      localAppCluster(
        proxy.nodeId,
        inbound.protocol,
        inbound.appPort,
        settings,
        inbound.localAppIdleTimeoutMs,
        inbound.appAddress,
      ),
    );
  }
  return resources;
}

export type { Backend };
