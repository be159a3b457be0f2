// Tracing and access logs (IR → Envoy): the OpenTelemetry tracer and access loggers every
// HTTP connection manager of a sidecar gets, and the collector cluster the tracer sends to.
import { isIP } from 'node:net';
import type { MeshAccessLog, MeshProxy, MeshTracing } from '../mesh/types.js';
import {
  typedAny,
  type Cluster,
  type HttpConnectionManager,
  type envoy,
} from '../protos/envoy-types.js';
import { durationMs, socketAddress } from './envoy.js';

/** The cluster of the OTLP collector (proxy-defaults Tracing.Collector). Backend names have no "|". */
export const TRACING_CLUSTER_NAME = 'lucid-mesh|otel-collector';

const HTTP_PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

/** OTLP over gRPC needs HTTP/2; a host name is resolved (and re-resolved) by Envoy. */
export function tracingCluster(tracing: MeshTracing, connectTimeoutMs: number): Cluster {
  const { host, port } = tracing.collector;
  return {
    name: TRACING_CLUSTER_NAME,
    type: isIP(host) ? 'STATIC' : 'STRICT_DNS',
    connectTimeout: durationMs(connectTimeoutMs),
    loadAssignment: {
      clusterName: TRACING_CLUSTER_NAME,
      endpoints: [{ lbEndpoints: [{ endpoint: { address: socketAddress(host, port) } }] }],
    },
    typedExtensionProtocolOptions: {
      [HTTP_PROTOCOL_OPTIONS]: typedAny(HTTP_PROTOCOL_OPTIONS, {
        explicitHttpConfig: { http2ProtocolOptions: {} },
      }),
    },
  };
}

/**
 * The fields of one access log line when the entry sets no format: what an operator asks of a
 * request (which route, which upstream, what came back, who called: the caller's SPIFFE ID on
 * an inbound listener) and the trace it belongs to.
 */
export const DEFAULT_ACCESS_LOG_FORMAT: Readonly<Record<string, string>> = Object.freeze({
  start_time: '%START_TIME%',
  method: '%REQ(:METHOD)%',
  path: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%',
  protocol: '%PROTOCOL%',
  authority: '%REQ(:AUTHORITY)%',
  response_code: '%RESPONSE_CODE%',
  response_flags: '%RESPONSE_FLAGS%',
  response_code_details: '%RESPONSE_CODE_DETAILS%',
  bytes_received: '%BYTES_RECEIVED%',
  bytes_sent: '%BYTES_SENT%',
  duration_ms: '%DURATION%',
  route_name: '%ROUTE_NAME%',
  upstream_cluster: '%UPSTREAM_CLUSTER%',
  upstream_host: '%UPSTREAM_HOST%',
  downstream_remote_address: '%DOWNSTREAM_REMOTE_ADDRESS%',
  downstream_peer_uri_san: '%DOWNSTREAM_PEER_URI_SAN%',
  upstream_peer_uri_san: '%UPSTREAM_PEER_URI_SAN%',
  request_id: '%REQ(X-REQUEST-ID)%',
  trace_id: '%TRACE_ID%',
});

type AccessLog = envoy.config.accesslog.v3.AccessLog;
type LogFormat = envoy.config.core.v3.SubstitutionFormatString;

function logFormat(log: MeshAccessLog): LogFormat {
  if (log.text !== undefined) {
    // Envoy writes the format as is: one request per line needs the newline.
    const text = log.text.endsWith('\n') ? log.text : `${log.text}\n`;
    return { textFormatSource: { inlineString: text } };
  }
  return { jsonFormat: (log.json ?? DEFAULT_ACCESS_LOG_FORMAT) as LogFormat['jsonFormat'] };
}

export function accessLogConfig(log: MeshAccessLog): AccessLog {
  const format = logFormat(log);
  switch (log.type) {
    case 'file':
      return {
        name: 'envoy.access_loggers.file',
        typedConfig: typedAny('envoy.extensions.access_loggers.file.v3.FileAccessLog', {
          path: log.path,
          logFormat: format,
        }),
      };
    case 'stderr':
      return {
        name: 'envoy.access_loggers.stderr',
        typedConfig: typedAny('envoy.extensions.access_loggers.stream.v3.StderrAccessLog', {
          logFormat: format,
        }),
      };
    default:
      return {
        name: 'envoy.access_loggers.stdout',
        typedConfig: typedAny('envoy.extensions.access_loggers.stream.v3.StdoutAccessLog', {
          logFormat: format,
        }),
      };
  }
}

function tracingConfig(
  tracing: MeshTracing,
  serviceName: string,
): HttpConnectionManager['tracing'] {
  return {
    provider: {
      name: 'envoy.tracers.opentelemetry',
      typedConfig: typedAny('envoy.config.trace.v3.OpenTelemetryConfig', {
        grpcService: { envoyGrpc: { clusterName: TRACING_CLUSTER_NAME } },
        serviceName,
      }),
    },
    // The listener's traffic direction makes the outbound hop a client span and the inbound
    // one a server span of the same trace (the outbound side propagates traceparent).
    randomSampling: { value: tracing.samplingPercent },
  };
}

/** What a proxy's HTTP connection managers (inbound and outbound) add for tracing and logs. */
export type HcmObservability = Pick<HttpConnectionManager, 'tracing' | 'accessLog'>;

export function hcmObservability(proxy: MeshProxy): HcmObservability {
  const out: { -readonly [K in keyof HcmObservability]: HcmObservability[K] } = {};
  if (proxy.tracing) out.tracing = tracingConfig(proxy.tracing, proxy.service || proxy.nodeId);
  if (proxy.accessLog) out.accessLog = [accessLogConfig(proxy.accessLog)];
  return out;
}
