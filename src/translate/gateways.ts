// Mesh gateways: an Envoy at the edge of a datacenter that forwards mesh TLS by SNI without
// terminating it (tls_inspector reads the SNI, tcp_proxy passes the bytes on), so mTLS stays
// end to end between the sidecars and the gateway never sees plaintext.
//   <service>.<ns>.<this dc>.<trust domain>  → the service's instances here (their sidecars)
//   *.<ns>.<other dc>.<trust domain>         → that datacenter's gateways
import type { Cluster, Listener } from '../protos/envoy-types.js';
import { typedAny } from '../protos/envoy-types.js';
import type { Mesh, MeshGateway } from '../mesh/types.js';
import { EXCLUSIVE_PORT, durationMs, socketAddress } from './envoy.js';
import { tcpProxy } from './listeners.js';
import { gatewaySni, gatewaySniWildcard } from './tls.js';
import { compareStrings } from '../text-order.js';

export function gatewayListenerName(id: string): string {
  return `mesh-gateway|${id}`;
}

/** Not names a backend can have (backend names never contain "|"). */
function localClusterName(backend: string): string {
  return `mesh-gateway|${backend}`;
}

/** A backend's part of the tcp stats prefix: `mesh_gateway_api`, `mesh_gateway_api_v2`. */
function statName(backend: string): string {
  return backend.replace('~', '_');
}

function remoteClusterName(dc: string): string {
  return `mesh-gateway|dc|${dc}`;
}

function staticCluster(
  name: string,
  hosts: { address: string; port: number }[],
  ms: number,
): Cluster {
  return {
    name,
    type: 'STATIC',
    connectTimeout: durationMs(ms),
    loadAssignment: {
      clusterName: name,
      endpoints: [
        {
          lbEndpoints: hosts.map((h) => ({
            endpoint: { address: socketAddress(h.address, h.port) },
          })),
        },
      ],
    },
  };
}

/** The gateway's listener and clusters (none without mTLS: there is no SNI to route on). */
export function gatewayResources(
  mesh: Mesh,
  gateway: MeshGateway,
  exclusivePort: boolean,
): { listeners: [string, Listener][]; clusters: [string, Cluster][] } {
  const identity = mesh.settings.mtls;
  const clusters: [string, Cluster][] = [];
  const chains: NonNullable<Listener['filterChains']>[number][] = [];
  if (!identity) return { listeners: [], clusters };
  const timeout = mesh.settings.connectTimeoutMs;
  // One chain per backend (the service, each subset): a subset's SNI names it, so a request
  // routed to subset v2 reaches v2's instances here, not any instance of the service.
  for (const backend of mesh.services.flatMap((s) => s.backends)) {
    const here = backend.localities
      .filter((g) => g.locality.datacenter === gateway.datacenter)
      .flatMap((g) => g.endpoints.filter((e) => e.meshed && e.healthy));
    if (here.length === 0) continue;
    const name = localClusterName(backend.name);
    clusters.push([name, staticCluster(name, here, timeout)]);
    chains.push({
      filterChainMatch: {
        serverNames: [gatewaySni(identity, backend.service, gateway.datacenter, backend.subset)],
      },
      filters: [tcpProxy(`mesh_gateway_${statName(backend.name)}`, name)],
    });
  }
  const remote = new Map<string, MeshGateway[]>();
  for (const g of mesh.gateways) {
    if (g.datacenter === gateway.datacenter || !g.healthy) continue;
    remote.set(g.datacenter, [...(remote.get(g.datacenter) ?? []), g]);
  }
  for (const [dc, gateways] of [...remote].sort(([a], [b]) => compareStrings(a, b))) {
    const name = remoteClusterName(dc);
    clusters.push([
      name,
      staticCluster(
        name,
        gateways.map((g) => ({ address: g.wanAddress, port: g.wanPort })),
        timeout,
      ),
    ]);
    chains.push({
      filterChainMatch: { serverNames: [gatewaySniWildcard(identity, dc)] },
      filters: [tcpProxy(`mesh_gateway_dc_${dc}`, name)],
    });
  }
  if (chains.length === 0) return { listeners: [], clusters };
  const listenerName = gatewayListenerName(gateway.id);
  return {
    clusters,
    listeners: [
      [
        listenerName,
        {
          name: listenerName,
          address: socketAddress('0.0.0.0', gateway.port),
          trafficDirection: 'INBOUND',
          ...(exclusivePort ? EXCLUSIVE_PORT : {}),
          listenerFilters: [
            {
              name: 'envoy.filters.listener.tls_inspector',
              typedConfig: typedAny(
                'envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector',
                {},
              ),
            },
          ],
          filterChains: chains,
        },
      ],
    ],
  };
}
