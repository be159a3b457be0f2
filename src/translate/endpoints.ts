// ClusterLoadAssignments (EDS): which instances of a service receive traffic, and where.
import type { Instance, Service } from '../catalog/model.js';
import { serviceClusterName } from './names.js';
import { MTLS_MATCH, MTLS_MATCH_KEY } from './tls.js';
import type { ResourceMessage } from './types.js';

export function socketAddress(address: string, portValue: number): ResourceMessage {
  return { socketAddress: { address, portValue } };
}

/** Where peers reach an instance: its sidecar when meshed, otherwise the app itself. */
export function peerPort(instance: Instance): number {
  return instance.sidecarPort ?? instance.port;
}

/**
 * passing and warning instances serve. Critical ones are left out instead of being sent as
 * UNHEALTHY: once enough hosts are unhealthy, Envoy's panic threshold (50% by default) makes
 * it balance across all hosts, the unhealthy ones included.
 */
export function receivesTraffic(instance: Instance): boolean {
  return instance.health !== 'critical';
}

function lbEndpoint(instance: Instance, mtls: boolean): ResourceMessage {
  return {
    endpoint: {
      address: socketAddress(instance.address, peerPort(instance)),
      // Shown by Envoy's /clusters admin page, so operators see instance ids, not just IPs.
      hostname: instance.id,
    },
    healthStatus: 'HEALTHY',
    // Selects the cluster's mTLS transport socket: only a sidecar can terminate mesh TLS.
    ...(mtls && instance.sidecarPort !== undefined
      ? { metadata: { filterMetadata: { [MTLS_MATCH_KEY]: MTLS_MATCH } } }
      : {}),
  };
}

export function serviceLoadAssignment(service: Service, mtls = false): ResourceMessage {
  const clusterName = serviceClusterName(service.name);
  const lbEndpoints = [...service.instances]
    .sort((a, b) => compare(a.id, b.id))
    .filter(receivesTraffic)
    .map((instance) => lbEndpoint(instance, mtls));
  // Still an assignment when nothing is healthy: it tells Envoy to drop the endpoints it had
  // (and lets the EDS cluster finish warming) instead of leaving stale ones in place.
  if (lbEndpoints.length === 0) return { clusterName };
  return { clusterName, endpoints: [{ lbEndpoints }] };
}

export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
