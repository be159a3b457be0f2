// Tracing and access logs (IR → Envoy): the OpenTelemetry tracer and access loggers every
// HTTP connection manager of a sidecar gets, and the collector cluster the tracer (and the
// OTLP access logger) sends to.
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
type OtlpLogConfig = envoy.extensions.access_loggers.open_telemetry.v3.OpenTelemetryAccessLogConfig;
type AnyValue = NonNullable<OtlpLogConfig['body']>;
type KeyValueList = NonNullable<OtlpLogConfig['attributes']>;

/** The body of an OTLP record without TextFormat: the request line and what came back. */
export const DEFAULT_OTLP_LOG_BODY =
  '%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL% %RESPONSE_CODE%';

/** Envoy's built-in `log_name` resource attribute of the records: which logger sent them. */
export const OTLP_LOG_NAME = 'lucid-mesh-access-log';

/**
 * A JSON format value as an OTLP value: format strings stay strings (Envoy fills them in);
 * Envoy's OTLP logger takes only strings and nested lists, so a number or boolean is its text.
 */
function anyValue(v: unknown): AnyValue {
  if (typeof v === 'object' && v !== null) {
    return { kvlistValue: keyValues(v as Readonly<Record<string, unknown>>) };
  }
  return { stringValue: String(v) };
}

function keyValues(fields: Readonly<Record<string, unknown>>): KeyValueList {
  return { values: Object.entries(fields).map(([key, v]) => ({ key, value: anyValue(v) })) };
}

/**
 * OTLP log records (extension `Type: otlp`) to the tracing collector's cluster: the JSON
 * format's fields (the default one unless JSONFormat) as attributes, TextFormat (or the request
 * line) as body, the mesh service as `service.name`. `grpc_service`, not the `common_config`
 * Envoy 1.40 deprecates. Envoy also sets each record's trace and span id.
 */
function otlpAccessLog(log: MeshAccessLog, serviceName: string): AccessLog {
  return {
    name: 'envoy.access_loggers.open_telemetry',
    typedConfig: typedAny(
      'envoy.extensions.access_loggers.open_telemetry.v3.OpenTelemetryAccessLogConfig',
      {
        grpcService: { envoyGrpc: { clusterName: TRACING_CLUSTER_NAME } },
        logName: OTLP_LOG_NAME,
        resourceAttributes: keyValues({ 'service.name': serviceName }),
        body: { stringValue: log.text ?? DEFAULT_OTLP_LOG_BODY },
        attributes: keyValues(log.json ?? DEFAULT_ACCESS_LOG_FORMAT),
      },
    ),
  };
}

function logFormat(log: MeshAccessLog): LogFormat {
  if (log.text !== undefined) {
    // Envoy writes the format as is: one request per line needs the newline.
    const text = log.text.endsWith('\n') ? log.text : `${log.text}\n`;
    return { textFormatSource: { inlineString: text } };
  }
  return { jsonFormat: (log.json ?? DEFAULT_ACCESS_LOG_FORMAT) as LogFormat['jsonFormat'] };
}

/** `serviceName` names the sender of OTLP records (the proxy's mesh service). */
export function accessLogConfig(log: MeshAccessLog, serviceName: string): AccessLog {
  if (log.type === 'otlp') return otlpAccessLog(log, serviceName);
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
  const serviceName = proxy.service || proxy.nodeId;
  if (proxy.tracing) out.tracing = tracingConfig(proxy.tracing, serviceName);
  // The mesh keeps an otlp log only with tracing: its collector cluster is the tracer's.
  if (proxy.accessLog) out.accessLog = [accessLogConfig(proxy.accessLog, serviceName)];
  return out;
}
