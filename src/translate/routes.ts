// Route configurations: the shared outbound one (RDS: one virtual host per HTTP-family
// service, its routes from the mesh's compiled router/splitter/resolver chain) and a node's
// inline inbound one.
import type { Protocol } from '../catalog/model.js';
import type { MeshService, Route, RouteMatch, WeightedDestination } from '../mesh/types.js';
import type { HashPolicy, HeaderEdits, HeaderMatch, QueryParamMatch } from '../traffic/types.js';
import { TYPE, defined, durationMs, fractionalPercent, type ResourceMessage } from './envoy.js';
import {
  LOCAL_APP_VIRTUAL_HOST,
  OUTBOUND_ROUTE_NAME,
  inboundRouteName,
  localAppClusterName,
} from './names.js';

export const FAULT_FILTER_NAME = 'envoy.filters.http.fault';
export const HTTP_FAULT_TYPE = `${TYPE}envoy.extensions.filters.http.fault.v3.HTTPFault`;
const PREVIOUS_HOSTS = 'envoy.retry_host_predicates.previous_hosts';
const PREVIOUS_HOSTS_TYPE = `${TYPE}envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate`;

/** gRPC streams are long-lived; Envoy's default 15 s route timeout would cut them. */
function defaultTimeout(protocol: Protocol): ResourceMessage {
  return protocol === 'grpc' ? { timeout: durationMs(0) } : {};
}

function routeAllTo(cluster: string, protocol: Protocol): ResourceMessage {
  return { match: { prefix: '/' }, route: { cluster, ...defaultTimeout(protocol) } };
}

/** Host names an app may use for a service, with or without the mesh suffix and a port. */
export function serviceDomains(service: string, domainSuffix: string): string[] {
  const fqdn = `${service}.${domainSuffix}`;
  return [service, `${service}:*`, fqdn, `${fqdn}:*`];
}

function stringMatch(m: { Exact?: string; Prefix?: string; Suffix?: string; Regex?: string }) {
  if (m.Exact !== undefined) return { exact: m.Exact };
  if (m.Prefix !== undefined) return { prefix: m.Prefix };
  if (m.Suffix !== undefined) return { suffix: m.Suffix };
  return { safeRegex: { regex: m.Regex ?? '' } };
}

function headerMatcher(h: HeaderMatch): ResourceMessage {
  const matcher = h.Present ? { presentMatch: true } : { stringMatch: stringMatch(h) };
  return { name: h.Name, ...matcher, ...(h.Invert ? { invertMatch: true } : {}) };
}

function queryMatcher(q: QueryParamMatch): ResourceMessage {
  if (q.Present) return { name: q.Name, presentMatch: true };
  return { name: q.Name, stringMatch: stringMatch(q) };
}

/** Consul matches methods as one regex on :method (RE2 matches the whole value). */
function methodMatcher(methods: readonly string[]): ResourceMessage[] {
  if (methods.length === 0) return [];
  return [{ name: ':method', stringMatch: { safeRegex: { regex: methods.join('|') } } }];
}

function routeMatch(m: RouteMatch): ResourceMessage {
  const path =
    m.path === undefined
      ? { prefix: '/' }
      : m.path.kind === 'exact'
        ? { path: m.path.value }
        : m.path.kind === 'prefix'
          ? { prefix: m.path.value }
          : { safeRegex: { regex: m.path.value } };
  const headers = [...methodMatcher(m.methods), ...m.headers.map(headerMatcher)];
  const queryParameters = m.queryParams.map(queryMatcher);
  return {
    ...path,
    ...(headers.length > 0 ? { headers } : {}),
    ...(queryParameters.length > 0 ? { queryParameters } : {}),
  };
}

function headerValues(values: Readonly<Record<string, string>>, appendAction: string) {
  return Object.keys(values)
    .sort()
    .map((key) => ({ header: { key, value: values[key] }, appendAction }));
}

/** Consul's Add appends, Set overwrites, Remove removes. */
function headerEdits(edits: HeaderEdits | undefined, side: 'request' | 'response') {
  if (!edits) return {};
  const add = [
    ...headerValues(edits.Add, 'APPEND_IF_EXISTS_OR_ADD'),
    ...headerValues(edits.Set, 'OVERWRITE_IF_EXISTS_OR_ADD'),
  ];
  return {
    ...(add.length > 0 ? { [`${side}HeadersToAdd`]: add } : {}),
    ...(edits.Remove.length > 0 ? { [`${side}HeadersToRemove`]: [...edits.Remove] } : {}),
  };
}

function weightedCluster(d: WeightedDestination): ResourceMessage {
  return {
    name: d.backend,
    weight: { value: d.weight },
    ...headerEdits(d.requestHeaders, 'request'),
    ...headerEdits(d.responseHeaders, 'response'),
  };
}

