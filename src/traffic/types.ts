// The traffic configuration: Consul's config entries (service-defaults, proxy-defaults,
// service-router, service-splitter, service-resolver, service-intentions) as lucid-mesh
// understands them after validation. Field names are Consul's (PascalCase, as
// `consul config read -format json` prints them) so an entry can be pasted from Consul;
// durations are normalised to milliseconds, defaults are filled, lists keep their order.
// Fields marked "extension" are lucid-mesh's own, not Consul's.
import type { Protocol } from '../catalog/model.js';

export const ENTRY_KINDS = [
  'proxy-defaults',
  'service-defaults',
  'service-router',
  'service-splitter',
  'service-resolver',
  'service-intentions',
] as const;
export type EntryKind = (typeof ENTRY_KINDS)[number];

/** Durations are milliseconds after parsing ("500ms", "1.5s", "2m" or Go's integer nanoseconds). */
export type Millis = number;

export interface Limits {
  readonly MaxConnections?: number;
  readonly MaxPendingRequests?: number;
  readonly MaxConcurrentRequests?: number;
}

export interface PassiveHealthCheck {
  readonly Interval?: Millis;
  readonly MaxFailures?: number;
  /** Percent (0-100) of consecutive-5xx detections that eject. */
  readonly EnforcingConsecutive5xx?: number;
  readonly MaxEjectionPercent?: number;
  readonly BaseEjectionTime?: Millis;
}

/** How a proxy talks to one upstream (Consul: UpstreamConfig.Defaults / Overrides[]). */
export interface UpstreamSettings {
  readonly ConnectTimeoutMs?: number;
  readonly Limits?: Limits;
  readonly PassiveHealthCheck?: PassiveHealthCheck;
}

export interface UpstreamOverride extends UpstreamSettings {
  /** The upstream service these settings are for. */
  readonly Name: string;
}

export interface UpstreamConfig {
  readonly Defaults?: UpstreamSettings;
  readonly Overrides: readonly UpstreamOverride[];
}

/** How a proxy reaches instances in other datacenters: through a mesh gateway or directly. */
export type MeshGatewayMode = 'local' | 'remote' | 'none';

/** Extension: mesh-wide tracing (proxy-defaults Tracing). */
export interface TracingSettings {
  readonly Provider: 'opentelemetry';
  /** The OTLP gRPC collector every sidecar and the control plane send spans to. */
  readonly Collector: { readonly host: string; readonly port: number };
  /** Share of requests that start a trace, 0-100 (decimals allowed). */
  readonly SamplingPercent: number;
}

/** Consul's AccessLogs (proxy-defaults; lucid-mesh also reads it on service-defaults). */
export interface AccessLogs {
  readonly Enabled: boolean;
  /** otlp: extension, log records to the tracing collector (Tracing.Collector or the serve flag). */
  readonly Type: 'stdout' | 'stderr' | 'file' | 'otlp';
  /** With Type file only. */
  readonly Path?: string;
  /** Parsed from Consul's JSON string. */
  readonly JSONFormat?: Readonly<Record<string, unknown>>;
  readonly TextFormat?: string;
}

export interface ProxyDefaults {
  readonly Kind: 'proxy-defaults';
  /** Always "global". */
  readonly Name: 'global';
  /** Consul's opaque proxy Config; lucid-mesh reads `protocol` and `connect_timeout_ms`. */
  readonly Config: {
    readonly protocol?: Protocol;
    readonly connect_timeout_ms?: number;
    /** Extension: every sidecar's idle timeout towards its app (docs/local-app.md). */
    readonly lucid_local_app_idle_timeout_ms?: number;
  };
  /** Extension: upstream settings for every proxy's upstreams (Consul has them per service). */
  readonly UpstreamConfig?: UpstreamConfig;
  /** Every proxy's default way to other datacenters. */
  readonly MeshGateway?: { readonly Mode?: MeshGatewayMode };
  /** Extension: traces from every sidecar's HTTP connection managers. */
  readonly Tracing?: TracingSettings;
  /** Every sidecar's access logs unless its service-defaults say otherwise. */
  readonly AccessLogs?: AccessLogs;
}

