// Route configurations: the shared outbound one (RDS: one virtual host per HTTP-family
// service, its routes from the mesh's compiled router/splitter/resolver chain) and a node's
// inline inbound one.
import type { Protocol } from '../catalog/model.js';
import type { MeshService, Route, RouteMatch, WeightedDestination } from '../mesh/types.js';
import {
  typedAny,
  type ClusterWeight,
  type Duration,
  type HashPolicy as EnvoyHashPolicy,
  type HeaderMatcher,
  type HeaderValueOption,
  type QueryParameterMatcher,
  type Route as EnvoyRoute,
  type RouteAction,
  type RouteConfiguration,
  type RouteMatch as EnvoyRouteMatch,
  type RetryPolicy,
  type VirtualHost,
  type envoy,
} from '../protos/envoy-types.js';
import type { HashPolicy, HeaderEdits, QueryParamMatch } from '../traffic/types.js';
import { defined, durationMs, fractionalPercent } from './envoy.js';
import { headerMatcher, methodMatcher, stringMatcher } from './matchers.js';
import {
  LOCAL_APP_VIRTUAL_HOST,
  OUTBOUND_ROUTE_NAME,
  inboundRouteName,
  localAppClusterName,
} from './names.js';

export const FAULT_FILTER_NAME = 'envoy.filters.http.fault';
export const HTTP_FAULT_TYPE_NAME = 'envoy.extensions.filters.http.fault.v3.HTTPFault';
const PREVIOUS_PRIORITIES = 'envoy.retry_priorities.previous_priorities';
const PREVIOUS_PRIORITIES_TYPE_NAME =
  'envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig';
const PREVIOUS_HOSTS = 'envoy.retry_host_predicates.previous_hosts';
const PREVIOUS_HOSTS_TYPE_NAME =
  'envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate';

type HeaderAppendAction = envoy.config.core.v3.HeaderValueOption.HeaderAppendAction;
/** The header edits a route and a weighted cluster both carry. */
type HeaderEditFields = Pick<
  ClusterWeight & EnvoyRoute,
  | 'requestHeadersToAdd'
  | 'requestHeadersToRemove'
  | 'responseHeadersToAdd'
  | 'responseHeadersToRemove'
>;

/** gRPC streams are long-lived; Envoy's default 15 s route timeout would cut them. */
function defaultTimeout(protocol: Protocol): Duration | undefined {
  return protocol === 'grpc' ? durationMs(0) : undefined;
}

function routeAllTo(name: string, cluster: string, protocol: Protocol): EnvoyRoute {
  return {
    name,
    match: { prefix: '/' },
    route: defined({ cluster, timeout: defaultTimeout(protocol) }),
  };
}

/** Host names an app may use for a service, with or without the mesh suffix and a port. */
export function serviceDomains(service: string, domainSuffix: string): string[] {
  const fqdn = `${service}.${domainSuffix}`;
  return [service, `${service}:*`, fqdn, `${fqdn}:*`];
}

function queryMatcher(q: QueryParamMatch): QueryParameterMatcher {
  if (q.Present) return { name: q.Name, presentMatch: true };
  return { name: q.Name, stringMatch: stringMatcher(q) };
}

function methodMatchers(methods: readonly string[]): HeaderMatcher[] {
  return methods.length === 0 ? [] : [methodMatcher(methods)];
}

function routeMatch(m: RouteMatch): EnvoyRouteMatch {
  const p = m.path;
  // Envoy's case_sensitive applies to prefix and path, not to safe_regex: RE2's (?i) does.
  const path: EnvoyRouteMatch =
    p === undefined
      ? { prefix: '/' }
      : p.kind === 'exact'
        ? { path: p.value }
        : p.kind === 'prefix'
          ? { prefix: p.value }
          : { safeRegex: { regex: p.caseInsensitive ? `(?i)${p.value}` : p.value } };
  if (p?.caseInsensitive && p.kind !== 'regex') path.caseSensitive = { value: false };
  const headers = [...methodMatchers(m.methods), ...m.headers.map(headerMatcher)];
  const queryParameters = m.queryParams.map(queryMatcher);
  return defined({
    ...path,
    headers: headers.length > 0 ? headers : undefined,
    queryParameters: queryParameters.length > 0 ? queryParameters : undefined,
  });
}

function headerValues(
  values: Readonly<Record<string, string>>,
  appendAction: HeaderAppendAction,
): HeaderValueOption[] {
  return Object.keys(values)
    .sort()
    .map((key) => ({ header: { key, value: values[key] }, appendAction }));
}

/** Consul's Add appends, Set overwrites, Remove removes. */
function headerEdits(
  edits: HeaderEdits | undefined,
  side: 'request' | 'response',
): HeaderEditFields {
  if (!edits) return {};
  const added = [
    ...headerValues(edits.Add, 'APPEND_IF_EXISTS_OR_ADD'),
    ...headerValues(edits.Set, 'OVERWRITE_IF_EXISTS_OR_ADD'),
  ];
  const add = added.length > 0 ? added : undefined;
  const remove = edits.Remove.length > 0 ? [...edits.Remove] : undefined;
  return side === 'request'
    ? defined({ requestHeadersToAdd: add, requestHeadersToRemove: remove })
    : defined({ responseHeadersToAdd: add, responseHeadersToRemove: remove });
}

