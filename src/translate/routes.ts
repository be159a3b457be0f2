// Route configurations: the shared outbound one (RDS) and a node's inline inbound one.
import type { Catalog, Protocol, Service } from '../catalog/model.js';
import { duration } from './clusters.js';
import { compare } from './endpoints.js';
import {
  LOCAL_APP_VIRTUAL_HOST,
  OUTBOUND_ROUTE_NAME,
  inboundRouteName,
  localAppClusterName,
  serviceClusterName,
} from './names.js';
import type { ResourceMessage, TranslateOptions } from './types.js';

function routeAllTo(cluster: string, protocol: Protocol): ResourceMessage {
  // gRPC streams are long-lived; Envoy's default 15 s route timeout would cut them.
  const route = protocol === 'grpc' ? { cluster, timeout: duration('0s') } : { cluster };
  return { match: { prefix: '/' }, route };
}

/** Host names an app may use for a service, with or without the mesh suffix and a port. */
export function serviceDomains(service: string, domainSuffix: string): string[] {
  const fqdn = `${service}.${domainSuffix}`;
  return [service, `${service}:*`, fqdn, `${fqdn}:*`];
}

/** The outbound virtual host of one HTTP-family service. */
export function serviceVirtualHost(service: Service, opts: TranslateOptions): ResourceMessage {
  return {
    name: service.name,
    domains: serviceDomains(service.name, opts.domainSuffix),
    routes: [routeAllTo(serviceClusterName(service.name), service.protocol)],
  };
}

/**
 * One virtual host per HTTP-family service. Emitted even with no services: every outbound
 * listener asks RDS for it, and a missing route configuration keeps listeners warming.
 */
export function outboundRouteConfiguration(
  catalog: Catalog,
  opts: TranslateOptions,
): ResourceMessage {
  const virtualHosts = catalog.services
    .filter((s) => s.protocol !== 'tcp')
    .sort((a, b) => compare(a.name, b.name))
    .map((s) => serviceVirtualHost(s, opts));
  return outboundRouteConfigurationOf(virtualHosts);
}

/** The outbound route configuration from its virtual hosts (sorted by service name). */
export function outboundRouteConfigurationOf(
  virtualHosts: readonly ResourceMessage[],
): ResourceMessage {
  return { name: OUTBOUND_ROUTE_NAME, virtualHosts };
}

/** Everything arriving at a node's sidecar port goes to its own app. */
export function inboundRouteConfiguration(nodeId: string, protocol: Protocol): ResourceMessage {
  return {
    name: inboundRouteName(nodeId),
    virtualHosts: [
      {
        name: LOCAL_APP_VIRTUAL_HOST,
        domains: ['*'],
        routes: [routeAllTo(localAppClusterName(nodeId), protocol)],
      },
    ],
  };
}
