// `serve` flags of tracing (docs/observability.md): --tracing-otlp HOST:PORT and
// --tracing-sample PERCENT, or the OpenTelemetry convention TRACING_ENABLED=true with
// OTEL_EXPORTER_OTLP_ENDPOINT. Turns on the sidecars' tracers (unless proxy-defaults Tracing
// says otherwise) and the control plane's own traces, both to that collector.
import { InvalidArgumentError, Option } from 'commander';
import { parseHostPort, type HostPort } from '../traffic/observability.js';

export interface TracingFlags {
  tracingOtlp?: HostPort;
  tracingSample: number;
}

/** What serve traces with: the OTLP gRPC collector and the sidecars' sampling percentage. */
export interface TracingSettings {
  readonly collector: HostPort;
  readonly samplingPercent: number;
}

export class TracingFlagError extends Error {
  override readonly name: string = 'TracingFlagError';
}

/** Where OpenTelemetry SDKs send by default. */
const OTLP_DEFAULT = 'localhost:4317';

function hostPortOption(value: string): HostPort {
  const parsed = parseHostPort(value);
  if (typeof parsed === 'string') throw new InvalidArgumentError(`--tracing-otlp: ${parsed}`);
  return parsed;
}

function percentOption(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 100) {
    throw new InvalidArgumentError(
      `--tracing-sample: expected a percentage 0-100, got ${JSON.stringify(value)}`,
    );
  }
  return n;
}

export function tracingCliOptions(): Option[] {
  return [
    new Option(
      '--tracing-otlp <host:port>',
      'send traces (OTLP gRPC) to this collector: every sidecar’s HTTP spans (unless proxy-defaults ' +
        'Tracing sets another) and the control plane’s own (change → build → push → ACK); off when ' +
        'not given (or TRACING_ENABLED=true with OTEL_EXPORTER_OTLP_ENDPOINT, default localhost:4317), ' +
        'unless a proxy-defaults Tracing entry names a collector',
    ).argParser(hostPortOption),
    new Option(
      '--tracing-sample <percent>',
      'share of requests the sidecars start a trace for, 0-100 (with --tracing-otlp)',
    )
      .env('LUCID_TRACING_SAMPLE')
      .default(100)
      .argParser(percentOption),
  ];
}

/** `http://jaeger:4317`, `jaeger:4317` → host and port; errors name the variable. */
function endpointFromEnv(value: string): HostPort {
  const text = value
    .trim()
    .replace(/^https?:\/\//, '')
    .replace(/\/$/, '');
  const parsed = parseHostPort(text);
  if (typeof parsed === 'string') {
    throw new TracingFlagError(
      `OTEL_EXPORTER_OTLP_ENDPOINT: expected http://HOST:PORT or HOST:PORT, got ${JSON.stringify(value)}`,
    );
  }
  return parsed;
}

/**
 * The tracing settings of serve, or undefined when tracing is off. Flags win over the
 * environment.
 * @throws TracingFlagError naming the variable when the environment is malformed
 */
export function tracingFromFlags(
  flags: TracingFlags,
  env: NodeJS.ProcessEnv = process.env,
): TracingSettings | undefined {
  const sample = { samplingPercent: flags.tracingSample };
  if (flags.tracingOtlp) return { collector: flags.tracingOtlp, ...sample };
  const enabled = env.TRACING_ENABLED?.trim().toLowerCase();
  if (enabled === undefined || enabled === '' || enabled === 'false' || enabled === '0') {
    return undefined;
  }
  if (enabled !== 'true' && enabled !== '1') {
    throw new TracingFlagError(
      `TRACING_ENABLED: expected true or false, got ${JSON.stringify(env.TRACING_ENABLED)}`,
    );
  }
  return { collector: endpointFromEnv(env.OTEL_EXPORTER_OTLP_ENDPOINT || OTLP_DEFAULT), ...sample };
}
