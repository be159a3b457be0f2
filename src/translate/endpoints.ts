// ClusterLoadAssignments (EDS): where a backend's instances are, grouped by locality.
import { datacenterOrder, localityRank } from '../mesh/locality.js';
import type { Backend, Endpoint, LocalityEndpoints, PlacedLocality } from '../mesh/types.js';
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
    healthStatus: endpoint.healthy ? 'HEALTHY' : 'UNHEALTHY',
  };
  // Selects the cluster's mTLS transport socket: only a sidecar can terminate mesh TLS.
  if (!mtls || !endpoint.meshed) return lb;
  return { ...lb, metadata: { filterMetadata: { [MTLS_MATCH_KEY]: MTLS_MATCH } } };
}

function localityEndpoints(
  group: LocalityEndpoints,
  mtls: boolean,
  priority?: number,
): LocalityLbEndpoints {
  const { region, zone } = group.locality;
  return defined({
    // Envoy's Locality has no datacenter: it only tells localities apart in stats and
    // /clusters; which datacenter an endpoint is in shows in its priority.
    locality: region !== undefined || zone !== undefined ? defined({ region, zone }) : undefined,
    lbEndpoints: group.endpoints.map((e) => lbEndpoint(e, mtls)),
    priority: priority ? priority : undefined,
  });
}

/**
 * Where a backend's instances are, as `caller` should use them. Without failover, the same
 * for everyone. With failover, localities get priorities by the caller's preference (its
 * zone, region, datacenter, then other datacenters: mesh/locality.ts), numbered densely from
 * 0 as Envoy requires; localities the caller may not use are left out. The failover
 * threshold T becomes Envoy's overprovisioning factor 100/T (× 100): a priority whose
 * healthy share drops below T starts handing load to the next.
 */
export function backendLoadAssignment(
  backend: Backend,
  mtls: boolean,
  caller?: PlacedLocality,
  configuredOrder: readonly string[] = [],
): ClusterLoadAssignment {
  const clusterName = backend.name;
  // Still an assignment when nothing is healthy: it tells Envoy to drop the endpoints it had
  // (and lets the EDS cluster finish warming) instead of leaving stale ones in place.
  if (backend.localities.length === 0) return { clusterName };
  const failover = backend.failover;
  if (!failover || !caller) {
    return { clusterName, endpoints: backend.localities.map((g) => localityEndpoints(g, mtls)) };
  }
  const order = datacenterOrder(
    caller.datacenter,
    backend.localities.map((g) => g.locality.datacenter),
    configuredOrder,
    failover.datacenters,
  );
  const ranked = backend.localities
    .map((g) => ({ g, rank: localityRank(caller, g.locality, order) }))
    .filter((r): r is { g: LocalityEndpoints; rank: number } => r.rank !== undefined);
  const ranks = [...new Set(ranked.map((r) => r.rank))].sort((a, b) => a - b);
  const endpoints = ranked
    .map((r) => ({ g: r.g, priority: ranks.indexOf(r.rank) }))
    .sort((a, b) => a.priority - b.priority)
    .map((r) => localityEndpoints(r.g, mtls, r.priority));
  const t = failover.thresholdPercent;
  return defined({
    clusterName,
    endpoints,
    policy:
      t !== undefined ? { overprovisioningFactor: { value: Math.round(10_000 / t) } } : undefined,
  });
}

/** An empty assignment: what a proxy gets for an EDS name that does not exist (see ProxyView). */
export function emptyLoadAssignment(clusterName: string): ClusterLoadAssignment {
  return { clusterName };
}
