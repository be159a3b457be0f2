// The mesh model (IR): what the control plane understood from the catalog, the traffic
// configuration and the policy, before any Envoy terms. Built by buildMesh (pure, validated,
// defaulted, sorted, frozen); the translators read nothing else. `lucid-mesh mesh` and
// GET /v1/mesh show it as it is.
import type { Health, Locality, Protocol } from '../catalog/model.js';
import type { AllowedSources } from '../policy/evaluate.js';
import type { ConfigProblem } from '../traffic/provider.js';
import type {
  MeshGatewayMode,
  Fault,
  HashPolicy,
  HeaderEdits,
  HeaderMatch,
  IntentionPermission,
  LbPolicyName,
  Limits,
  QueryParamMatch,
  Unsupported,
} from '../traffic/types.js';

/** The CA backend's identity space; its SPIFFE ID and SNI rules live in ca/spiffe.ts. */
export interface MeshIdentity {
  readonly trustDomain: string;
  readonly namespace: string;
  /** Absent: lucid-mesh's format; `consul`: Consul Connect's (serve --ca consul-connect). */
  readonly format?: 'consul';
  /** The datacenter the CA's own leaves name (consul format). */
  readonly datacenter?: string;
}

/** Mesh-wide settings from the serve flags. */
export interface MeshSettings {
  /** DNS suffix of service virtual hosts and SNI: `<service>.<domainSuffix>`. */
  readonly domainSuffix: string;
  /** Upstream connect timeout when nothing configures one. */
  readonly connectTimeoutMs: number;
  /** mTLS between sidecars, with certificates of this identity space. */
  readonly mtls?: MeshIdentity;
  /** Proxies are authenticated: a node gets an instance's inbound config only for its service. */
  readonly authenticatedProxies: boolean;
  /** What an intention-configured destination does with callers no intention names. */
  readonly intentionsDefault: 'allow' | 'deny';
  /** This control plane's datacenter: instances and proxies that name none are in it. */
  readonly datacenter: string;
  /** Failover order of the other datacenters (serve --datacenters); others follow by name. */
  readonly datacenters: readonly string[];
  /**
   * Share (percent) of healthy endpoints in a priority below which the next one takes load
   * (serve --failover-threshold); absent: Envoy's default (overprovisioning 1.4, ≈ 71 %).
   */
  readonly failoverThresholdPercent?: number;
  /**
   * Which services a sidecar receives (serve --scope; docs/scoping.md). Absent: `all`.
   * `declared`: its service's declared upstreams, else everything; `policy`: declared
   * upstreams, else what the policy and intentions let it call, else everything.
   */
  readonly scope?: ScopeMode;
  /** Tracing when proxy-defaults sets none (serve --tracing-otlp / --tracing-sample). */
  readonly tracing?: {
    readonly collector: { host: string; port: number };
    samplingPercent: number;
  };
}

export type { Locality };

export const SCOPE_MODES = ['all', 'declared', 'policy'] as const;
export type ScopeMode = (typeof SCOPE_MODES)[number];

/** A locality with its datacenter settled (the mesh's own when the input named none). */
export interface PlacedLocality extends Locality {
  readonly datacenter: string;
}

export interface Endpoint {
  /** The catalog instance id (shown by Envoy's /clusters as the hostname). */
  readonly id: string;
  readonly address: string;
  /** Where peers connect: the sidecar port when meshed, else the app port. */
  readonly port: number;
  /** Has a sidecar (so it terminates mesh mTLS). */
  readonly meshed: boolean;
  /** False only in failover backends: a critical instance, sent so priorities count it. */
  readonly healthy: boolean;
}

export interface LocalityEndpoints {
  readonly locality: PlacedLocality;
  /** Sorted by id. */
  readonly endpoints: readonly Endpoint[];
}

export interface OutlierDetection {
  readonly intervalMs?: number;
  readonly consecutive5xx?: number;
  readonly enforcingConsecutive5xx?: number;
  readonly maxEjectionPercent?: number;
  readonly baseEjectionTimeMs?: number;
}