function weightedCluster(d: WeightedDestination): ClusterWeight {
  return {
    name: d.backend,
    weight: { value: d.weight },
    ...headerEdits(d.requestHeaders, 'request'),
    ...headerEdits(d.responseHeaders, 'response'),
  };
}

function destinations(
  ds: readonly WeightedDestination[],
): Pick<RouteAction, 'cluster' | 'weightedClusters'> {
  const only = ds[0];
  if (ds.length === 1 && only && !only.requestHeaders && !only.responseHeaders) {
    return { cluster: only.backend };
  }
  return { weightedClusters: { clusters: ds.map(weightedCluster) } };
}

function retryPolicy(route: Route): RetryPolicy | undefined {
  const r = route.retry;
  if (!r) return undefined;
  return defined({
    retryOn: r.retryOn.join(','),
    numRetries: r.numRetries !== undefined ? { value: r.numRetries } : undefined,
    retriableStatusCodes:
      r.retriableStatusCodes.length > 0 ? [...r.retriableStatusCodes] : undefined,
    retryBackOff: r.backoff
      ? defined({
          baseInterval: durationMs(r.backoff.baseIntervalMs),
          maxInterval:
            r.backoff.maxIntervalMs !== undefined ? durationMs(r.backoff.maxIntervalMs) : undefined,
        })
      : undefined,
    retryHostPredicate: r.otherHosts
      ? [{ name: PREVIOUS_HOSTS, typedConfig: typedAny(PREVIOUS_HOSTS_TYPE_NAME, {}) }]
      : undefined,
    hostSelectionRetryMaxAttempts: r.otherHosts ? 5 : undefined,
    // Each retry goes to the next priority (the next locality or datacenter) after a failure
    // when a datacenter dies, retries reach the healthy one before outlier detection and
    // health checks have caught up. With one priority it changes nothing.
    retryPriority: {
      name: PREVIOUS_PRIORITIES,
      typedConfig: typedAny(PREVIOUS_PRIORITIES_TYPE_NAME, { updateFrequency: 1 }),
    },
  });
}

function hashPolicy(h: HashPolicy): EnvoyHashPolicy {
  const terminal: EnvoyHashPolicy = h.Terminal ? { terminal: true } : {};
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

/** Per-route fault injection: the config of the always-present fault filter, for this route. */
function fault(route: Route): EnvoyRoute['typedPerFilterConfig'] {
  const f = route.fault;
  if (!f) return undefined;
  return {
    [FAULT_FILTER_NAME]: typedAny(
      HTTP_FAULT_TYPE_NAME,
      defined({
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
    ),
  };
}

function envoyRoute(route: Route, protocol: Protocol): EnvoyRoute {
  const action: RouteAction = defined({
    ...destinations(route.destinations),
    timeout: route.timeoutMs !== undefined ? durationMs(route.timeoutMs) : defaultTimeout(protocol),
    idleTimeout: route.idleTimeoutMs !== undefined ? durationMs(route.idleTimeoutMs) : undefined,
    retryPolicy: retryPolicy(route),
    prefixRewrite: route.prefixRewrite,
    hashPolicy: route.hashPolicies.length > 0 ? route.hashPolicies.map(hashPolicy) : undefined,
    requestMirrorPolicies: route.mirror
      ? [
          {
            cluster: route.mirror.backend,
            runtimeFraction: { defaultValue: fractionalPercent(route.mirror.percent) },
          },
        ]
      : undefined,
  });
  return defined({
    match: routeMatch(route.match),
    route: action,
    ...headerEdits(route.requestHeaders, 'request'),
    ...headerEdits(route.responseHeaders, 'response'),
    typedPerFilterConfig: fault(route),
  });
}

/** The outbound virtual host of one HTTP-family service. */
export function serviceVirtualHost(service: MeshService, domainSuffix: string): VirtualHost {
  return {
    name: service.name,
    domains: serviceDomains(service.name, domainSuffix),
    // Named so access logs (%ROUTE_NAME%) tell which route a request took: <service>/<index>.
    routes: service.routes.map((r, i) => ({
      name: `${service.name}/${i}`,
      ...envoyRoute(r, service.protocol),
    })),
  };
}

/**
 * The outbound route configuration from its virtual hosts (sorted by service name). Emitted
 * even with no services: every outbound listener asks RDS for it, and a missing route
 * configuration keeps listeners warming.
 */
export function outboundRouteConfiguration(
  virtualHosts: readonly VirtualHost[],
): RouteConfiguration {
  return { name: OUTBOUND_ROUTE_NAME, virtualHosts };
}

/** Everything arriving at a node's sidecar port goes to its own app. */
export function inboundRouteConfiguration(nodeId: string, protocol: Protocol): RouteConfiguration {
  return {
    name: inboundRouteName(nodeId),
    virtualHosts: [
      {
        name: LOCAL_APP_VIRTUAL_HOST,
        domains: ['*'],
        routes: [routeAllTo(inboundRouteName(nodeId), localAppClusterName(nodeId), protocol)],
      },
    ],
  };
}
