// Listeners (LDS): outbound HTTP (per node port), outbound TCP (per tcp service), inbound.
import type { Protocol } from '../catalog/model.js';
import { TYPE, adsConfigSource, socketAddress, type ResourceMessage } from './envoy.js';
import {
  OUTBOUND_ROUTE_NAME,
  inboundListenerName,
  localAppClusterName,
  outboundHttpListenerName,
  outboundTcpListenerName,
} from './names.js';
import { FAULT_FILTER_NAME, HTTP_FAULT_TYPE, inboundRouteConfiguration } from './routes.js';

const FILTERS = `${TYPE}envoy.extensions.filters`;
const HTTP_CONNECTION_MANAGER = `${FILTERS}.network.http_connection_manager.v3.HttpConnectionManager`;
const TCP_PROXY = `${FILTERS}.network.tcp_proxy.v3.TcpProxy`;
const ROUTER = `${FILTERS}.http.router.v3.Router`;

type Direction = 'INBOUND' | 'OUTBOUND';

function listener(
  name: string,
  address: ResourceMessage,
  trafficDirection: Direction,
  filters: ResourceMessage[],
  transportSocket?: ResourceMessage,
): ResourceMessage {
  const chain = transportSocket ? { filters, transportSocket } : { filters };
  return { name, address, trafficDirection, filterChains: [chain] };
}

/**
 * routes: `{ rds }` or `{ routeConfig }`, the two ways an HCM gets its routes. `before` are
 * HTTP filters that run ahead of the router (RBAC, fault injection).
 */
function httpConnectionManager(
  statPrefix: string,
  routes: ResourceMessage,
  before: readonly ResourceMessage[] = [],
): ResourceMessage {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typedConfig: {
      '@type': HTTP_CONNECTION_MANAGER,
      statPrefix,
      ...routes,
      httpFilters: [
        ...before,
        { name: 'envoy.filters.http.router', typedConfig: { '@type': ROUTER } },
      ],
    },
  };
}

function tcpProxy(statPrefix: string, cluster: string): ResourceMessage {
  return {
    name: 'envoy.filters.network.tcp_proxy',
    typedConfig: { '@type': TCP_PROXY, statPrefix, cluster },
  };
}

/**
 * Fault injection is configured per route (typed_per_filter_config); the filter itself is
 * always present with an empty config, which injects nothing, so a route gaining a fault
 * changes only the route configuration, never every node's listener.
 */
const FAULT_FILTER = { name: FAULT_FILTER_NAME, typedConfig: { '@type': HTTP_FAULT_TYPE } };

/** Where a node's apps send HTTP for any service; routes come from the shared RDS config. */
export function outboundHttpListener(port: number): ResourceMessage {
  return listener(outboundHttpListenerName(port), socketAddress('127.0.0.1', port), 'OUTBOUND', [
    httpConnectionManager(
      'outbound_http',
      { rds: { routeConfigName: OUTBOUND_ROUTE_NAME, configSource: adsConfigSource() } },
      [FAULT_FILTER],
    ),
  ]);
}

/** TCP has no Host header to route on, so each tcp service gets its own local port. */
export function outboundTcpListener(
  service: string,
  cluster: string,
  port: number,
): ResourceMessage {
  return listener(outboundTcpListenerName(service), socketAddress('127.0.0.1', port), 'OUTBOUND', [
    tcpProxy(`outbound_tcp_${service}`, cluster),
  ]);
}

/** How an inbound listener is secured: mTLS, and RBAC filters (policy, intentions). */
export interface InboundSecurity {
  readonly transportSocket: ResourceMessage;
  /** envoy.filters.http.rbac for HTTP protocols, envoy.filters.network.rbac for tcp. */
  readonly rbac: readonly ResourceMessage[];
}

/** Accepts mesh traffic on the node's sidecar port and hands it to the local app. */
export function inboundListener(
  nodeId: string,
  protocol: Protocol,
  sidecarPort: number,
  security?: InboundSecurity,
): ResourceMessage {
  const cluster = localAppClusterName(nodeId);
  const rbac = security?.rbac ?? [];
  const filters =
    protocol === 'tcp'
      ? [...rbac, tcpProxy('inbound_tcp', cluster)]
      : [
          httpConnectionManager(
            'inbound_http',
            { routeConfig: inboundRouteConfiguration(nodeId, protocol) },
            rbac,
          ),
        ];
  return listener(
    inboundListenerName(nodeId),
    socketAddress('0.0.0.0', sidecarPort),
    'INBOUND',
    filters,
    security?.transportSocket,
  );
}
