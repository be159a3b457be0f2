// Inbound listeners carrying compiled RBAC filters, shaped like the translator's (HCM with RBAC
// before the router; network RBAC before tcp_proxy), for encoding and Envoy tests.
import { TYPE_URLS, decodeMessage, encodeMessage } from '../../src/protos/envoy.js';

export type Json = Record<string, unknown>;

const TYPE = 'type.googleapis.com/envoy.extensions.filters';
export const HCM_TYPE_URL = `${TYPE}.network.http_connection_manager.v3.HttpConnectionManager`;
const ROUTER = `${TYPE}.http.router.v3.Router`;
const TCP_PROXY = `${TYPE}.network.tcp_proxy.v3.TcpProxy`;

function address(port: number): Json {
  return { socketAddress: { address: '127.0.0.1', portValue: port } };
}

/** An inbound HTTP listener: RBAC, then the router to `cluster` (or a direct 200 without one). */
export function httpListener(
  name: string,
  port: number,
  rbacFilter: Json,
  opts: { cluster?: string; transportSocket?: Json } = {},
): Json {
  const action = opts.cluster
    ? { route: { cluster: opts.cluster } }
    : { directResponse: { status: 200, body: { inlineString: `hello from ${name}\n` } } };
  return {
    name,
    address: address(port),
    trafficDirection: 'INBOUND',
    filterChains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typedConfig: {
              '@type': HCM_TYPE_URL,
              statPrefix: 'inbound_http',
              routeConfig: {
                name,
                virtualHosts: [
                  {
                    name: 'local_app',
                    domains: ['*'],
                    routes: [{ match: { prefix: '/' }, ...action }],
                  },
                ],
              },
              httpFilters: [
                rbacFilter,
                { name: 'envoy.filters.http.router', typedConfig: { '@type': ROUTER } },
              ],
            },
          },
        ],
        ...(opts.transportSocket ? { transportSocket: opts.transportSocket } : {}),
      },
    ],
  };
}

/** An inbound TCP listener: network RBAC, then tcp_proxy to `cluster`. */
export function tcpListener(
  name: string,
  port: number,
  rbacFilter: Json,
  cluster: string,
  opts: { transportSocket?: Json } = {},
): Json {
  return {
    name,
    address: address(port),
    trafficDirection: 'INBOUND',
    filterChains: [
      {
        filters: [
          rbacFilter,
          {
            name: 'envoy.filters.network.tcp_proxy',
            typedConfig: { '@type': TCP_PROXY, statPrefix: 'inbound_tcp', cluster },
          },
        ],
        ...(opts.transportSocket ? { transportSocket: opts.transportSocket } : {}),
      },
    ],
  };
}

/** The listener as Envoy receives it: encoded to protobuf and decoded back. */
export function onTheWire(listener: Json): Json {
  const bytes = encodeMessage(TYPE_URLS.listeners, listener, String(listener.name));
  return decodeMessage(TYPE_URLS.listeners, bytes);
}

/** The first filter of a (decoded) listener's first filter chain with this name, at any depth (HCM filters too). */
export function findFilter(listener: Json, name: string): Json {
  const chains = listener.filterChains as { filters: Json[] }[];
  for (const chain of chains) {
    for (const filter of chain.filters) {
      if (filter.name === name) return filter;
      const hcm = filter.typedConfig as { httpFilters?: Json[] } | undefined;
      const inner = hcm?.httpFilters?.find((f) => f.name === name);
      if (inner) return inner;
    }
  }
  throw new Error(`no filter ${name} in listener ${String(listener.name)}`);
}