function destinations(ds: readonly WeightedDestination[]): ResourceMessage {
  const only = ds[0];
  if (ds.length === 1 && only && !only.requestHeaders && !only.responseHeaders) {
    return { cluster: only.backend };
  }
  return { weightedClusters: { clusters: ds.map(weightedCluster) } };
}

function retryPolicy(route: Route): ResourceMessage {
  const r = route.retry;
  if (!r) return {};
  return {
    retryPolicy: defined({
      retryOn: r.retryOn.join(','),
      numRetries: r.numRetries !== undefined ? { value: r.numRetries } : undefined,
      retriableStatusCodes:
        r.retriableStatusCodes.length > 0 ? [...r.retriableStatusCodes] : undefined,
      retryBackOff: r.backoff
        ? defined({
            baseInterval: durationMs(r.backoff.baseIntervalMs),
            maxInterval:
              r.backoff.maxIntervalMs !== undefined
                ? durationMs(r.backoff.maxIntervalMs)
                : undefined,
          })
        : undefined,
      retryHostPredicate: r.otherHosts
        ? [{ name: PREVIOUS_HOSTS, typedConfig: { '@type': PREVIOUS_HOSTS_TYPE } }]
        : undefined,
      hostSelectionRetryMaxAttempts: r.otherHosts ? 5 : undefined,
    }),
  };
}

function hashPolicy(h: HashPolicy): ResourceMessage {
  const terminal = h.Terminal ? { terminal: true } : {};
  if (h.SourceIP) return { connectionProperties: { sourceIp: true }, ...terminal };
  const name = h.FieldValue ?? '';
  if (h.Field === 'header') return { header: { headerName: name }, ...terminal };
  if (h.Field === 'query_parameter') return { queryParameter: { name }, ...terminal };
  const c = h.CookieConfig;
  return {
    cookie: defined({
      name,
      ttl: c?.Session ? durationMs(0) : c?.TTL !== undefined ? durationMs(c.TTL) : undefined,
      path: c?.Path,
    }),
    ...terminal,
  };
}

function fault(route: Route): ResourceMessage {
  const f = route.fault;
  if (!f) return {};
  return {
    typedPerFilterConfig: {
      [FAULT_FILTER_NAME]: defined({
        '@type': HTTP_FAULT_TYPE,
        delay: f.Delay
          ? {
              fixedDelay: durationMs(f.Delay.Duration),
              percentage: fractionalPercent(f.Delay.Percent),
            }
          : undefined,
        abort: f.Abort
          ? { httpStatus: f.Abort.HttpStatus, percentage: fractionalPercent(f.Abort.Percent) }
          : undefined,
      }),
    },
  };
}

function envoyRoute(route: Route, protocol: Protocol): ResourceMessage {
  const action = {
    ...destinations(route.destinations),
    ...(route.timeoutMs !== undefined
      ? { timeout: durationMs(route.timeoutMs) }
      : defaultTimeout(protocol)),
    ...(route.idleTimeoutMs !== undefined ? { idleTimeout: durationMs(route.idleTimeoutMs) } : {}),
    ...retryPolicy(route),
    ...(route.prefixRewrite !== undefined ? { prefixRewrite: route.prefixRewrite } : {}),
    ...(route.hashPolicies.length > 0 ? { hashPolicy: route.hashPolicies.map(hashPolicy) } : {}),
    ...(route.mirror
      ? {
          requestMirrorPolicies: [
            {
              cluster: route.mirror.backend,
              runtimeFraction: { defaultValue: fractionalPercent(route.mirror.percent) },
            },
          ],
        }
      : {}),
  };
  return {
    match: routeMatch(route.match),
    route: action,
    ...headerEdits(route.requestHeaders, 'request'),
    ...headerEdits(route.responseHeaders, 'response'),
    ...fault(route),
  };
}

/** The outbound virtual host of one HTTP-family service. */
export function serviceVirtualHost(service: MeshService, domainSuffix: string): ResourceMessage {
  return {
    name: service.name,
    domains: serviceDomains(service.name, domainSuffix),
    routes: service.routes.map((r) => envoyRoute(r, service.protocol)),
  };
}

/**
 * The outbound route configuration from its virtual hosts (sorted by service name). Emitted
 * even with no services: every outbound listener asks RDS for it, and a missing route
 * configuration keeps listeners warming.
 */
export function outboundRouteConfiguration(
  virtualHosts: readonly ResourceMessage[],
): ResourceMessage {
  return { name: OUTBOUND_ROUTE_NAME, virtualHosts };
}

/** Everything arriving at a node's sidecar port goes to its own app. */
export function inboundRouteConfiguration(nodeId: string, protocol: Protocol): ResourceMessage {
  return {
    name: inboundRouteName(nodeId),
    virtualHosts: [
      {
        name: LOCAL_APP_VIRTUAL_HOST,
        domains: ['*'],
        routes: [routeAllTo(localAppClusterName(nodeId), protocol)],
      },
    ],
  };
}