export interface LoadBalancing {
  readonly policy: LbPolicyName;
  readonly choiceCount?: number;
  readonly minimumRingSize?: number;
  readonly maximumRingSize?: number;
}

/** One upstream target: a service or one subset of it. Becomes an EDS cluster. */
export interface Backend {
  /** Cluster and ClusterLoadAssignment name (see translate/names.ts backendName). */
  readonly name: string;
  readonly service: string;
  readonly subset?: string;
  readonly protocol: Protocol;
  readonly connectTimeoutMs: number;
  readonly limits?: Limits;
  readonly outlierDetection?: OutlierDetection;
  readonly loadBalancing: LoadBalancing;
  /**
   * Instances grouped by locality, sorted. Without `failover`, only those that receive traffic
   * (critical ones left out); with it, all of them (critical ones marked unhealthy).
   */
  readonly localities: readonly LocalityEndpoints[];
  /**
   * Present when the backend spans localities (or its resolver fails over): then what a
   * caller gets depends on where it is — priorities by locality, see translate/endpoints.ts.
   */
  readonly failover?: BackendFailover;
}

export interface BackendFailover {
  /**
   * The resolver's failover datacenters, in order, after the caller's own; absent: every
   * datacenter, the caller's first, then settings.datacenters, then the rest by name.
   */
  readonly datacenters?: readonly string[];
  /** Percent of healthy endpoints below which the next priority takes load. */
  readonly thresholdPercent?: number;
  /**
   * Other backends (another service, or a subset) to use, in order, once this one has no
   * healthy endpoint left for the caller (Consul's Failover Service/ServiceSubset targets).
   */
  readonly targets?: readonly string[];
}

export interface PathMatch {
  readonly kind: 'exact' | 'prefix' | 'regex';
  readonly value: string;
  /** Consul's CaseInsensitive: the path matches whatever its case. */
  readonly caseInsensitive?: true;
}

export interface RouteMatch {
  /** Absent: any path (the catch-all). */
  readonly path?: PathMatch;
  readonly methods: readonly string[];
  readonly headers: readonly HeaderMatch[];
  readonly queryParams: readonly QueryParamMatch[];
}

export interface WeightedDestination {
  readonly backend: string;
  /** Out of 10000 (Consul's percent with two decimals); the route's weights sum to 10000. */
  readonly weight: number;
  readonly requestHeaders?: HeaderEdits;
  readonly responseHeaders?: HeaderEdits;
}

export interface RetryPolicy {
  /** Envoy retry_on conditions, sorted. */
  readonly retryOn: readonly string[];
  readonly numRetries?: number;
  readonly retriableStatusCodes: readonly number[];
  readonly backoff?: { readonly baseIntervalMs: number; readonly maxIntervalMs?: number };
  readonly otherHosts: boolean;
}

export interface Route {
  readonly match: RouteMatch;
  readonly destinations: readonly WeightedDestination[];
  /** 0 = no timeout. Absent: Envoy's default (15 s), except grpc (0). */
  readonly timeoutMs?: number;
  readonly idleTimeoutMs?: number;
  readonly retry?: RetryPolicy;
  readonly prefixRewrite?: string;
  readonly requestHeaders?: HeaderEdits;
  readonly responseHeaders?: HeaderEdits;
  readonly fault?: Fault;
  readonly mirror?: { readonly backend: string; readonly percent: number };
  readonly hashPolicies: readonly HashPolicy[];
}

/** An ordered intention: the first one whose source matches decides (Consul's precedence). */
export interface IntentionRule {
  /** A service name, or "*" (every caller not named by an earlier rule). */
  readonly source: string;
  /** L4: the decision for every request of the source. */
  readonly action?: 'allow' | 'deny';
  /** L7: in order, the first match decides; none matching falls to the default. */
  readonly permissions?: readonly IntentionPermission[];
}

