// Catalog (+ the identity of a sidecar) in, Envoy resources out. Pure: no I/O, no encoding.
// A sidecar's full configuration is translateShared(catalog) ∪ translateProxy(catalog, proxy).
import { findInstance, type Catalog, type ProxyIdentity } from '../catalog/model.js';
import { localAppCluster, serviceCluster } from './clusters.js';
import { compare, serviceLoadAssignment } from './endpoints.js';
import { inboundListener, outboundHttpListener, outboundTcpListener } from './listeners.js';
import {
  OUTBOUND_ROUTE_NAME,
  inboundListenerName,
  localAppClusterName,
  outboundHttpListenerName,
  outboundTcpListenerName,
  serviceClusterName,
} from './names.js';
import { outboundRouteConfigurationOf, serviceVirtualHost } from './routes.js';
import { downstreamMtls, spiffeIdOf } from './tls.js';
import { httpRbacFilter, networkRbacFilter } from '../policy/rbac.js';
import type { Service } from '../catalog/model.js';
import type { InboundSecurity } from './listeners.js';
import {
  DEFAULT_TRANSLATE_OPTIONS,
  emptyResourceSet,
  type ResourceMessage,
  type ResourceSet,
  type TranslateOptions,
} from './types.js';

export * from './names.js';

/** What every sidecar gets: service clusters, their endpoints, outbound routes, TCP listeners. */
export function translateShared(
  catalog: Catalog,
  opts: TranslateOptions = DEFAULT_TRANSLATE_OPTIONS,
): ResourceSet {
  const services = [...catalog.services].sort((a, b) => compare(a.name, b.name));
  const parts = services.map((service) => translateService(service, opts));
  return assembleShared(parts, outboundRouteConfigurationOf(virtualHostsOf(parts)));
}

/**
 * One service's share of the shared resources. It depends on nothing but the service and the
 * options, so a caller may keep it while the service is unchanged (the snapshot store does).
 */
export interface ServiceResources {
  readonly name: string;
  readonly cluster: ResourceMessage;
  readonly endpoints: ResourceMessage;
  /** HTTP-family services: the outbound virtual host. */
  readonly virtualHost?: ResourceMessage;
  /** tcp services: the local listener every sidecar has for it. */
  readonly tcpListener?: ResourceMessage;
}

export function translateService(service: Service, opts: TranslateOptions): ServiceResources {
  return {
    name: service.name,
    cluster: serviceCluster(service, opts),
    endpoints: serviceLoadAssignment(service, opts.security?.mtls !== undefined),
    virtualHost: service.protocol === 'tcp' ? undefined : serviceVirtualHost(service, opts),
    // The schema requires outboundPort for tcp; a source that skipped validation loses only
    // the local listener for that service, not the whole translation.
    tcpListener:
      service.protocol === 'tcp' && service.outboundPort !== undefined
        ? outboundTcpListener(service.name, service.outboundPort)
        : undefined,
  };
}

/** The outbound virtual hosts of `parts` (sorted by service name), in order. */
export function virtualHostsOf(parts: readonly ServiceResources[]): ResourceMessage[] {
  const hosts: ResourceMessage[] = [];
  for (const p of parts) if (p.virtualHost) hosts.push(p.virtualHost);
  return hosts;
}

/** The shared resource set from per-service parts (sorted by service name) and the routes. */
export function assembleShared(
  parts: readonly ServiceResources[],
  outboundRoutes: ResourceMessage,
): ResourceSet {
  const resources = emptyResourceSet();
  for (const p of parts) {
    const name = serviceClusterName(p.name);
    resources.clusters.set(name, p.cluster);
    resources.endpoints.set(name, p.endpoints);
    if (p.tcpListener) resources.listeners.set(outboundTcpListenerName(p.name), p.tcpListener);
  }
  resources.routes.set(OUTBOUND_ROUTE_NAME, outboundRoutes);
  return resources;
}

/**
 * What depends on the node: its outbound HTTP listener (its port), and, when the node is a
 * meshed instance of the catalog, its inbound listener and local app cluster.
 */
export function translateProxy(
  catalog: Catalog,
  proxy: ProxyIdentity,
  opts: TranslateOptions = DEFAULT_TRANSLATE_OPTIONS,
): ResourceSet {
  const resources = emptyResourceSet();
  resources.listeners.set(
    outboundHttpListenerName(proxy.outboundPort),
    outboundHttpListener(proxy.outboundPort),
  );
  const found = findInstance(catalog, proxy.nodeId);
  const sidecarPort = found?.instance.sidecarPort;
  // With authenticated proxies, a node id naming another service's instance gets nothing of it.
  const mayServe = !opts.security?.authenticatedProxies || found?.service.name === proxy.service;
  if (found && sidecarPort !== undefined && mayServe) {
    const { service, instance } = found;
    resources.listeners.set(
      inboundListenerName(proxy.nodeId),
      inboundListener(
        proxy.nodeId,
        service.protocol,
        sidecarPort,
        inboundSecurity(catalog, service, opts),
      ),
    );
    resources.clusters.set(
      localAppClusterName(proxy.nodeId),
      localAppCluster(proxy.nodeId, service.protocol, instance.port, opts),
    );
  }
  return resources;
}

/** mTLS on the inbound listener, and the policy's RBAC for this destination when there is one. */
function inboundSecurity(
  catalog: Catalog,
  service: Service,
  opts: TranslateOptions,
): InboundSecurity | undefined {
  const identity = opts.security?.mtls;
  if (!identity) return undefined;
  const transportSocket = downstreamMtls(identity, service.protocol !== 'tcp');
  const policy = opts.security?.policy;
  if (!policy) return { transportSocket };
  const services = catalog.services.map((s) => s.name);
  const rbacOptions = { principalOf: (s: string) => spiffeIdOf(identity, s) };
  const rbac =
    service.protocol === 'tcp'
      ? networkRbacFilter(policy, service.name, services, rbacOptions)
      : httpRbacFilter(policy, service.name, services, rbacOptions);
  return { transportSocket, rbac };
}
