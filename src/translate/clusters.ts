// Clusters (CDS): one EDS cluster per backend (a service or a subset of it), plus a node's
// STATIC local app cluster.
import type { Protocol } from '../catalog/model.js';
import type { Backend, LoadBalancing, MeshSettings } from '../mesh/types.js';
import {
  typedAny,
  type CircuitBreakers,
  type Cluster,
  type LbPolicy,
  type OutlierDetection,
} from '../protos/envoy-types.js';
import {
  MTLS_MATCH,
  adsConfigSource,
  defined,
  durationMs,
  gatewayMatch,
  socketAddress,
} from './envoy.js';
import { localAppClusterName } from './names.js';
import { gatewaySni, upstreamMtls } from './tls.js';

const HTTP_PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

const isHttp2 = (protocol: Protocol): boolean => protocol === 'http2' || protocol === 'grpc';

/** gRPC needs HTTP/2 to the upstream; http2 apps may speak only h2c. */
function upstreamProtocolOptions(protocol: Protocol): Cluster['typedExtensionProtocolOptions'] {
  if (!isHttp2(protocol)) return undefined;
  return {
    [HTTP_PROTOCOL_OPTIONS]: typedAny(HTTP_PROTOCOL_OPTIONS, {
      explicitHttpConfig: { http2ProtocolOptions: {} },
    }),
  };
}

const LB_POLICY: Record<LoadBalancing['policy'], LbPolicy> = {
  round_robin: 'ROUND_ROBIN',
  least_request: 'LEAST_REQUEST',
  random: 'RANDOM',
  ring_hash: 'RING_HASH',
  maglev: 'MAGLEV',
};

/** Envoy's default is round robin: say nothing then, so existing clusters keep their bytes. */
function loadBalancing(
  lb: LoadBalancing,
): Pick<Cluster, 'lbPolicy' | 'leastRequestLbConfig' | 'ringHashLbConfig'> {
  if (lb.policy === 'round_robin') return {};
  return defined({
    lbPolicy: LB_POLICY[lb.policy],
    leastRequestLbConfig:
      lb.policy === 'least_request' && lb.choiceCount !== undefined
        ? { choiceCount: { value: lb.choiceCount } }
        : undefined,
    ringHashLbConfig:
      lb.policy === 'ring_hash' &&
      (lb.minimumRingSize !== undefined || lb.maximumRingSize !== undefined)
        ? defined({
            minimumRingSize:
              lb.minimumRingSize !== undefined ? { value: lb.minimumRingSize } : undefined,
            maximumRingSize:
              lb.maximumRingSize !== undefined ? { value: lb.maximumRingSize } : undefined,
          })
        : undefined,
  });
}

/** Consul's Limits: MaxConcurrentRequests is Envoy's max_requests. */
function circuitBreakers(backend: Backend): CircuitBreakers | undefined {
  const l = backend.limits;
  if (!l) return undefined;
  return {
    thresholds: [
      defined({
        maxConnections: l.MaxConnections !== undefined ? { value: l.MaxConnections } : undefined,
        maxPendingRequests:
          l.MaxPendingRequests !== undefined ? { value: l.MaxPendingRequests } : undefined,
        maxRequests:
          l.MaxConcurrentRequests !== undefined ? { value: l.MaxConcurrentRequests } : undefined,
      }),
    ],
  };
}

function outlierDetection(backend: Backend): OutlierDetection | undefined {
  const o = backend.outlierDetection;
  if (!o) return undefined;
  return defined({
    consecutive_5xx: o.consecutive5xx !== undefined ? { value: o.consecutive5xx } : undefined,
    interval: o.intervalMs !== undefined ? durationMs(o.intervalMs) : undefined,
    baseEjectionTime:
      o.baseEjectionTimeMs !== undefined ? durationMs(o.baseEjectionTimeMs) : undefined,
    maxEjectionPercent:
      o.maxEjectionPercent !== undefined ? { value: o.maxEjectionPercent } : undefined,
    enforcingConsecutive_5xx:
      o.enforcingConsecutive5xx !== undefined ? { value: o.enforcingConsecutive5xx } : undefined,
  });
}

/**
 * With mTLS, meshed endpoints (marked by their metadata) are reached over TLS with the
 * target's SPIFFE ID verified; endpoints without a sidecar stay plaintext.
 */