/** Who may call a service: both parts must allow (deny wins). */
export interface Authorization {
  /** The policy file's answer for this destination (planes, rules, defaults). */
  readonly policy?: AllowedSources;
  /** Consul's service-intentions for this destination. */
  readonly intentions?: {
    readonly rules: readonly IntentionRule[];
    readonly default: 'allow' | 'deny';
  };
}

export interface MeshInstance {
  readonly id: string;
  readonly address: string;
  readonly port: number;
  readonly sidecarPort?: number;
  /** Where its sidecar reaches the app; absent: 127.0.0.1. */
  readonly localAppAddress?: string;
  readonly health: Health;
  readonly locality: PlacedLocality;
}

export interface MeshService {
  readonly name: string;
  readonly protocol: Protocol;
  /** Where the protocol came from, for messages: "catalog", "service-defaults/api", ... */
  readonly protocolFrom: string;
  /** tcp: the local port every sidecar listens on for this service (absent: no listener). */
  readonly outboundPort?: number;
  /** The service itself first, then its subsets by name. */
  readonly backends: readonly Backend[];
  /** HTTP-family services: the routes of its outbound virtual host, catch-all last. */
  readonly routes: readonly Route[];
  readonly authorization: Authorization;
  /** Sorted by id. */
  readonly instances: readonly MeshInstance[];
  /**
   * Backends whose settings differ for this service's own proxies (its service-defaults
   * UpstreamConfig): same names as the shared ones, which they replace for those proxies.
   */
  readonly upstreamOverrides: readonly Backend[];
  /** How this service's proxies reach other datacenters (service-defaults MeshGateway). */
  readonly gatewayMode?: MeshGatewayMode;
  /** The upstreams its sidecars declare (catalog, Consul Proxy.Upstreams), sorted by name. */
  readonly upstreams?: readonly MeshUpstream[];
  /**
   * HTTP-family services: its sidecars' idle timeout towards the app, when configured (the
   * catalog's service field, else proxy-defaults); absent: the translator's default.
   */
  readonly localAppIdleTimeoutMs?: number;
}

/** A declared upstream (see catalog Upstream). */
export interface MeshUpstream {
  readonly name: string;
  readonly localBindPort?: number;
  readonly localBindAddress?: string;
}

/** What one sidecar receives: the services it may reach (src/mesh/scope.ts). */
export interface ProxyScope {
  /** What decided it: declared upstreams, the policy and intentions, or nothing (all). */
  readonly from: 'declared' | 'policy' | 'all';
  /** Reachable services, sorted; absent when `from` is all (every service). */
  readonly services?: readonly string[];
  /** A hash of `services`: proxies with the same key share encoded CDS/RDS. */
  readonly key?: string;
}

/** A mesh gateway (catalog `gateways`, Consul `Kind: mesh-gateway`). */
export interface MeshGateway {
  readonly id: string;
  readonly datacenter: string;
  /** Where its own datacenter reaches it. */
  readonly address: string;
  readonly port: number;
  /** Where other datacenters reach it. */
  readonly wanAddress: string;
  readonly wanPort: number;
  readonly healthy: boolean;
}

export type { MeshGatewayMode };

// Tracing and access logs, settled by observability.ts.
/** Where spans go and how many requests start a trace. */
export interface MeshTracing {
  readonly collector: { readonly host: string; readonly port: number };
  /** 0-100. */
  readonly samplingPercent: number;
  /** "proxy-defaults/global" or "serve flags", for messages and `lucid-mesh mesh`. */
  readonly from: string;
}

/** One enabled access log. */
export interface MeshAccessLog {
  /** otlp: records to the tracing collector (only kept when the mesh has tracing). */
  readonly type: 'stdout' | 'stderr' | 'file' | 'otlp';
  readonly path?: string;
  /** Exactly one of json and text; neither: lucid-mesh's default JSON format. */
  readonly json?: Readonly<Record<string, unknown>>;
  readonly text?: string;
}