export interface ServiceDefaults {
  readonly Kind: 'service-defaults';
  readonly Name: string;
  readonly Protocol?: Protocol;
  /** How this service's proxies reach their upstreams. */
  readonly UpstreamConfig?: UpstreamConfig;
  /** How this service's proxies reach other datacenters (wins over proxy-defaults). */
  readonly MeshGateway?: { readonly Mode?: MeshGatewayMode };
  /** Extension (Consul has it on proxy-defaults only): wins over proxy-defaults AccessLogs. */
  readonly AccessLogs?: AccessLogs;
}

export type PathMatch =
  { readonly PathExact: string } | { readonly PathPrefix: string } | { readonly PathRegex: string };

export interface HeaderMatch {
  readonly Name: string;
  /** Exactly one of Exact, Prefix, Suffix, Regex, Present (Present: true means "is set"). */
  readonly Exact?: string;
  readonly Prefix?: string;
  readonly Suffix?: string;
  readonly Regex?: string;
  readonly Present?: boolean;
  readonly Invert: boolean;
}

export interface QueryParamMatch {
  readonly Name: string;
  /** Exactly one of Exact, Regex, Present. */
  readonly Exact?: string;
  readonly Regex?: string;
  readonly Present?: boolean;
}

export interface HttpMatch {
  readonly PathExact?: string;
  readonly PathPrefix?: string;
  readonly PathRegex?: string;
  /** The path match ignores case (Consul's, for PathExact, PathPrefix and PathRegex). */
  readonly CaseInsensitive?: boolean;
  /** Upper case, e.g. GET. Empty = any method. */
  readonly Methods: readonly string[];
  readonly Header: readonly HeaderMatch[];
  readonly QueryParam: readonly QueryParamMatch[];
}

export interface HeaderEdits {
  readonly Add: Readonly<Record<string, string>>;
  readonly Set: Readonly<Record<string, string>>;
  readonly Remove: readonly string[];
}

export interface RetryBackoff {
  readonly BaseInterval: Millis;
  readonly MaxInterval?: Millis;
}

export interface Fault {
  readonly Delay?: { readonly Duration: Millis; readonly Percent: number };
  readonly Abort?: { readonly HttpStatus: number; readonly Percent: number };
}

export interface Mirror {
  readonly Service: string;
  readonly ServiceSubset?: string;
  /** Share of requests copied, 0-100. */
  readonly Percent: number;
}

export interface RouteDestination {
  /** Default: the router's own service. */
  readonly Service?: string;
  readonly ServiceSubset?: string;
  readonly PrefixRewrite?: string;
  readonly RequestTimeout?: Millis;
  readonly IdleTimeout?: Millis;
  readonly NumRetries?: number;
  readonly RetryOnConnectFailure: boolean;
  /** Consul's names: 5xx, gateway-error, reset, connect-failure, refused-stream, ... */
  readonly RetryOn: readonly string[];
  readonly RetryOnStatusCodes: readonly number[];
  readonly RequestHeaders?: HeaderEdits;
  readonly ResponseHeaders?: HeaderEdits;
  /** Extension. */
  readonly RetryBackoff?: RetryBackoff;
  /** Extension. */
  readonly RetryOnOtherHosts?: boolean;
  /** Extension. */
  readonly Fault?: Fault;
  /** Extension. */
  readonly Mirror?: Mirror;
}

export interface ServiceRoute {
  readonly Match?: { readonly HTTP?: HttpMatch };
  readonly Destination?: RouteDestination;
}

export interface ServiceRouter {
  readonly Kind: 'service-router';
  readonly Name: string;
  readonly Routes: readonly ServiceRoute[];
}

export interface Split {
  /** Percent, decimals allowed (Consul keeps two). */
  readonly Weight: number;
  readonly Service?: string;
  readonly ServiceSubset?: string;
  readonly RequestHeaders?: HeaderEdits;
  readonly ResponseHeaders?: HeaderEdits;
}

export interface ServiceSplitter {
  readonly Kind: 'service-splitter';
  readonly Name: string;
  readonly Splits: readonly Split[];
}

export interface ResolverSubset {
  /** Consul's filter expression over Service.Tags / Service.Meta; empty = every instance. */
  readonly Filter: string;
  readonly OnlyPassing: boolean;
}

export const LB_POLICIES = [
  'round_robin',
  'least_request',
  'random',
  'ring_hash',
  'maglev',
] as const;
export type LbPolicyName = (typeof LB_POLICIES)[number];

