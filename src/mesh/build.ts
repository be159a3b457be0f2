// buildMesh: catalog + traffic configuration + policy → the mesh model. Pure and
// deterministic; parts are memoised on the identity of the inputs they read (MeshCache), so
// a change to one service or entry rebuilds only what depends on it.
import { isDeepStrictEqual } from 'node:util';
import { bindAddressesOverlap, bindAddressOf, INBOUND_ADDRESS } from '../catalog/bind-address.js';
import type { Protocol, Service } from '../catalog/model.js';
import { LOCAL_APP_IDLE_TIMEOUT_KEY } from '../traffic/local-app.js';
import type { ConfigProblem } from '../traffic/provider.js';
import type { ProxyDefaults, ServiceDefaults } from '../traffic/types.js';
import { authorizationOf } from './authorization.js';
import {
  applyUpstreamSettings,
  defaultConnectTimeoutMs,
  serviceBackends,
  upstreamSettings,
} from './backends.js';
import { deepFreeze } from './freeze.js';
import { InputIndex, PartCache, type MeshInputs, type TrackedReader } from './inputs.js';
import { ChainCompiler, isHttpFamily } from './routes.js';
import { placed } from './locality.js';
import { meshObservability, observabilityProblems } from './observability.js';
import type {
  Backend,
  Mesh,
  MeshGateway,
  MeshGatewayMode,
  MeshInstance,
  MeshObservability,
  MeshService,
  MeshSettings,
} from './types.js';

interface ServicePart {
  readonly service: MeshService;
  readonly problems: readonly ConfigProblem[];
  /** Some backend fails over (most meshes have none: what looks for them is skipped). */
  readonly failover: boolean;
}

/** Parts of the last build, reused by the next one while their inputs are the same objects. */
export class MeshCache {
  readonly services = new PartCache<ServicePart>();
  readonly overrides = new PartCache<readonly Backend[]>();
  /** Each service with its overrides, by the service's part (see withOverrides). */
  readonly withOverrides = new WeakMap<MeshService, WithOverrides>();
  /** The inputs of the last build (what changed since is all a new build looks up). */
  last: InputIndex | undefined;
  /** The last mesh and what patching it needs (see patchMesh). */
  lastMesh: LastMesh | undefined;
  /** The last mesh's observability, kept while equal (see observability()). */
  observability: MeshObservability | undefined;
  /** The last mesh's gateways, kept while equal (see meshGateways()). */
  gateways: readonly MeshGateway[] | undefined;
}

interface WithOverrides {
  readonly overrides: readonly Backend[];
  readonly service: MeshService;
}

interface LastMesh {
  readonly mesh: Mesh;
  readonly catalog: MeshInputs['catalog'];
  /** mesh.services' names. */
  readonly names: readonly string[];
  /** Each service's index in mesh.services (sorted names). */
  readonly at: ReadonlyMap<string, number>;
  readonly parts: readonly ServicePart[];
  /** Problems besides the parts' own: kept while nothing they are made of changes. */
  readonly rest: readonly ConfigProblem[];
  readonly failover: boolean;
  /** Some service reaches other datacenters through mesh gateways. */
  readonly gatewayUsers: boolean;
}

interface SettledProtocol {
  readonly protocol: Protocol;
  readonly from: string;
}

/** service-defaults Protocol, else proxy-defaults Config.protocol, else the catalog's. */
function settleProtocol(
  service: Service,
  defaults: ServiceDefaults | undefined,
  proxyDefaults: ProxyDefaults | undefined,
): SettledProtocol {
  if (defaults?.Protocol)
    return { protocol: defaults.Protocol, from: `service-defaults/${service.name}` };
  const global = proxyDefaults?.Config.protocol;
  if (global) return { protocol: global, from: 'proxy-defaults/global' };
  return { protocol: service.protocol, from: 'catalog' };
}

/** The catalog service's own setting, else proxy-defaults'; tcp has no HTTP connections. */
function localAppIdleTimeout(
  service: Service,
  http: boolean,
  proxyDefaults: ProxyDefaults | undefined,
): Pick<MeshService, 'localAppIdleTimeoutMs'> {
  const ms = service.localAppIdleTimeoutMs ?? proxyDefaults?.Config[LOCAL_APP_IDLE_TIMEOUT_KEY];
  return http && ms !== undefined ? { localAppIdleTimeoutMs: ms } : {};
}

