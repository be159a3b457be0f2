// ClusterLoadAssignments (EDS): where a backend's instances are, grouped by locality.
import type { Backend, Endpoint, LocalityEndpoints } from '../mesh/types.js';
import { MTLS_MATCH, MTLS_MATCH_KEY, socketAddress, type ResourceMessage } from './envoy.js';

function lbEndpoint(endpoint: Endpoint, mtls: boolean): ResourceMessage {
  return {
    endpoint: {
      address: socketAddress(endpoint.address, endpoint.port),
      // Shown by Envoy's /clusters admin page, so operators see instance ids, not just IPs.
      hostname: endpoint.id,
    },
    healthStatus: 'HEALTHY',
    // Selects the cluster's mTLS transport socket: only a sidecar can terminate mesh TLS.
    ...(mtls && endpoint.meshed
      ? { metadata: { filterMetadata: { [MTLS_MATCH_KEY]: MTLS_MATCH } } }
      : {}),
  };
}

function localityEndpoints(group: LocalityEndpoints, mtls: boolean): ResourceMessage {
  const { region, zone } = group.locality;
  const locality = {
    ...(region !== undefined ? { region } : {}),
    ...(zone !== undefined ? { zone } : {}),
  };
  return {
    ...(Object.keys(locality).length > 0 ? { locality } : {}),
    lbEndpoints: group.endpoints.map((e) => lbEndpoint(e, mtls)),
  };
}

export function backendLoadAssignment(backend: Backend, mtls: boolean): ResourceMessage {
  const clusterName = backend.name;
  // Still an assignment when nothing is healthy: it tells Envoy to drop the endpoints it had
  // (and lets the EDS cluster finish warming) instead of leaving stale ones in place.
  if (backend.localities.length === 0) return { clusterName };
  return { clusterName, endpoints: backend.localities.map((g) => localityEndpoints(g, mtls)) };
}

/** An empty assignment: what a proxy gets for an EDS name that does not exist (see ProxyView). */
export function emptyLoadAssignment(clusterName: string): ResourceMessage {
  return { clusterName };
}
