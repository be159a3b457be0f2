// Where a test reads the OTLP log records a real collector received: Jaeger's logs pipeline
// (startJaeger({ logsTo })) forwards them with its otlphttp exporter as OTLP/JSON, and this
// loopback HTTP server keeps them, flattened to one object per record.
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';

/** OTLP/JSON AnyValue: only what Envoy's access logger sends (strings, nested lists). */
interface AnyValue {
  readonly stringValue?: string;
  readonly kvlistValue?: { readonly values?: readonly KeyValue[] };
}
interface KeyValue {
  readonly key: string;
  readonly value?: AnyValue;
}
interface ExportLogsServiceRequest {
  readonly resourceLogs?: readonly {
    readonly resource?: { readonly attributes?: readonly KeyValue[] };
    readonly scopeLogs?: readonly {
      readonly logRecords?: readonly {
        readonly body?: AnyValue;
        readonly attributes?: readonly KeyValue[];
        readonly traceId?: string;
        readonly spanId?: string;
      }[];
    }[];
  }[];
}

type Flat = { [key: string]: string | Flat };

/** One log record as the collector received it. */
export interface OtlpLogRecord {
  readonly resource: Flat;
  readonly attributes: Flat;
  readonly body: string | undefined;
  readonly traceId: string | undefined;
}

export interface OtlpLogSink {
  /** For the collector's otlphttp exporter: "http://127.0.0.1:<port>" (it posts /v1/logs). */
  readonly endpoint: string;
  readonly records: readonly OtlpLogRecord[];
  close(): Promise<void>;
}

function flat(values: readonly KeyValue[] | undefined): Flat {
  const out: Flat = {};
  for (const { key, value } of values ?? []) {
    out[key] = value?.kvlistValue ? flat(value.kvlistValue.values) : (value?.stringValue ?? '');
  }
  return out;
}

export async function startOtlpLogSink(): Promise<OtlpLogSink> {
  const records: OtlpLogRecord[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/logs') {
        res.writeHead(404).end();
        return;
      }
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ExportLogsServiceRequest;
        for (const rl of body.resourceLogs ?? []) {
          const resource = flat(rl.resource?.attributes);
          for (const sl of rl.scopeLogs ?? []) {
            for (const r of sl.logRecords ?? []) {
              records.push({
                resource,
                attributes: flat(r.attributes),
                body: r.body?.stringValue,
                traceId: r.traceId || undefined,
              });
            }
          }
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } catch (err) {
        res.writeHead(400).end(String(err));
      }
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as { port: number };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    records,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