function protocolReader(reader: TrackedReader): (name: string) => Protocol | undefined {
  return (name) => {
    const s = reader.get('service', name);
    return s
      ? settleProtocol(s, reader.get('defaults', name), reader.proxyDefaults).protocol
      : undefined;
  };
}

function instancesOf(service: Service, settings: MeshSettings): MeshInstance[] {
  return service.instances.map((i) => ({
    id: i.id,
    address: i.address,
    port: i.port,
    ...(i.sidecarPort !== undefined ? { sidecarPort: i.sidecarPort } : {}),
    ...(i.localAppAddress !== undefined ? { localAppAddress: i.localAppAddress } : {}),
    health: i.health,
    locality: placed(i, settings),
  }));
}

function buildService(name: string, reader: TrackedReader): ServicePart {
  const service = reader.get('service', name)!;
  const problems: ConfigProblem[] = [];
  const { protocol, from } = settleProtocol(
    service,
    reader.get('defaults', name),
    reader.proxyDefaults,
  );
  const resolver = reader.get('resolver', name);
  const http = isHttpFamily(protocol);
  const chain = new ChainCompiler(reader, protocolReader(reader));
  const routes = http ? chain.routes(name) : [];
  problems.push(...chain.problems);
  if (!http) {
    for (const kind of ['router', 'splitter'] as const) {
      if (reader.get(kind, name)) {
        problems.push({
          kind: `service-${kind}`,
          name,
          message: `service "${name}" is tcp (from ${from}); routing needs http, http2 or grpc, so this entry does not apply`,
        });
      }
    }
  }
  const intentions = reader.get('intentions', name);
  if (!http && intentions?.Sources.some((src) => src.Permissions !== undefined)) {
    problems.push({
      kind: 'service-intentions',
      name,
      message: `service "${name}" is tcp (from ${from}); L7 Permissions cannot apply, so those sources get the default (${reader.settings.intentionsDefault})`,
    });
  }
  // tcp has no Host header to route on: without a fixed local port there is no outbound
  // listener, but the service keeps its cluster (reachable through declared upstreams).
  const outboundPort = protocol === 'tcp' ? service.outboundPort : undefined;
  if (protocol === 'tcp' && outboundPort === undefined) {
    problems.push({
      kind: from === 'catalog' ? 'catalog' : from.split('/')[0]!,
      name,
      message: `service "${name}" is tcp (protocol from ${from}) but has no outbound port; its cluster is served, sidecars get no local listener for it`,
    });
  }
  const meshService: MeshService = {
    name,
    protocol,
    protocolFrom: from,
    ...(outboundPort !== undefined ? { outboundPort } : {}),
    backends: serviceBackends(
      service,
      protocol,
      resolver,
      reader.proxyDefaults,
      reader.settings,
      problems,
    ),
    routes,
    authorization: authorizationOf(name, reader.policy, intentions, reader.settings),
    instances: instancesOf(service, reader.settings),
    upstreamOverrides: [],
    ...(reader.get('defaults', name)?.MeshGateway?.Mode !== undefined
      ? { gatewayMode: reader.get('defaults', name)!.MeshGateway!.Mode! }
      : {}),
    ...(service.upstreams !== undefined ? { upstreams: service.upstreams } : {}),
    ...localAppIdleTimeout(service, http, reader.proxyDefaults),
  };
  const failover = meshService.backends.some((b) => b.failover !== undefined);
  return { service: meshService, problems, failover };
}

/** The backends a service's own proxies see differently (its service-defaults UpstreamConfig). */
function upstreamOverrides(
  name: string,
  reader: TrackedReader,
  backendsOf: (service: string) => readonly Backend[],
  services: readonly string[],
): Backend[] {
  const config = reader.get('defaults', name)?.UpstreamConfig;
  if (!config) return [];
  const targets = config.Defaults ? services : config.Overrides.map((o) => o.Name);
  const out: Backend[] = [];
  for (const target of [...new Set(targets)].sort()) {
    // Read what the target's backends are made of, so a change to it rebuilds the overrides.
    reader.get('service', target);
    reader.get('defaults', target);
    const settings = upstreamSettings(config, target);
    const resolver = reader.get('resolver', target);
    for (const backend of backendsOf(target)) {
      out.push(
        applyUpstreamSettings(
          backend,
          settings,
          resolver,
          defaultConnectTimeoutMs(reader.proxyDefaults, reader.settings),
        ),
      );
    }
  }
  return out;
}