function meshTransport(
  backend: Backend,
  settings: MeshSettings,
  viaGateways: boolean,
): Cluster['transportSocketMatches'] {
  const identity = settings.mtls;
  if (!identity) return undefined;
  const alpn = backend.protocol === 'tcp' ? [] : isHttp2(backend.protocol) ? ['h2'] : ['http/1.1'];
  // Endpoints reached through a mesh gateway carry their datacenter: the same mTLS (the SAN
  // check names the service end to end) with an SNI the gateways route on. Listed first:
  // Envoy takes the first match whose fields the endpoint's metadata all has.
  const datacenters = viaGateways
    ? [...new Set(backend.localities.map((g) => g.locality.datacenter))].sort()
    : [];
  return [
    ...datacenters.map((dc) => ({
      name: `mtls-${dc}`,
      match: gatewayMatch(dc),
      transportSocket: upstreamMtls(
        identity,
        backend.service,
        settings.domainSuffix,
        alpn,
        gatewaySni(identity, backend.service, dc, backend.subset),
      ),
    })),
    {
      name: 'mtls',
      match: MTLS_MATCH,
      transportSocket: upstreamMtls(identity, backend.service, settings.domainSuffix, alpn),
    },
  ];
}

/**
 * `viaGateways`: some callers reach this backend's other datacenters through mesh gateways
 * (the mesh has gateways and the backend spans datacenters).
 */
export function backendCluster(
  backend: Backend,
  settings: MeshSettings,
  viaGateways = false,
): Cluster {
  return defined({
    name: backend.name,
    type: 'EDS',
    edsClusterConfig: { edsConfig: adsConfigSource(), serviceName: backend.name },
    connectTimeout: durationMs(backend.connectTimeoutMs),
    ...loadBalancing(backend.loadBalancing),
    circuitBreakers: circuitBreakers(backend),
    outlierDetection: outlierDetection(backend),
    // Failover backends send unhealthy instances too (so priorities count them); with
    // Envoy's panic mode (below 50 % healthy) it would balance over them, so it is off.
    // And host set changes (an outlier ejection) apply at once instead of being merged for
    // Envoy's default 1 s: a dead datacenter's second host would otherwise keep receiving
    // load for that second (measured: 3-4 % failed requests instead of < 1 %).
    commonLbConfig: backend.failover
      ? { healthyPanicThreshold: { value: 0 }, updateMergeWindow: durationMs(0) }
      : undefined,
    typedExtensionProtocolOptions: upstreamProtocolOptions(backend.protocol),
    transportSocketMatches: meshTransport(backend, settings, viaGateways && !!backend.failover),
  });
}

/**
 * How long a sidecar keeps an idle HTTP connection to its app when nothing configures it.
 * An app server closes idle keep-alive connections on its own timer; if the sidecar sends a
 * request on one just as the app closes it, that request fails with a 503 ("connection
 * termination"). Closing them first, below the app's timer, shuts that race. Node's http
 * server, the most common app server here, closes after 5 s (keepAliveTimeout); other
 * frameworks use 5-75 s, so 4 s is under all of them, and a reconnect over loopback is cheap.
 */
export const DEFAULT_LOCAL_APP_IDLE_TIMEOUT_MS = 4000;

/** The app's protocol and the idle timeout, as HttpProtocolOptions (tcp: none). */
function localAppProtocolOptions(
  protocol: Protocol,
  idleTimeoutMs: number,
): Cluster['typedExtensionProtocolOptions'] {
  if (protocol === 'tcp') return undefined;
  return {
    [HTTP_PROTOCOL_OPTIONS]: typedAny(HTTP_PROTOCOL_OPTIONS, {
      commonHttpProtocolOptions: { idleTimeout: durationMs(idleTimeoutMs) },
      explicitHttpConfig: isHttp2(protocol)
        ? { http2ProtocolOptions: {} }
        : { httpProtocolOptions: {} },
    }),
  };
}

/**
 * Where a sidecar's inbound listener hands traffic to its own app (same host, app port; at
 * `appAddress`, default 127.0.0.1).
 */
export function localAppCluster(
  nodeId: string,
  protocol: Protocol,
  appPort: number,
  settings: MeshSettings,
  idleTimeoutMs = DEFAULT_LOCAL_APP_IDLE_TIMEOUT_MS,
  appAddress = '127.0.0.1',
): Cluster {
  const name = localAppClusterName(nodeId);
  return defined({
    name,
    type: 'STATIC',
    connectTimeout: durationMs(settings.connectTimeoutMs),
    loadAssignment: {
      clusterName: name,
      endpoints: [{ lbEndpoints: [{ endpoint: { address: socketAddress(appAddress, appPort) } }] }],
    },
    typedExtensionProtocolOptions: localAppProtocolOptions(protocol, idleTimeoutMs),
  });
}

/** An aggregate cluster: Envoy uses the first of `clusters` that has healthy hosts. */
export function aggregateCluster(name: string, clusters: readonly string[]): Cluster {
  return {
    name,
    lbPolicy: 'CLUSTER_PROVIDED',
    clusterType: {
      name: 'envoy.clusters.aggregate',
      typedConfig: typedAny('envoy.extensions.clusters.aggregate.v3.ClusterConfig', {
        clusters: [...clusters],
      }),
    },
  };
}