export interface HashPolicy {
  /** header | cookie | query_parameter; absent with SourceIP. */
  readonly Field?: 'header' | 'cookie' | 'query_parameter';
  readonly FieldValue?: string;
  readonly SourceIP: boolean;
  readonly Terminal: boolean;
  readonly CookieConfig?: {
    readonly Session: boolean;
    readonly TTL?: Millis;
    readonly Path?: string;
  };
}

export interface LoadBalancer {
  readonly Policy: LbPolicyName;
  readonly LeastRequestConfig?: { readonly ChoiceCount?: number };
  readonly RingHashConfig?: {
    readonly MinimumRingSize?: number;
    readonly MaximumRingSize?: number;
  };
  readonly HashPolicies: readonly HashPolicy[];
}

export interface FailoverTarget {
  readonly Service?: string;
  readonly ServiceSubset?: string;
  readonly Datacenter?: string;
}

export interface Failover {
  readonly Service?: string;
  readonly ServiceSubset?: string;
  readonly Datacenters: readonly string[];
  readonly Targets: readonly FailoverTarget[];
}

export interface ServiceResolver {
  readonly Kind: 'service-resolver';
  readonly Name: string;
  readonly DefaultSubset?: string;
  readonly Subsets: Readonly<Record<string, ResolverSubset>>;
  readonly ConnectTimeout?: Millis;
  readonly RequestTimeout?: Millis;
  readonly Redirect?: {
    readonly Service?: string;
    readonly ServiceSubset?: string;
    /** Every request to this service goes to its instances in that datacenter. */
    readonly Datacenter?: string;
  };
  readonly LoadBalancer?: LoadBalancer;
  /**
   * By subset ("*" = any): the datacenters (or same-service targets in them) that take load,
   * in order, when the caller's own has too few healthy endpoints.
   */
  readonly Failover: Readonly<Record<string, Failover>>;
  /** Extension: percent of healthy endpoints below which the next priority takes load. */
  readonly FailoverThreshold?: number;
}

export interface IntentionHttpPermission {
  readonly PathExact?: string;
  readonly PathPrefix?: string;
  readonly PathRegex?: string;
  readonly Methods: readonly string[];
  readonly Header: readonly HeaderMatch[];
}

export interface IntentionPermission {
  readonly Action: 'allow' | 'deny';
  readonly HTTP: IntentionHttpPermission;
}

export interface IntentionSource {
  /** A service name or "*". */
  readonly Name: string;
  /** L4 intention: exactly one of Action and Permissions is set. */
  readonly Action?: 'allow' | 'deny';
  /** L7 intention: evaluated in order, the first match decides. */
  readonly Permissions?: readonly IntentionPermission[];
  /**
   * The fields that put these callers elsewhere (Peer, a Namespace or Partition other than
   * default, SamenessGroup; unsupported): such a source is no rule for this mesh's `Name`.
   */
  readonly Elsewhere?: readonly string[];
}

export interface ServiceIntentions {
  readonly Kind: 'service-intentions';
  /** The destination service, or "*" for every destination (Consul's default intention). */
  readonly Name: string;
  readonly Sources: readonly IntentionSource[];
}

export type ConfigEntry =
  | ProxyDefaults
  | ServiceDefaults
  | ServiceRouter
  | ServiceSplitter
  | ServiceResolver
  | ServiceIntentions;

/** Something present in the input that lucid-mesh does not implement (listed, never silent). */
export interface Unsupported {
  readonly kind: string;
  readonly name: string;
  /**
   * e.g. "Routes[0].Destination.RetryOnStatusCodes" or "EnvoyExtensions"; "" when the whole
   * entry is unsupported (a Consul kind lucid-mesh does not implement, e.g. "mesh").
   */
  readonly field: string;
}

/** Every entry in force, by kind and name. Unchanged entries keep their object identity. */
export interface TrafficConfig {
  readonly proxyDefaults?: ProxyDefaults;
  readonly serviceDefaults: ReadonlyMap<string, ServiceDefaults>;
  readonly routers: ReadonlyMap<string, ServiceRouter>;
  readonly splitters: ReadonlyMap<string, ServiceSplitter>;
  readonly resolvers: ReadonlyMap<string, ServiceResolver>;
  readonly intentions: ReadonlyMap<string, ServiceIntentions>;
  readonly unsupported: readonly Unsupported[];
}

export const EMPTY_TRAFFIC: TrafficConfig = Object.freeze({
  serviceDefaults: new Map(),
  routers: new Map(),
  splitters: new Map(),
  resolvers: new Map(),
  intentions: new Map(),
  unsupported: [],
});