/** What a service's upstream overrides are looked up with (a full build or a patch). */
interface OverridesLookup {
  index: InputIndex;
  cache: MeshCache;
  changed: ReadonlySet<string> | undefined;
  names: readonly string[];
  backendsOf: (service: string) => readonly Backend[];
}

/** The service with its upstream overrides (cached per service), or as it was if it has none. */
function withOverrides(name: string, service: MeshService, at: OverridesLookup): MeshService {
  const overrides = at.cache.overrides.get(
    name,
    at.index,
    (reader) => deepFreeze(upstreamOverrides(name, reader, at.backendsOf, at.names)),
    at.changed,
  );
  if (overrides.length === 0) return service;
  // The last build's object while its part and overrides are: a new one on every full
  // build (any traffic edit) made the service count as changed, re-translated and visited.
  const kept = at.cache.withOverrides.get(service);
  if (kept?.overrides === overrides) return kept.service;
  const out: MeshService = Object.freeze({ ...service, upstreamOverrides: overrides });
  at.cache.withOverrides.set(service, { overrides, service: out });
  return out;
}

function entryProblems(inputs: MeshInputs, names: { has(name: string): boolean }): ConfigProblem[] {
  const t = inputs.traffic;
  const problems: ConfigProblem[] = [];
  const kinds = [
    ['service-defaults', t.serviceDefaults],
    ['service-router', t.routers],
    ['service-splitter', t.splitters],
    ['service-resolver', t.resolvers],
    ['service-intentions', t.intentions],
  ] as const;
  for (const [kind, entries] of kinds) {
    for (const name of entries.keys()) {
      if (!names.has(name)) {
        problems.push({
          kind,
          name,
          message: `service "${name}" is not in the catalog; the entry applies once it is`,
        });
      }
    }
  }
  return problems;
}

/**
 * Declared upstreams the catalog does not have (a typo, or not registered yet): their sidecars
 * get nothing for them (docs/scoping.md), said here rather than only as a 404 at the sidecar.
 */
function unknownUpstreamProblems(
  services: readonly MeshService[],
  index: { hasService(name: string): boolean },
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const s of services) {
    for (const u of s.upstreams ?? []) {
      if (index.hasService(u.name)) continue;
      problems.push({
        kind: 'catalog',
        name: s.name,
        message: `upstream "${u.name}" is not in the catalog: ${s.name}'s sidecars get no route for it until it is${u.localBindPort !== undefined ? ` (its local bind port answers 503 meanwhile)` : ''}`,
      });
    }
  }
  return problems;
}

const hasBindPort = (u: { readonly localBindPort?: number }) => u.localBindPort !== undefined;

function sameSidecarPorts(a: MeshService, b: MeshService): boolean {
  if (a.instances === b.instances) return true;
  const ports = (s: MeshService) => s.instances.map((i) => `${i.id} ${i.sidecarPort}`).sort();
  const x = ports(a);
  const y = ports(b);
  return x.length === y.length && x.every((p, i) => p === y[i]);
}

/**
 * Local bind ports on a port the sidecar already listens on (a tcp service's outbound port at
 * 127.0.0.1, an instance's own inbound port at 0.0.0.0): that listener is left out
 * (proxy.ts), and reported.
 */
