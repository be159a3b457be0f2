// Envoy resources as TypeScript types, in the JSON shape translators build and
// src/protos/envoy.ts encodes: a misspelt field or enum value is a compile error.
// The full tree (`envoy.config.route.v3.RetryPolicy`, `google.protobuf.UInt32Value`...) is
// generated at setup by scripts/gen-envoy-types.mjs into gen/envoy-types.d.ts (gitignored);
// the aliases below are the names translators use most. Types only: nothing of gen/ is
// imported at run time.
import type { EnvoyMessages, envoy, google } from '../../gen/envoy-types.js';

export type { EnvoyMessages, envoy, google, xds } from '../../gen/envoy-types.js';

/**
 * Message `N` if the descriptor has it, else `never` (so any use fails to compile): for types
 * whose .proto only recently joined scripts/gen-protos.mjs.
 */
type Generated<N extends string> = N extends keyof EnvoyMessages ? EnvoyMessages[N] : never;

// Well-known types.
export type Any = google.protobuf.Any;
export type Duration = google.protobuf.Duration;
export type Struct = google.protobuf.Struct;
export type BoolValue = google.protobuf.BoolValue;
export type UInt32Value = google.protobuf.UInt32Value;
export type DoubleValue = google.protobuf.DoubleValue;

// Resources.
export type Cluster = envoy.config.cluster.v3.Cluster;
export type ClusterLoadAssignment = envoy.config.endpoint.v3.ClusterLoadAssignment;
export type Listener = envoy.config.listener.v3.Listener;
export type RouteConfiguration = envoy.config.route.v3.RouteConfiguration;
export type Secret = envoy.extensions.transport_sockets.tls.v3.Secret;

// Core.
export type Address = envoy.config.core.v3.Address;
export type SocketAddress = envoy.config.core.v3.SocketAddress;
export type ConfigSource = envoy.config.core.v3.ConfigSource;
export type Metadata = envoy.config.core.v3.Metadata;
export type Locality = envoy.config.core.v3.Locality;
export type TransportSocket = envoy.config.core.v3.TransportSocket;
export type HeaderValueOption = envoy.config.core.v3.HeaderValueOption;
export type RuntimeFractionalPercent = envoy.config.core.v3.RuntimeFractionalPercent;
export type FractionalPercent = envoy.type.v3.FractionalPercent;
export type Percent = envoy.type.v3.Percent;
export type StringMatcher = envoy.type.matcher.v3.StringMatcher;
export type RegexMatcher = envoy.type.matcher.v3.RegexMatcher;

// Clusters and endpoints.
export type CircuitBreakers = envoy.config.cluster.v3.CircuitBreakers;
export type CircuitBreakerThresholds = envoy.config.cluster.v3.CircuitBreakers.Thresholds;
export type OutlierDetection = envoy.config.cluster.v3.OutlierDetection;
export type LbPolicy = envoy.config.cluster.v3.Cluster.LbPolicy;
export type LeastRequestLbConfig = envoy.config.cluster.v3.Cluster.LeastRequestLbConfig;
export type RingHashLbConfig = envoy.config.cluster.v3.Cluster.RingHashLbConfig;
export type MaglevLbConfig = envoy.config.cluster.v3.Cluster.MaglevLbConfig;
export type LbSubsetConfig = envoy.config.cluster.v3.Cluster.LbSubsetConfig;
export type LocalityLbEndpoints = envoy.config.endpoint.v3.LocalityLbEndpoints;
export type LbEndpoint = envoy.config.endpoint.v3.LbEndpoint;
export type Endpoint = envoy.config.endpoint.v3.Endpoint;
export type HttpProtocolOptions = envoy.extensions.upstreams.http.v3.HttpProtocolOptions;

// Listeners and their filters.
export type FilterChain = envoy.config.listener.v3.FilterChain;
export type FilterChainMatch = envoy.config.listener.v3.FilterChainMatch;
export type ListenerFilter = envoy.config.listener.v3.Filter;
export type HttpConnectionManager =
  envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;
export type HttpFilter = envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter;
export type Rds = envoy.extensions.filters.network.http_connection_manager.v3.Rds;
export type TcpProxy = envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy;
export type Router = envoy.extensions.filters.http.router.v3.Router;

// Routes.
export type VirtualHost = envoy.config.route.v3.VirtualHost;
export type Route = envoy.config.route.v3.Route;
export type RouteMatch = envoy.config.route.v3.RouteMatch;
export type RouteAction = envoy.config.route.v3.RouteAction;
export type WeightedCluster = envoy.config.route.v3.WeightedCluster;
export type ClusterWeight = envoy.config.route.v3.WeightedCluster.ClusterWeight;
export type RetryPolicy = envoy.config.route.v3.RetryPolicy;
export type HashPolicy = envoy.config.route.v3.RouteAction.HashPolicy;
export type RequestMirrorPolicy = envoy.config.route.v3.RouteAction.RequestMirrorPolicy;
export type PreviousHostsPredicate =
  Generated<'envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate'>;
export type HeaderMatcher = envoy.config.route.v3.HeaderMatcher;
export type QueryParameterMatcher = envoy.config.route.v3.QueryParameterMatcher;
export type RedirectAction = envoy.config.route.v3.RedirectAction;
export type DirectResponseAction = envoy.config.route.v3.DirectResponseAction;
export type HTTPFault = Generated<'envoy.extensions.filters.http.fault.v3.HTTPFault'>;
export type FaultAbort = Generated<'envoy.extensions.filters.http.fault.v3.FaultAbort'>;
export type FaultDelay = Generated<'envoy.extensions.filters.common.fault.v3.FaultDelay'>;

// Authorization: the rules both RBAC filters carry, and the two filters.
export type RBAC = envoy.config.rbac.v3.RBAC;
export type RbacPolicy = envoy.config.rbac.v3.Policy;
export type Permission = envoy.config.rbac.v3.Permission;
export type Principal = envoy.config.rbac.v3.Principal;
export type HttpRBAC = envoy.extensions.filters.http.rbac.v3.RBAC;
export type NetworkRBAC = envoy.extensions.filters.network.rbac.v3.RBAC;

// TLS.
export type UpstreamTlsContext = envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext;
export type DownstreamTlsContext = envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext;
export type CommonTlsContext = envoy.extensions.transport_sockets.tls.v3.CommonTlsContext;
export type SdsSecretConfig = envoy.extensions.transport_sockets.tls.v3.SdsSecretConfig;
export type CertificateValidationContext =
  envoy.extensions.transport_sockets.tls.v3.CertificateValidationContext;
export type TlsCertificate = envoy.extensions.transport_sockets.tls.v3.TlsCertificate;

/** A proto full name lucid-mesh has a type for, e.g. 'envoy.extensions.filters.http.router.v3.Router'. */
export type EnvoyTypeName = keyof EnvoyMessages;

/** An Any holding message `N`, in JSON shape ('@type' beside the message's own fields). */
export type TypedAny<N extends EnvoyTypeName> = Any &
  EnvoyMessages[N] & { '@type': `type.googleapis.com/${N}` };

/**
 * Packs `value` as an Any of `typeName`, its fields checked against that message's type
 * (a plain Any literal is not: its payload is unknown to the compiler).
 *   typedConfig: typedAny('envoy.extensions.filters.http.router.v3.Router', {})
 */
export function typedAny<N extends EnvoyTypeName>(
  typeName: N,
  value: EnvoyMessages[N],
): TypedAny<N> {
  return { '@type': `type.googleapis.com/${typeName}`, ...value } as TypedAny<N>;
}
