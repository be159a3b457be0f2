// Clusters (CDS): one EDS cluster per backend (a service or a subset of it), plus a node's
// STATIC local app cluster.
import type { Protocol } from '../catalog/model.js';
import type { Backend, LoadBalancing, MeshSettings } from '../mesh/types.js';
import {
  MTLS_MATCH,
  TYPE,
  adsConfigSource,
  durationMs,
  socketAddress,
  type ResourceMessage,
} from './envoy.js';
import { localAppClusterName } from './names.js';
import { upstreamMtls } from './tls.js';

const HTTP_PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

const isHttp2 = (protocol: Protocol): boolean => protocol === 'http2' || protocol === 'grpc';

/** gRPC needs HTTP/2 to the upstream; http2 apps may speak only h2c. */
function upstreamProtocolOptions(protocol: Protocol): ResourceMessage {
  if (!isHttp2(protocol)) return {};
  return {
    typedExtensionProtocolOptions: {
      [HTTP_PROTOCOL_OPTIONS]: {
        '@type': `${TYPE}${HTTP_PROTOCOL_OPTIONS}`,
        explicitHttpConfig: { http2ProtocolOptions: {} },
      },
    },
  };
}

const LB_POLICY: Record<LoadBalancing['policy'], string> = {
  round_robin: 'ROUND_ROBIN',
  least_request: 'LEAST_REQUEST',
  random: 'RANDOM',
  ring_hash: 'RING_HASH',
  maglev: 'MAGLEV',
};

/** Envoy's default is round robin: say nothing then, so existing clusters keep their bytes. */
function loadBalancing(lb: LoadBalancing): ResourceMessage {
  if (lb.policy === 'round_robin') return {};
  return {
    lbPolicy: LB_POLICY[lb.policy],
    ...(lb.policy === 'least_request' && lb.choiceCount !== undefined
      ? { leastRequestLbConfig: { choiceCount: { value: lb.choiceCount } } }
      : {}),
    ...(lb.policy === 'ring_hash' &&
    (lb.minimumRingSize !== undefined || lb.maximumRingSize !== undefined)
      ? {
          ringHashLbConfig: {
            ...(lb.minimumRingSize !== undefined
              ? { minimumRingSize: { value: lb.minimumRingSize } }
              : {}),
            ...(lb.maximumRingSize !== undefined
              ? { maximumRingSize: { value: lb.maximumRingSize } }
              : {}),
          },
        }
      : {}),
  };
}

/** Consul's Limits: MaxConcurrentRequests is Envoy's max_requests. */
function circuitBreakers(backend: Backend): ResourceMessage {
  const l = backend.limits;
  if (!l) return {};
  return {
    circuitBreakers: {
      thresholds: [
        {
          ...(l.MaxConnections !== undefined
            ? { maxConnections: { value: l.MaxConnections } }
            : {}),
          ...(l.MaxPendingRequests !== undefined
            ? { maxPendingRequests: { value: l.MaxPendingRequests } }
            : {}),
          ...(l.MaxConcurrentRequests !== undefined
            ? { maxRequests: { value: l.MaxConcurrentRequests } }
            : {}),
        },
      ],
    },
  };
}

function outlierDetection(backend: Backend): ResourceMessage {
  const o = backend.outlierDetection;
  if (!o) return {};
  return {
    outlierDetection: {
      ...(o.consecutive5xx !== undefined ? { consecutive_5xx: { value: o.consecutive5xx } } : {}),
      ...(o.intervalMs !== undefined ? { interval: durationMs(o.intervalMs) } : {}),
      ...(o.baseEjectionTimeMs !== undefined
        ? { baseEjectionTime: durationMs(o.baseEjectionTimeMs) }
        : {}),
      ...(o.maxEjectionPercent !== undefined
        ? { maxEjectionPercent: { value: o.maxEjectionPercent } }
        : {}),
      ...(o.enforcingConsecutive5xx !== undefined
        ? { enforcingConsecutive_5xx: { value: o.enforcingConsecutive5xx } }
        : {}),
    },
  };
}

/**
 * With mTLS, meshed endpoints (marked by their metadata) are reached over TLS with the
 * target's SPIFFE ID verified; endpoints without a sidecar stay plaintext.
 */
function meshTransport(backend: Backend, settings: MeshSettings): ResourceMessage {
  const identity = settings.mtls;
  if (!identity) return {};
  const alpn = backend.protocol === 'tcp' ? [] : isHttp2(backend.protocol) ? ['h2'] : ['http/1.1'];
  return {
    transportSocketMatches: [
      {
        name: 'mtls',
        match: MTLS_MATCH,
        transportSocket: upstreamMtls(identity, backend.service, settings.domainSuffix, alpn),
      },
    ],
  };
}

export function backendCluster(backend: Backend, settings: MeshSettings): ResourceMessage {
  return {
    name: backend.name,
    type: 'EDS',
    edsClusterConfig: { edsConfig: adsConfigSource(), serviceName: backend.name },
    connectTimeout: durationMs(backend.connectTimeoutMs),
    ...loadBalancing(backend.loadBalancing),
    ...circuitBreakers(backend),
    ...outlierDetection(backend),
    ...upstreamProtocolOptions(backend.protocol),
    ...meshTransport(backend, settings),
  };
}

/** Where a sidecar's inbound listener hands traffic to its own app (same host, app port). */
export function localAppCluster(
  nodeId: string,
  protocol: Protocol,
  appPort: number,
  settings: MeshSettings,
): ResourceMessage {
  const name = localAppClusterName(nodeId);
  return {
    name,
    type: 'STATIC',
    connectTimeout: durationMs(settings.connectTimeoutMs),
    loadAssignment: {
      clusterName: name,
      endpoints: [
        { lbEndpoints: [{ endpoint: { address: socketAddress('127.0.0.1', appPort) } }] },
      ],
    },
    ...upstreamProtocolOptions(protocol),
  };
}
