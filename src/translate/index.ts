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
import { outboundRouteConfiguration } from './routes.js';
import { downstreamMtls, spiffeIdOf } from './tls.js';
import { httpRbacFilter, networkRbacFilter } from '../policy/rbac.js';
import type { Service } from '../catalog/model.js';
import type { InboundSecurity } from './listeners.js';
import {
  DEFAULT_TRANSLATE_OPTIONS,
  emptyResourceSet,
  type ResourceSet,
  type TranslateOptions,
} from './types.js';

export * from './names.js';

/** What every sidecar gets: service clusters, their endpoints, outbound routes, TCP listeners. */
export function translateShared(
  catalog: Catalog,
  opts: TranslateOptions = DEFAULT_TRANSLATE_OPTIONS,
): ResourceSet {
  const resources = emptyResourceSet();
  const services = [...catalog.services].sort((a, b) => compare(a.name, b.name));
  for (const service of services) {
    const name = serviceClusterName(service.name);
    resources.clusters.set(name, serviceCluster(service, opts));
    resources.endpoints.set(
      name,
      serviceLoadAssignment(service, opts.security?.mtls !== undefined),
    );
    // The schema requires outboundPort for tcp; a source that skipped validation loses only
    // the local listener for that service, not the whole translation.
    if (service.protocol === 'tcp' && service.outboundPort !== undefined) {
      resources.listeners.set(
        outboundTcpListenerName(service.name),
        outboundTcpListener(service.name, service.outboundPort),
      );
    }
  }
  resources.routes.set(OUTBOUND_ROUTE_NAME, outboundRouteConfiguration(catalog, opts));
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
