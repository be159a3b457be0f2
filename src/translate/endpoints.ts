// ClusterLoadAssignments (EDS): where a backend's instances are, grouped by locality.
import { datacenterOrder, localityRank } from '../mesh/locality.js';
import type {
  Backend,
  Endpoint,
  LocalityEndpoints,
  MeshGateway,
  MeshGatewayMode,
  PlacedLocality,
} from '../mesh/types.js';
import type {
  ClusterLoadAssignment,
  LbEndpoint,
  LocalityLbEndpoints,
} from '../protos/envoy-types.js';
import { MTLS_MATCH, MTLS_MATCH_KEY, defined, gatewayMatch, socketAddress } from './envoy.js';

/** How a caller reaches other datacenters: its mode and the mesh's gateways. */
export interface GatewayRoute {
  readonly mode: MeshGatewayMode;
  readonly gateways: readonly MeshGateway[];
}

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
  via?: GatewayRoute,
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
  const direct = ranked
    .filter((r) => !reachedThroughGateway(r.g, caller, mtls, via))
    .map((r) => localityEndpoints(r.g, mtls, ranks.indexOf(r.rank)));
  const gatewayed = throughGateways(
    ranked.filter((r) => reachedThroughGateway(r.g, caller, mtls, via)),
    caller,
    via!,
    (rank) => ranks.indexOf(rank),
  );
  const endpoints = [...direct, ...gatewayed].sort((a, b) => (a.priority ?? 0) - (b.priority ?? 0));
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

/**
 * The gateways a caller uses to reach `dc` in its mode (none when it goes direct). Mode local
 * also needs a gateway in `dc` for its own to forward to: without one (reported by the mesh as
 * "reached directly") its instances are reached directly, as in mode remote.
 */
function gatewaysFor(caller: PlacedLocality, dc: string, via: GatewayRoute): MeshGateway[] {
  if (via.mode === 'none' || dc === caller.datacenter) return [];
  if (via.mode === 'local' && !via.gateways.some((g) => g.datacenter === dc)) return [];
  const at = via.mode === 'local' ? caller.datacenter : dc;
  return via.gateways.filter((g) => g.datacenter === at);
}

/**
 * Whether a path through the caller's gateways to `dc` can carry anything: with mode local
 * its own gateway forwards only to healthy gateways of `dc` (translate/gateways.ts).
 */
function pathUp(dc: string, via: GatewayRoute): boolean {
  return via.mode !== 'local' || via.gateways.some((g) => g.datacenter === dc && g.healthy);
}

function reachedThroughGateway(
  g: LocalityEndpoints,
  caller: PlacedLocality,
  mtls: boolean,
  via: GatewayRoute | undefined,
): boolean {
  return mtls && via !== undefined && gatewaysFor(caller, g.locality.datacenter, via).length > 0;
}

/**
 * Other datacenters reached through mesh gateways: one group per datacenter whose endpoints
 * are the gateways (the caller's own with mode local, the target datacenter's with remote),
 * marked with the target datacenter so the cluster sends the SNI the gateways route on. The
 * group is healthy while the datacenter has a healthy instance; no instance address of the
 * other datacenter reaches the caller.
 */
function throughGateways(
  ranked: readonly { g: LocalityEndpoints; rank: number }[],
  caller: PlacedLocality,
  via: GatewayRoute,
  priorityOf: (rank: number) => number,
): LocalityLbEndpoints[] {
  const byDc = new Map<string, { rank: number; healthy: boolean }>();
  for (const { g, rank } of ranked) {
    const dc = g.locality.datacenter;
    const prev = byDc.get(dc);
    const healthy = g.endpoints.some((e) => e.healthy);
    byDc.set(dc, { rank: Math.min(prev?.rank ?? rank, rank), healthy: !!prev?.healthy || healthy });
  }
  return [...byDc].map(([dc, { rank, healthy: up }]) => {
    const healthy = up && pathUp(dc, via);
    const remote = via.mode === 'remote';
    const priority = priorityOf(rank);
    return defined({
      lbEndpoints: gatewaysFor(caller, dc, via).map((gw): LbEndpoint => ({
        endpoint: {
          address: socketAddress(
            remote ? gw.wanAddress : gw.address,
            remote ? gw.wanPort : gw.port,
          ),
          hostname: gw.id,
        },
        healthStatus: healthy && gw.healthy ? 'HEALTHY' : 'UNHEALTHY',
        metadata: { filterMetadata: { [MTLS_MATCH_KEY]: gatewayMatch(dc) } },
      })),
      priority: priority ? priority : undefined,
    });
  });
}