export interface MeshObservability {
  readonly tracing?: MeshTracing;
  /** Every proxy's access log unless its service's entry says otherwise. */
  readonly accessLog?: MeshAccessLog;
  /** Services whose service-defaults set AccessLogs: their log, or null when disabled there. */
  readonly serviceAccessLogs?: Readonly<Record<string, MeshAccessLog | null>>;
}

export interface Mesh {
  readonly settings: MeshSettings;
  /** Sorted by name. */
  readonly services: readonly MeshService[];
  /** Sorted by id. */
  readonly gateways: readonly MeshGateway[];
  /** How proxies reach other datacenters unless their service-defaults say otherwise. */
  readonly gatewayMode: MeshGatewayMode;
  /** Entries that could not be applied (fully or in part) and what was done instead. */
  readonly problems: readonly ConfigProblem[];
  /** Input the mesh does not implement (listed, never silently dropped). */
  readonly unsupported: readonly Unsupported[];
  /** Tracing and access logs (docs/observability.md); absent when none is configured. */
  readonly observability?: MeshObservability;
}

/** A connected sidecar, as the mesh sees it. */
export interface MeshProxy {
  readonly nodeId: string;
  readonly service: string;
  readonly outboundPort: number;
  /** Present when the node is a meshed instance it may serve (see MeshSettings). */
  readonly inbound?: {
    readonly service: string;
    readonly protocol: Protocol;
    readonly sidecarPort: number;
    readonly appPort: number;
    /** Its instance's localAppAddress (absent: 127.0.0.1). */
    readonly appAddress?: string;
    readonly authorization: Authorization;
    /** Its service's localAppIdleTimeoutMs (absent: the translator's default). */
    readonly localAppIdleTimeoutMs?: number;
  };
  /** Where the proxy runs: what its node says, else its registration's, else the mesh's dc. */
  readonly locality: PlacedLocality;
  /** How it reaches other datacenters. */
  readonly gatewayMode: MeshGatewayMode;
  /** Present when the node is a mesh gateway of the catalog (it gets gateway config only). */
  readonly gateway?: MeshGateway;
  /** Its service's upstreamOverrides (empty for a node outside the catalog). */
  readonly upstreamOverrides: readonly Backend[];
  /** Spans of its HTTP connection managers go there (service name: its service). */
  readonly tracing?: MeshTracing;
  /** Its HTTP connection managers log each request there. */
  readonly accessLog?: MeshAccessLog;
  /** Present when the node asked for a DNS listener (node.metadata.dns_port; docs/dns.md). */
  readonly dns?: MeshProxyDns;
  /** The services it receives; absent: every service. */
  readonly scope?: ProxyScope;
  /** Declared upstreams with a local bind port: a listener each (Consul Connect apps). */
  readonly bindUpstreams?: readonly MeshBindUpstream[];
  /**
   * Its own ports are bound without SO_REUSEPORT (node.metadata.exclusive_ports, written by
   * `lucid-mesh bootstrap`; translate/envoy.ts EXCLUSIVE_PORT). Absent: Envoy's default.
   */
  readonly exclusivePorts?: true;
}

/** A local listener for one upstream (Consul's LocalBindAddress:LocalBindPort). */
export interface MeshBindUpstream {
  readonly service: string;
  readonly protocol: Protocol;
  /** Default 127.0.0.1. */
  readonly address: string;
  readonly port: number;
}

/** A sidecar's DNS listener: `<name>.<domainSuffix>` answered with its outbound address. */
export interface MeshProxyDns {
  /** UDP port on 127.0.0.1. */
  readonly port: number;
  readonly domainSuffix: string;
  /** The mesh's service names, sorted; the same array while they stay the same. */
  readonly names: readonly string[];
  /** false: names not in the table are answered NXDOMAIN, not forwarded (node.metadata.dns_forward). */
  readonly forward: boolean;
}

export const DEFAULT_MESH_SETTINGS: MeshSettings = Object.freeze({
  domainSuffix: 'lucid.internal',
  connectTimeoutMs: 5000,
  authenticatedProxies: false,
  intentionsDefault: 'allow' as const,
  datacenter: 'dc1',
  datacenters: [],
});
