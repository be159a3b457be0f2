// A connected sidecar as the mesh sees it: its identity, its outbound port, and, when it is
// a meshed instance it may serve, its inbound side.
import { bindAddressesOverlap, bindAddressOf, INBOUND_ADDRESS } from '../catalog/bind-address.js';
import type { ProxyIdentity } from '../catalog/model.js';
import { meshService } from './build.js';
import { proxyAccessLog } from './observability.js';
import { proxyScope } from './scope.js';
import type {
  Backend,
  Mesh,
  MeshBindUpstream,
  MeshGateway,
  MeshInstance,
  MeshProxy,
  MeshProxyDns,
  MeshService,
  PlacedLocality,
} from './types.js';

type Located = { service: MeshService; instance: MeshInstance };

const instanceIndexes = new WeakMap<Mesh, Map<string, Located>>();
/**
 * The index of the mesh last asked about, updated in place for the next one: a build keeps
 * unchanged services' objects, so only changed services' instances move. Indexing 30,000
 * instances afresh cost ~17 ms per change at 10,000 services (bench W10).
 */
let latest: { mesh: Mesh; index: Map<string, Located>; unique: boolean } | undefined;
/** Meshes that were the latest once: asked about again, they are older than it. */
const superseded = new WeakSet<Mesh>();

/** `unique`: no instance id is held by two services (so one can be moved without a scan). */
function indexAll(mesh: Mesh): { index: Map<string, Located>; unique: boolean } {
  const index = new Map<string, Located>();
  let unique = true;
  for (const service of mesh.services) {
    for (const instance of service.instances) {
      const held = index.get(instance.id);
      if (!held) index.set(instance.id, { service, instance });
      else if (held.service !== service) unique = false;
    }
  }
  return { index, unique };
}

/**
 * `from` (the index of `before`) made into the index of `after`, when the two meshes have
 * the same services by name, in order; false (and `from` possibly changed) otherwise, or when
 * an instance id moved between services (first-wins order would need a full pass).
 */
function reindex(from: Map<string, Located>, before: Mesh, after: Mesh): boolean {
  const a = before.services;
  const b = after.services;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i]!.name !== b[i]!.name) return false;
  for (let i = 0; i < a.length; i++) {
    const old = a[i]!;
    const service = b[i]!;
    if (old === service) continue;
    for (const instance of old.instances) {
      if (from.get(instance.id)?.service === old) from.delete(instance.id);
    }
    for (const instance of service.instances) {
      const held = from.get(instance.id);
      if (held?.service === service) continue; // a repeated id within the service: first wins
      if (held) return false;
      from.set(instance.id, { service, instance });
    }
  }
  return true;
}

/** The instance with this id (= the Envoy node id of its sidecar), if any. */
export function findMeshInstance(mesh: Mesh, nodeId: string): Located | undefined {
  if (latest?.mesh === mesh) return latest.index.get(nodeId);
  let index = instanceIndexes.get(mesh);
  if (!index && superseded.has(mesh)) {
    // An older mesh (a dump of an earlier snapshot): an index of its own, the latest stays.
    index = indexAll(mesh).index;
    instanceIndexes.set(mesh, index);
  }
  if (index) return index.get(nodeId);
  if (latest) superseded.add(latest.mesh);
  if (latest?.unique && reindex(latest.index, latest.mesh, mesh)) {
    latest = { mesh, index: latest.index, unique: true };
  } else {
    latest = { mesh, ...indexAll(mesh) };
  }
  return latest.index.get(nodeId);
}

export function meshProxy(mesh: Mesh, proxy: ProxyIdentity): MeshProxy {
  const found = findMeshInstance(mesh, proxy.nodeId);
  // With authenticated proxies, a node id naming another service's instance gets nothing of it.
  const mayServe = !mesh.settings.authenticatedProxies || found?.service.name === proxy.service;
  const sidecarPort = found?.instance.sidecarPort;
  const own = proxy.service ? meshService(mesh, proxy.service) : undefined;
  const gateway = gatewayOf(mesh, proxy);
  if (gateway) {
    return {
      nodeId: proxy.nodeId,
      service: proxy.service,
      outboundPort: proxy.outboundPort,
      locality: { datacenter: gateway.datacenter },
      gatewayMode: 'none',
      gateway,
      upstreamOverrides: [],
      ...(proxy.exclusivePorts ? { exclusivePorts: true } : {}),
    };
  }
  const scope = proxyScope(mesh, proxy.service);
  const inboundPort = found && mayServe ? sidecarPort : undefined;
  // A bind port listens whether or not its upstream exists (as Consul's sidecars do): an app
  // started before its upstream, or calling it while its only instance is replaced, gets a 503
  // from the listener, not a refused connection (translate: missingBindRouteConfiguration).
  const bindUpstreams: MeshBindUpstream[] = [];
  for (const u of own?.upstreams ?? []) {
    if (u.localBindPort === undefined) continue;
    const target = meshService(mesh, u.name);
    // A port the sidecar already listens on (its outbound port, a tcp service's, its inbound
    // one; the mesh reports the last two as problems): a second listener there would fail the
    // whole update (bind-address.ts).
    const address = bindAddressOf(u);
    if (
      bindAddressesOverlap(address, '127.0.0.1') &&
      takenPorts(mesh, proxy.outboundPort).has(u.localBindPort)
    ) {
      continue;
    }
    if (inboundPort === u.localBindPort && bindAddressesOverlap(address, INBOUND_ADDRESS)) continue;
    bindUpstreams.push({
      service: u.name,
      protocol: target?.protocol ?? 'http',
      address,
      port: u.localBindPort,
    });
  }
  return {
    nodeId: proxy.nodeId,
    service: proxy.service,
    outboundPort: proxy.outboundPort,
    ...(found && inboundPort !== undefined
      ? {
          inbound: {
            service: found.service.name,
            protocol: found.service.protocol,
            sidecarPort: inboundPort,
            appPort: found.instance.port,
            ...(found.instance.localAppAddress !== undefined
              ? { appAddress: found.instance.localAppAddress }
              : {}),
            authorization: found.service.authorization,
            ...(found.service.localAppIdleTimeoutMs !== undefined
              ? { localAppIdleTimeoutMs: found.service.localAppIdleTimeoutMs }
              : {}),
          },
        }
      : {}),
    locality: proxyLocality(mesh, proxy),
    gatewayMode: own?.gatewayMode ?? mesh.gatewayMode,
    ...(gateway ? { gateway } : {}),
    upstreamOverrides: inScope(own?.upstreamOverrides ?? [], scope.services),
    ...observabilityOf(mesh, proxy.service),
    ...(proxy.dnsPort !== undefined
      ? { dns: proxyDns(mesh, proxy.dnsPort, proxy.dnsForward !== false, scope.services) }
      : {}),
    ...(scope.services !== undefined ? { scope } : {}),
    ...(bindUpstreams.length > 0 ? { bindUpstreams } : {}),
    ...(proxy.exclusivePorts ? { exclusivePorts: true } : {}),
  };
}

