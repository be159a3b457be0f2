// Listeners at declared upstreams' local bind ports (Consul Connect's LocalBindPort), so apps
// written for Consul Connect call 127.0.0.1:<port> unchanged (docs/scoping.md). HTTP-family
// upstreams are routed like the shared outbound listener, by a route configuration of their
// own (one per upstream service, shared by every proxy that binds it: the Host an app sends
// to a local port names no service); tcp ones go straight to the service's cluster.
import type { Mesh, MeshBindUpstream } from '../mesh/types.js';
import type { Listener, RouteConfiguration, VirtualHost } from '../protos/envoy-types.js';
import { bindUpstreamListener } from './listeners.js';
import type { HcmObservability } from './observability.js';

export function bindRouteName(service: string): string {
  return `bind|${service}`;
}

export function bindListenerName(b: MeshBindUpstream): string {
  return `bind|${b.address}:${b.port}`;
}

export function bindListener(
  b: MeshBindUpstream,
  exclusivePort: boolean,
  observe?: HcmObservability,
): Listener {
  return bindUpstreamListener(
    bindListenerName(b),
    b.address,
    b.port,
    b.protocol === 'tcp' ? { cluster: b.service } : { routeName: bindRouteName(b.service) },
    exclusivePort,
    observe,
  );
}

/** The route configuration of a bind listener: the service's virtual host, for any Host. */
export function bindRouteConfiguration(service: string, host: VirtualHost): RouteConfiguration {
  return { name: bindRouteName(service), virtualHosts: [{ ...host, domains: ['*'] }] };
}

/**
 * The route configuration of a bind listener whose upstream is not in the mesh (not registered
 * yet, or its last instance deregistered): 503 naming it. Consul's sidecars keep an upstream's
 * listener whatever the catalog holds, so apps written for them see a failed request they
 * retry, never a refused connection.
 */
export function missingBindRouteConfiguration(service: string): RouteConfiguration {
  return {
    name: bindRouteName(service),
    virtualHosts: [
      {
        name: service,
        domains: ['*'],
        routes: [
          {
            match: { prefix: '/' },
            directResponse: {
              status: 503,
              body: { inlineString: `upstream "${service}": no such service in the mesh\n` },
            },
          },
        ],
      },
    ],
  };
}

/** Services some proxy binds a local port for (only those get a bind route configuration). */
export function boundServices(mesh: Mesh): ReadonlySet<string> {
  const out = new Set<string>();
  for (const s of mesh.services) {
    for (const u of s.upstreams ?? []) if (u.localBindPort !== undefined) out.add(u.name);
  }
  return out;
}
