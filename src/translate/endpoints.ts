// ClusterLoadAssignments (EDS): where a backend's instances are, grouped by locality.
import type { Backend, Endpoint, LocalityEndpoints } from '../mesh/types.js';
import type {
  ClusterLoadAssignment,
  LbEndpoint,
  LocalityLbEndpoints,
} from '../protos/envoy-types.js';
import { MTLS_MATCH, MTLS_MATCH_KEY, defined, socketAddress } from './envoy.js';

function lbEndpoint(endpoint: Endpoint, mtls: boolean): LbEndpoint {
  const lb: LbEndpoint = {
    endpoint: {
      address: socketAddress(endpoint.address, endpoint.port),
      // Shown by Envoy's /clusters admin page, so operators see instance ids, not just IPs.
      hostname: endpoint.id,
    },
    healthStatus: 'HEALTHY',
  };
  // Selects the cluster's mTLS transport socket: only a sidecar can terminate mesh TLS.
  if (!mtls || !endpoint.meshed) return lb;
  return { ...lb, metadata: { filterMetadata: { [MTLS_MATCH_KEY]: MTLS_MATCH } } };
}

function localityEndpoints(group: LocalityEndpoints, mtls: boolean): LocalityLbEndpoints {
  const { region, zone } = group.locality;
  return defined({
    locality: region !== undefined || zone !== undefined ? defined({ region, zone }) : undefined,
    lbEndpoints: group.endpoints.map((e) => lbEndpoint(e, mtls)),
  });
}

export function backendLoadAssignment(backend: Backend, mtls: boolean): ClusterLoadAssignment {
  const clusterName = backend.name;
  // Still an assignment when nothing is healthy: it tells Envoy to drop the endpoints it had
  // (and lets the EDS cluster finish warming) instead of leaving stale ones in place.
  if (backend.localities.length === 0) return { clusterName };
  return { clusterName, endpoints: backend.localities.map((g) => localityEndpoints(g, mtls)) };
}

/** An empty assignment: what a proxy gets for an EDS name that does not exist (see ProxyView). */
export function emptyLoadAssignment(clusterName: string): ClusterLoadAssignment {
  return { clusterName };
}