const tcpPorts = new WeakMap<Mesh, ReadonlySet<number>>();
/** Ports every sidecar listens on at 127.0.0.1: tcp services' outbound ports, and its own. */
function takenPorts(mesh: Mesh, outboundPort: number): ReadonlySet<number> {
  let ports = tcpPorts.get(mesh);
  if (!ports) {
    ports = new Set(
      mesh.services.flatMap((s) => (s.outboundPort !== undefined ? [s.outboundPort] : [])),
    );
    tcpPorts.set(mesh, ports);
  }
  return ports.has(outboundPort) ? ports : new Set([...ports, outboundPort]);
}

/** Overrides of services the proxy receives (an override outside its scope is not sent). */
function inScope(overrides: readonly Backend[], services: readonly string[] | undefined) {
  if (!services || overrides.length === 0) return overrides;
  const keep = new Set(services);
  const out = overrides.filter((b) => keep.has(b.service));
  return out.length === overrides.length ? overrides : out;
}

function observabilityOf(mesh: Mesh, service: string): Pick<MeshProxy, 'tracing' | 'accessLog'> {
  const tracing = mesh.observability?.tracing;
  const accessLog = proxyAccessLog(mesh.observability, service);
  return { ...(tracing ? { tracing } : {}), ...(accessLog ? { accessLog } : {}) };
}

const namesByMesh = new WeakMap<Mesh, readonly string[]>();
/** The last names handed out: an equal list in the next mesh is this very array. */
let lastNames: readonly string[] = Object.freeze([]);

/**
 * The names a sidecar's DNS listener answers: every service's. The same array while the set
 * of services stays the same, so proxies' own resources are not rebuilt on endpoint changes.
 */
export function meshServiceNames(mesh: Mesh): readonly string[] {
  let names = namesByMesh.get(mesh);
  if (!names) {
    const now = mesh.services.map((s) => s.name);
    names =
      now.length === lastNames.length && now.every((n, i) => n === lastNames[i])
        ? lastNames
        : Object.freeze(now);
    lastNames = names;
    namesByMesh.set(mesh, names);
  }
  return names;
}

/** A scoped sidecar's DNS listener answers only the names of its scope (docs/scoping.md). */
function proxyDns(
  mesh: Mesh,
  port: number,
  forward: boolean,
  scoped?: readonly string[],
): MeshProxyDns {
  return {
    port,
    domainSuffix: mesh.settings.domainSuffix,
    names: scoped ?? meshServiceNames(mesh),
    forward,
  };
}

/**
 * Where a proxy runs: each part its node states, else its registration's (the catalog
 * instance with its node id), else the mesh's own datacenter.
 */
export function proxyLocality(mesh: Mesh, proxy: ProxyIdentity): PlacedLocality {
  const own = proxy.locality;
  const registered = findMeshInstance(mesh, proxy.nodeId)?.instance.locality;
  const datacenter = own?.datacenter ?? registered?.datacenter ?? mesh.settings.datacenter;
  // Region and zone belong to a datacenter: take the registration's only for the same one.
  const base = registered?.datacenter === datacenter ? registered : undefined;
  const region = own?.region ?? base?.region;
  const zone = own?.zone ?? base?.zone;
  return {
    datacenter,
    ...(region !== undefined ? { region } : {}),
    ...(zone !== undefined ? { zone } : {}),
  };
}

/** The service name a mesh gateway's token and node claim. */
export const MESH_GATEWAY_SERVICE = 'mesh-gateway';

/**
 * The catalog gateway a node is, if any. With authenticated proxies the node must also claim
 * (and its token hold) the gateway service, so a sidecar cannot pose as a gateway.
 */
export function gatewayOf(mesh: Mesh, proxy: ProxyIdentity): MeshGateway | undefined {
  const gateway = mesh.gateways.find((g) => g.id === proxy.nodeId);
  if (!gateway) return undefined;
  if (mesh.settings.authenticatedProxies && proxy.service !== MESH_GATEWAY_SERVICE)
    return undefined;
  return gateway;
}
