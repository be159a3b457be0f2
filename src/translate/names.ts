// Resource names. The snapshot store caches encodings by name, so every name must be a unique
// function of what defines the resource: node-specific resources carry the node id or port.

/** The RouteConfiguration every outbound HTTP listener fetches over RDS; the same for all nodes. */
export const OUTBOUND_ROUTE_NAME = 'outbound';

/** The single virtual host of an inbound listener: everything goes to the local app. */
export const LOCAL_APP_VIRTUAL_HOST = 'local_app';

/** STATIC cluster pointing a sidecar at its own application on 127.0.0.1. */
export function localAppClusterName(nodeId: string): string {
  return `local_app|${nodeId}`;
}

/** Listener on the sidecar port that accepts mesh traffic for the node's app. */
export function inboundListenerName(nodeId: string): string {
  return `inbound|${nodeId}`;
}

/** Inline route configuration of the inbound listener. */
export function inboundRouteName(nodeId: string): string {
  return `inbound|${nodeId}`;
}

/** The node's HTTP egress listener; its address is the only node-specific part. */
export function outboundHttpListenerName(port: number): string {
  return `outbound|http|${port}`;
}

/** Per-service TCP egress listener on the service's fixed outbound port. */
export function outboundTcpListenerName(service: string): string {
  return `outbound|tcp|${service}`;
}

/**
 * SDS secret with the proxy's own certificate and key. One fixed name (as Istio's `default`)
 * rather than the service name: clusters reference it, and a fixed name keeps every cluster
 * identical for all proxies, so it is encoded once however many services connect. Each proxy
 * only ever receives its own identity under this name.
 */
export const IDENTITY_SECRET_NAME = 'default';

/** SDS secret with the CA roots peers' certificates must chain to (old + new during rotation). */
export const TRUST_BUNDLE_SECRET_NAME = 'trust_bundle';

/**
 * A backend's own EDS cluster when the backend's name belongs to its aggregate cluster
 * (failover to other services). Backend names never contain "|".
 */
export function primaryClusterName(backend: string): string {
  return `${backend}|primary`;
}
