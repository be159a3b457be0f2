// Listeners (LDS): outbound HTTP (per node port), outbound TCP (per tcp service), inbound.
import type { Protocol } from '../catalog/model.js';
import { INBOUND_ADDRESS } from '../catalog/bind-address.js';
import {
  typedAny,
  type Address,
  type HttpConnectionManager,
  type HttpFilter,
  type Listener,
  type ListenerFilter,
  type TransportSocket,
} from '../protos/envoy-types.js';
import { EXCLUSIVE_PORT, adsConfigSource, socketAddress } from './envoy.js';
import type { HcmObservability } from './observability.js';
import {
  OUTBOUND_ROUTE_NAME,
  inboundListenerName,
  localAppClusterName,
  outboundHttpListenerName,
  outboundTcpListenerName,
} from './names.js';
import { FAULT_FILTER_NAME, HTTP_FAULT_TYPE_NAME, inboundRouteConfiguration } from './routes.js';

type Direction = 'INBOUND' | 'OUTBOUND';

function listener(
  name: string,
  address: Address,
  trafficDirection: Direction,
  filters: ListenerFilter[],
  transportSocket: TransportSocket | undefined,
  exclusivePort: boolean,
): Listener {
  const chain = transportSocket ? { filters, transportSocket } : { filters };
  const reuse = exclusivePort ? EXCLUSIVE_PORT : {};
  return { name, address, trafficDirection, ...reuse, filterChains: [chain] };
}

/**
 * routes: `{ rds }` or `{ routeConfig }`, the two ways an HCM gets its routes. `before` are
 * HTTP filters that run ahead of the router (RBAC, fault injection); `observe`: tracing and
 * access logs (observability.ts).
 */
function httpConnectionManager(
  statPrefix: string,
  routes: Pick<HttpConnectionManager, 'rds'> | Pick<HttpConnectionManager, 'routeConfig'>,
  before: readonly HttpFilter[] = [],
  observe: HcmObservability = {},
): ListenerFilter {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typedConfig: typedAny(
      'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
      {
        statPrefix,
        ...routes,
        ...observe,
        httpFilters: [
          ...before,
          {
            name: 'envoy.filters.http.router',
            typedConfig: typedAny('envoy.extensions.filters.http.router.v3.Router', {}),
          },
        ],
      },
    ),
  };
}

export function tcpProxy(statPrefix: string, cluster: string): ListenerFilter {
  return {
    name: 'envoy.filters.network.tcp_proxy',
    typedConfig: typedAny('envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', {
      statPrefix,
      cluster,
    }),
  };
}

/**
 * Fault injection is configured per route (typed_per_filter_config); the filter itself is
 * always present with an empty config, which injects nothing, so a route gaining a fault
 * changes only the route configuration, never every node's listener.
 */
const FAULT_FILTER: HttpFilter = {
  name: FAULT_FILTER_NAME,
  typedConfig: typedAny(HTTP_FAULT_TYPE_NAME, {}),
};

/**
 * Without tracing or access logs (most sidecars) the listener depends on the port alone: one
 * object per port, so the encoder knows it by identity and neither stringifies nor hashes it
 * for each of 10,000 proxies (bench W9 storm). Ports are the nodes' to choose: bounded.
 */
const plainOutbound = new Map<number, Listener>();
const MAX_PLAIN_OUTBOUND = 64;

/**
 * Where a node's apps send HTTP for any service; routes come from the shared RDS config.
 * exclusivePort: the node's bootstrap says `exclusive_ports` (EXCLUSIVE_PORT).
 */
export function outboundHttpListener(
  port: number,
  exclusivePort: boolean,
  observe?: HcmObservability,
): Listener {
  if (observe && (observe.tracing || observe.accessLog)) {
    return buildOutboundHttp(port, exclusivePort, observe);
  }
  // Ports are 1-65535: the sign tells the two variants apart in one small map.
  const key = exclusivePort ? -port : port;
  let built = plainOutbound.get(key);
  if (!built) {
    if (plainOutbound.size >= MAX_PLAIN_OUTBOUND) plainOutbound.clear();
    plainOutbound.set(key, (built = buildOutboundHttp(port, exclusivePort)));
  }
  return built;
}

function buildOutboundHttp(
  port: number,
  exclusivePort: boolean,
  observe?: HcmObservability,
): Listener {
  return listener(
    outboundHttpListenerName(port),
    socketAddress('127.0.0.1', port),
    'OUTBOUND',
    [
      httpConnectionManager(
        'outbound_http',
        { rds: { routeConfigName: OUTBOUND_ROUTE_NAME, configSource: adsConfigSource() } },
        [FAULT_FILTER],
        observe,
      ),
    ],
    undefined,
    exclusivePort,
  );
}

/** TCP has no Host header to route on, so each tcp service gets its own local port. */
export function outboundTcpListener(service: string, cluster: string, port: number): Listener {
  return listener(
    outboundTcpListenerName(service),
    socketAddress('127.0.0.1', port),
    'OUTBOUND',
    [tcpProxy(`outbound_tcp_${service}`, cluster)],
    undefined,
    false, // the service's port, the same in every sidecar: shared by design (EXCLUSIVE_PORT)
  );
}

/**
 * A local listener for one upstream (Consul Connect's LocalBindAddress:LocalBindPort): HTTP
 * over its own route configuration (`routeName`, every Host), tcp straight to `cluster`.
 */
export function bindUpstreamListener(
  name: string,
  address: string,
  port: number,
  to: { readonly routeName: string } | { readonly cluster: string },
  exclusivePort: boolean,
  observe?: HcmObservability,
): Listener {
  const filter =
    'routeName' in to
      ? httpConnectionManager(
          `bind_${port}`,
          { rds: { routeConfigName: to.routeName, configSource: adsConfigSource() } },
          [FAULT_FILTER],
          observe,
        )
      : tcpProxy(`bind_${port}`, to.cluster);
  return listener(
    name,
    socketAddress(address, port),
    'OUTBOUND',
    [filter],
    undefined,
    exclusivePort,
  );
}

/** How an inbound listener is secured: mTLS, and RBAC filters (policy, intentions). */
export interface InboundSecurity {
  readonly transportSocket: TransportSocket;
  /** envoy.filters.http.rbac for HTTP protocols, envoy.filters.network.rbac for tcp. */
  readonly rbac: readonly HttpFilter[] | readonly ListenerFilter[];
}

/** Accepts mesh traffic on the node's sidecar port and hands it to the local app. */
export function inboundListener(
  nodeId: string,
  protocol: Protocol,
  sidecarPort: number,
  exclusivePort: boolean,
  security?: InboundSecurity,
  observe?: HcmObservability,
): Listener {
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
            observe,
          ),
        ];
  return listener(
    inboundListenerName(nodeId),
    socketAddress(INBOUND_ADDRESS, sidecarPort),
    'INBOUND',
    filters,
    security?.transportSocket,
    exclusivePort,
  );
}
