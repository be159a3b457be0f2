// A real Jaeger v2 for tests (built from the Go module proxy by scripts/install-tools.sh
// jaeger, cached): its all-in-one pipeline (OTLP in, in-memory store, query API) on free
// loopback ports, nothing else listening. Killed with the test process however it ends.
// Jaeger stores traces only; with `logsTo`, its OTLP receiver also takes logs and its
// otlphttp exporter forwards them as OTLP/JSON (to an otlp-log-sink.ts the test reads).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { httpRequestText } from './consul.js';
import { freePorts } from './ports.js';
import { serverProcess } from './process.js';
import { toolPath } from './tools.js';

/** A cold cache builds Jaeger from source first (minutes on 2 cores). */
export const JAEGER_SETUP_TIMEOUT_MS = 15 * 60_000;

/** A span as Jaeger's query API (/api/traces) returns it. */
export interface JaegerSpan {
  readonly traceID: string;
  readonly spanID: string;
  readonly operationName: string;
  readonly processID: string;
  readonly startTime: number;
  readonly duration: number;
  readonly references: readonly { refType: string; traceID: string; spanID: string }[];
  readonly tags: readonly { key: string; type: string; value: unknown }[];
}

export interface JaegerTrace {
  readonly traceID: string;
  readonly spans: readonly JaegerSpan[];
  readonly processes: Readonly<Record<string, { serviceName: string }>>;
}

export interface Jaeger {
  /** OTLP gRPC receiver: "127.0.0.1:<port>". */
  readonly otlpAddress: string;
  readonly otlpPort: number;
  /** Query API base URL: "http://127.0.0.1:<port>". */
  readonly queryUrl: string;
  /** GET /api/traces?service=…: the traces of a service (most recent first, at most `limit`). */
  traces(service: string, limit?: number): Promise<JaegerTrace[]>;
  /** GET /api/services. */
  services(): Promise<string[]>;
  logs(): string;
  stop(): Promise<void>;
}

/** The tag value of a span, if it has that tag. */
export function spanTag(span: JaegerSpan, key: string): unknown {
  return span.tags.find((t) => t.key === key)?.value;
}

/** The service name of a span in its trace. */
export function spanService(trace: JaegerTrace, span: JaegerSpan): string | undefined {
  return trace.processes[span.processID]?.serviceName;
}

export interface JaegerOptions {
  /** An OTLP/HTTP endpoint ("http://127.0.0.1:PORT") the logs the collector receives go to. */
  readonly logsTo?: string;
}

function config(
  ports: { otlp: number; otlpHttp: number; query: number; queryGrpc: number },
  logsTo: string | undefined,
) {
  const logs = logsTo
    ? {
        pipeline: `
    logs:
      receivers: [otlp]
      processors: [batch]
      exporters: [otlphttp/logs]`,
        exporter: `
  otlphttp/logs:
    endpoint: ${logsTo}
    encoding: json
    compression: none`,
      }
    : { pipeline: '', exporter: '' };
  return `
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]${logs.pipeline}
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:${ports.query}
    grpc:
      endpoint: 127.0.0.1:${ports.queryGrpc}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:${ports.otlp}
      http:
        endpoint: 127.0.0.1:${ports.otlpHttp}
processors:
  batch:
    timeout: 200ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore${logs.exporter}
`;
}

export async function startJaeger(options: JaegerOptions = {}): Promise<Jaeger> {
  const bin = toolPath('jaeger');
  const [otlp, otlpHttp, query, queryGrpc] = (await freePorts(4)) as [
    number,
    number,
    number,
    number,
  ];
  const dir = mkdtempSync(join(tmpdir(), 'lucid-jaeger-'));
  const configFile = join(dir, 'config.yaml');
  writeFileSync(configFile, config({ otlp, otlpHttp, query, queryGrpc }, options.logsTo));
  const queryUrl = `http://127.0.0.1:${query}`;
  const getJson = async <T>(path: string): Promise<T> => {
    const res = await httpRequestText('GET', `${queryUrl}${path}`);
    if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${res.body.slice(0, 300)}`);
    return (JSON.parse(res.body) as { data: T }).data;
  };
  const proc = serverProcess({
    name: 'jaeger',
    label: 'jaeger',
    bin,
    args: ['--config', configFile],
    logKeep: 64 * 1024,
    ready: async () => {
      await getJson<string[]>('/api/services');
      return true;
    },
    readyWhat: `jaeger query API on ${queryUrl}`,
    readyTimeoutMs: 30_000,
    readyIntervalMs: 100,
    killGraceMs: 5000,
  });
  const stop = async (): Promise<void> => {
    await proc.signal('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await proc.start();
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    otlpAddress: `127.0.0.1:${otlp}`,
    otlpPort: otlp,
    queryUrl,
    traces: (service, limit = 20) =>
      getJson<JaegerTrace[]>(
        `/api/traces?service=${encodeURIComponent(service)}&limit=${limit}&lookback=1h`,
      ).then((t) => t ?? []),
    services: () => getJson<string[] | null>('/api/services').then((s) => s ?? []),
    logs: proc.logs,
    stop,
  };
}