function bindPortProblems(services: readonly MeshService[]): ConfigProblem[] {
  const tcp = new Map<number, string>();
  for (const s of services) if (s.outboundPort !== undefined) tcp.set(s.outboundPort, s.name);
  const problems: ConfigProblem[] = [];
  for (const s of services) {
    for (const u of s.upstreams ?? []) {
      if (u.localBindPort === undefined) continue;
      const report = (why: string) =>
        problems.push({
          kind: 'catalog',
          name: s.name,
          message: `upstream "${u.name}": localBindPort ${u.localBindPort} is ${why}`,
        });
      const address = bindAddressOf(u);
      const owner = tcp.get(u.localBindPort);
      if (owner !== undefined && bindAddressesOverlap(address, '127.0.0.1')) {
        report(`the outbound port of tcp service "${owner}"; no listener there for "${u.name}"`);
      }
      if (!bindAddressesOverlap(address, INBOUND_ADDRESS)) continue;
      for (const i of s.instances) {
        if (i.sidecarPort !== u.localBindPort) continue;
        report(
          `the sidecar port of instance ${i.id} (its inbound listener, on ${INBOUND_ADDRESS}); no listener there for "${u.name}" on that sidecar`,
        );
      }
    }
  }
  return problems;
}

/** Failover targets (another service or subset) that do not exist: skipped, and reported. */
function failoverTargetProblems(services: readonly MeshService[]): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  // Made only when some backend fails over: most meshes have none, and at 10,000 services
  // the set cost ~20 ms per build.
  let names: Set<string> | undefined;
  for (const s of services) {
    for (const b of s.backends) {
      const targets = b.failover?.targets;
      if (!targets || targets.length === 0) continue;
      names ??= new Set(services.flatMap((x) => x.backends.map((y) => y.name)));
      for (const t of targets) {
        if (names.has(t)) continue;
        const [service, subset] = t.split('~');
        problems.push({
          kind: 'service-resolver',
          name: s.name,
          message: `Failover: target ${subset !== undefined ? `subset "${subset}" of ` : ''}service "${service}" does not exist; skipped`,
        });
      }
    }
  }
  return problems;
}

/**
 * The catalog's mesh gateways, as the last build's array when equal: a full build (any
 * traffic edit) made a new equal array, so the mesh did not show that they were unchanged
 * (test/mesh/stable-identity.test.ts holds every part of the mesh to that).
 */
function meshGateways(inputs: MeshInputs, cache: MeshCache): readonly MeshGateway[] {
  cache.gateways = keptWhileEqual(cache.gateways, gatewaysOf(inputs));
  return cache.gateways;
}

/**
 * `last` while `built` is deep-equal to it: later stages compare mesh parts by identity
 * (translation patches, the fan-out's touched watchers), so equal inputs keep their objects.
 */
function keptWhileEqual<T>(last: T | undefined, built: T): T {
  return last !== undefined && isDeepStrictEqual(built, last) ? last : built;
}

function gatewaysOf(inputs: MeshInputs): readonly MeshGateway[] {
  return deepFreeze(
    (inputs.catalog.gateways ?? []).map((g) => ({
      id: g.id,
      datacenter: g.datacenter ?? inputs.settings.datacenter,
      address: g.address,
      port: g.port,
      wanAddress: g.wanAddress ?? g.address,
      wanPort: g.wanPort ?? g.port,
      healthy: g.health !== 'critical',
    })),
  );
}

/**
 * Gateway modes that cannot work: without mTLS there is no SNI to route on, and a datacenter
 * without a gateway cannot be reached through one (its instances are then reached directly).
 */
function gatewayProblems(
  services: readonly MeshService[],
  gateways: readonly MeshGateway[],
  defaultMode: MeshGatewayMode,
  settings: MeshSettings,
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const users = services.filter((s) => (s.gatewayMode ?? defaultMode) !== 'none');
  if (users.length === 0) return problems;
  const where = (s: MeshService) =>
    s.gatewayMode !== undefined
      ? { kind: 'service-defaults', name: s.name }
      : { kind: 'proxy-defaults', name: 'global' };
  if (!settings.mtls) {
    const w = where(users[0]!);
    problems.push({
      ...w,
      message:
        'MeshGateway: gateways route by the SNI of mesh TLS; with --mtls off every datacenter is reached directly',
    });
    return problems;
  }
  const withGateway = new Set(gateways.map((g) => g.datacenter));
  const dcs = new Set(services.flatMap((s) => s.instances.map((i) => i.locality.datacenter)));
  for (const dc of [...dcs].sort()) {
    if (!withGateway.has(dc)) {
      problems.push({
        ...where(users[0]!),
        message: `MeshGateway: datacenter "${dc}" has no mesh gateway in the catalog; its instances are reached directly`,
      });
    }
  }
  return problems;
}

