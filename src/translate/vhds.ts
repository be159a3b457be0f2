// VHDS (docs/routes-vhds.md): a delta sidecar whose bootstrap says node.metadata.vhds gets the
// outbound route configuration without virtual hosts, and each virtual host as a resource of
// its own, so a change to one service's routes sends that service's host only. The rules of
// that form live here; the snapshot store applies them to the encoded resources
// (snapshot/vhds.ts), the goldens to the translated ones (vhdsResourceSet).
import type { RouteConfiguration, VirtualHost } from '../protos/envoy-types.js';
import { adsConfigSource } from './envoy.js';
import { OUTBOUND_ROUTE_NAME } from './names.js';
import type { ResourceSet } from './types.js';

/**
 * A virtual host's resource name, `<route configuration>/<host>` (Envoy's VHDS naming). The
 * host carries the same name: Envoy 1.40 removes a VHDS host by the host's own name (a host
 * named otherwise stays routed after its removal: measured).
 */
export function vhdsHostName(route: string, host: string): string {
  return `${route}/${host}`;
}

/** The route configuration whose virtual hosts come over VHDS (ADS, delta). */
export function vhdsRouteConfiguration(name: string): RouteConfiguration {
  return { name, vhds: { configSource: adsConfigSource() } };
}

/**
 * Stands in for the hosts of a route configuration that has none: Envoy keeps a listener
 * initializing until a VHDS update adds or removes a host (an empty one does not count), for
 * its initial fetch timeout (15 s). Its domain is no service's (`_` is not in a DNS label).
 */
export const NO_SERVICES_HOST = '_none';

export function noServicesVirtualHost(route: string): VirtualHost {
  return {
    name: vhdsHostName(route, NO_SERVICES_HOST),
    domains: [`${NO_SERVICES_HOST}.invalid`],
  };
}

/** Route configurations served over VHDS: the outbound one (one host per service). */
export function servedOverVhds(name: string): boolean {
  return name === OUTBOUND_ROUTE_NAME;
}

/** The set a VHDS sidecar receives instead of `set` (goldens; the store works on bytes). */
export function vhdsResourceSet(set: ResourceSet): ResourceSet {
  const routes = new Map(set.routes);
  const virtualHosts = new Map<string, VirtualHost>();
  for (const [name, config] of set.routes) {
    if (!servedOverVhds(name)) continue;
    routes.set(name, vhdsRouteConfiguration(name));
    const hosts = config.virtualHosts ?? [];
    for (const host of hosts) {
      const named = vhdsHostName(name, host.name!);
      virtualHosts.set(named, { ...host, name: named });
    }
    if (hosts.length === 0) {
      const none = noServicesVirtualHost(name);
      virtualHosts.set(none.name!, none);
    }
  }
  return { ...set, routes, virtualHosts };
}