export function buildMesh(inputs: MeshInputs, cache = new MeshCache()): Mesh {
  const index = new InputIndex(inputs);
  const changed = index.changedServicesSince(cache.last);
  cache.last = index;
  const patched = changed && patchMesh(inputs, index, changed, cache);
  if (patched) return patched;
  cache.lastMesh = undefined;
  cache.services.startBuild(changed !== undefined);
  cache.overrides.startBuild(changed !== undefined);
  for (const name of changed ?? []) {
    if (index.hasService(name)) continue;
    cache.services.forget(name);
    cache.overrides.forget(name);
  }
  const names = inputs.catalog.services.map((s) => s.name).sort();
  const parts = names.map((name) =>
    cache.services.get(name, index, (reader) => deepFreeze(buildService(name, reader)), changed),
  );
  // Only services with upstream overrides ask: the map is made for them alone.
  let byName: Map<string, ServicePart> | undefined;
  const backendsOf = (s: string) => {
    byName ??= new Map(names.map((name, i) => [name, parts[i]!]));
    return byName.get(s)?.service.backends ?? [];
  };
  const services: MeshService[] = names.map((name, i) => {
    const part = parts[i]!;
    return withOverrides(name, part.service, { index, cache, changed, names, backendsOf });
  });
  const problems: ConfigProblem[] = [];
  let failover = false;
  for (const p of parts) {
    if (p.problems.length > 0) problems.push(...p.problems);
    if (p.failover) failover = true;
  }
  const rest: ConfigProblem[] = [];
  rest.push(...entryProblems(inputs, { has: (name) => index.hasService(name) }));
  if (failover) rest.push(...failoverTargetProblems(services));
  rest.push(...bindPortProblems(services));
  rest.push(...unknownUpstreamProblems(services, index));
  const gateways = meshGateways(inputs, cache);
  const gatewayMode = inputs.traffic.proxyDefaults?.MeshGateway?.Mode ?? 'none';
  rest.push(...gatewayProblems(services, gateways, gatewayMode, inputs.settings));
  rest.push(...observabilityProblems(inputs.traffic, inputs.settings));
  problems.push(...rest);
  const mesh = freezeMesh(inputs, services, gateways, gatewayMode, problems, failover, cache);
  cache.lastMesh = {
    mesh,
    catalog: inputs.catalog,
    names,
    at: new Map(names.map((name, i) => [name, i])),
    parts,
    rest,
    failover,
    gatewayUsers: services.some((x) => (x.gatewayMode ?? gatewayMode) !== 'none'),
  };
  return mesh;
}

function freezeMesh(
  inputs: MeshInputs,
  services: MeshService[],
  gateways: readonly MeshGateway[],
  gatewayMode: MeshGatewayMode,
  problems: ConfigProblem[],
  failover: boolean,
  cache: MeshCache,
): Mesh {
  const mesh: Mesh = Object.freeze({
    settings: inputs.settings,
    services: Object.freeze(services),
    gateways,
    gatewayMode,
    problems: Object.freeze(problems),
    unsupported: inputs.traffic.unsupported,
    ...observability(inputs, cache),
  });
  if (!failover) failoverFree.add(mesh);
  return mesh;
}

/** At most this share of the services changed, a build patches the last mesh. */
const PATCH_SHARE = 1 / 8;

/**
 * The last mesh with only the parts that read a changed service rebuilt (a catalog-only
 * change to a few services: the same services by name, the same gateways). Going through
 * every service cost most of a build at 10,000 services (bench W10). Undefined when that
 * does not hold, or when what the other problems are made of may have changed (failover
 * targets, a tcp port or local bind port, mesh gateways in use): then the full build runs.
 */
function patchMesh(
  inputs: MeshInputs,
  index: InputIndex,
  changed: ReadonlySet<string>,
  cache: MeshCache,
): Mesh | undefined {
  const last = cache.lastMesh;
  if (!last || inputs.catalog.gateways !== last.catalog.gateways) return undefined;
  if (changed.size > Math.max(16, last.parts.length * PATCH_SHARE)) return undefined;
  for (const name of changed) if (!last.at.has(name) || !index.hasService(name)) return undefined;
  // Nothing of the other problems may depend on a changed service: no gateway user, no
  // failover, and the changed services' ports and upstreams as they were.
  if (last.failover || last.gatewayUsers) return undefined;
  cache.services.startBuild(true);
  cache.overrides.startBuild(true);
  const keys = cache.services.readersOf(changed);
  for (const key of cache.overrides.readersOf(changed)) keys.add(key);
  const parts = [...last.parts];
  const services = [...last.mesh.services];
  const names = last.names;
  let problemsChanged = false;
  const at: number[] = [];
  // Parts first, then overrides: an override reads other services' (possibly new) backends.
  for (const key of keys) {
    const i = last.at.get(key);
    if (i === undefined) continue;
    const before = parts[i]!;
    const part = cache.services.get(
      key,
      index,
      (reader) => deepFreeze(buildService(key, reader)),
      changed,
    );
    if (part.failover) {
      cache.lastMesh = undefined;
      return undefined;
    }
    if (
      part.problems !== before.problems &&
      (part.problems.length > 0 || before.problems.length > 0)
    )
      problemsChanged = true;
    parts[i] = part;
    at.push(i);
  }
  const backendsOf = (s: string) => parts[last.at.get(s) ?? -1]?.service.backends ?? [];
  for (const i of at) {
    const name = names[i]!;
    const part = parts[i]!;
    const service = withOverrides(name, part.service, { index, cache, changed, names, backendsOf });
    const was = services[i]!;
    if (
      service.gatewayMode !== undefined ||
      service.outboundPort !== was.outboundPort ||
      service.upstreams !== was.upstreams ||
      // Its bind ports are checked against its instances' sidecar ports (bindPortProblems);
      // a health change keeps the ports, and the patch.
      (service.upstreams?.some(hasBindPort) && !sameSidecarPorts(service, was))
    ) {
      cache.lastMesh = undefined;
      return undefined;
    }
    services[i] = service;
  }
  const problems: ConfigProblem[] = [];
  if (problemsChanged) {
    for (const p of parts) if (p.problems.length > 0) problems.push(...p.problems);
    problems.push(...last.rest);
  } else {
    problems.push(...last.mesh.problems);
  }
  const mesh = freezeMesh(
    inputs,
    services,
    last.mesh.gateways,
    last.mesh.gatewayMode,
    problems,
    false,
    cache,
  );
  // The last mesh's by-name index, moved over with the changed services (making one for
  // 10,000 services was the first proxy view's cost after every change); the last mesh makes
  // itself a new one if it is asked again.
  const byName = serviceIndexes.get(last.mesh);
  if (byName) {
    for (const i of at) byName.set(names[i]!, services[i]!);
    serviceIndexes.delete(last.mesh);
    serviceIndexes.set(mesh, byName);
  }
  cache.lastMesh = { ...last, mesh, catalog: inputs.catalog, parts };
  return mesh;
}

/** Meshes built here where no backend fails over (their users skip looking for one). */
const failoverFree = new WeakSet<Mesh>();

/** True when `mesh` is known to have no backend that fails over. */
export function withoutFailover(mesh: Mesh): boolean {
  return failoverFree.has(mesh);
}

/**
 * The mesh's tracing and access logs, as the last build's object when they are equal: the
 * translation patches the last build only while tracing is the same object, so a new equal
 * one on every build made every change with tracing on a full translation.
 */
function observability(inputs: MeshInputs, cache: MeshCache): Pick<Mesh, 'observability'> {
  const o = keptWhileEqual(cache.observability, meshObservability(inputs.traffic, inputs.settings));
  cache.observability = o;
  return o ? { observability: o } : {};
}

/** A service of the mesh by name. */
export function meshService(mesh: Mesh, name: string): MeshService | undefined {
  return serviceIndex(mesh).get(name);
}

const serviceIndexes = new WeakMap<Mesh, Map<string, MeshService>>();
function serviceIndex(mesh: Mesh): Map<string, MeshService> {
  let index = serviceIndexes.get(mesh);
  if (!index) serviceIndexes.set(mesh, (index = new Map(mesh.services.map((s) => [s.name, s]))));
  return index;
}
