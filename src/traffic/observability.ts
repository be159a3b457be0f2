// proxy-defaults Tracing (a lucid-mesh extension) and AccessLogs (Consul's, also accepted on
// service-defaults): validated here so kinds.ts only wires them in. Errors name the field and
// the value, like every other entry field.
import { z } from 'zod';
import { bool, brief, consulObject, oneOf, percent, str } from './fields.js';

export const TRACING_PROVIDERS = ['opentelemetry'] as const;
/** `otlp` is a lucid-mesh extension (Consul has none): OTLP log records to the tracing collector. */
export const ACCESS_LOG_TYPES = ['stdout', 'stderr', 'file', 'otlp'] as const;

/** A host and port (`jaeger:4317`, `127.0.0.1:4317`, `[::1]:4317`). */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/**
 * `HOST:PORT` → its parts, or an error message (`expected HOST:PORT …, got …`). Shared by the
 * config entry and `serve --tracing-otlp`, so both accept and reject the same text.
 */
export function parseHostPort(text: string): HostPort | string {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535) {
    return `expected HOST:PORT (e.g. 127.0.0.1:4317 or jaeger:4317), got ${brief(text)}`;
  }
  return { host: (m[1] ?? m[2])!, port };
}

const hostPort = str('HOST:PORT').transform((text, ctx) => {
  const parsed = parseHostPort(text);
  if (typeof parsed === 'string') {
    ctx.addIssue({ code: 'custom', message: parsed, input: text });
    return z.NEVER;
  }
  return parsed;
});

/** Extension: where every sidecar (and the control plane) sends OTLP traces. */
export const tracing = consulObject(
  {
    Provider: oneOf(TRACING_PROVIDERS).default('opentelemetry'),
    Collector: hostPort,
    SamplingPercent: percent.default(100),
  },
  'a tracing setting ({ Provider, Collector, SamplingPercent })',
);

/** Envoy json_format: a flat or nested object of strings (format strings such as %RESPONSE_CODE%). */
function isFormatObject(v: unknown): boolean {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  return Object.values(v).every(
    (x) =>
      typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean' || isFormatObject(x),
  );
}

/** Consul's JSONFormat is a string holding a JSON object; parsed here so a typo fails early. */
const jsonFormat = str('a JSON object as a string').transform((text, ctx) => {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a JSON object as a string, got ${brief(text)} (${(err as Error).message})`,
    });
    return z.NEVER;
  }
  if (!isFormatObject(value)) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a JSON object of format strings, got ${brief(text)}`,
    });
    return z.NEVER;
  }
  return value as Record<string, unknown>;
});

/** Consul's AccessLogs. Consul's rules: Path only (and always) with Type file; one format. */
export const accessLogs = consulObject(
  {
    Enabled: bool.default(false),
    // Consul prints "" for an unset Type: that is stdout, Consul's default.
    Type: z.preprocess(
      (v) => (v === '' ? undefined : v),
      oneOf(ACCESS_LOG_TYPES).default('stdout'),
    ),
    Path: z.preprocess((v) => (v === '' ? undefined : v), str('a file path').optional()),
    JSONFormat: z.preprocess((v) => (v === '' ? undefined : v), jsonFormat.optional()),
    TextFormat: z.preprocess((v) => (v === '' ? undefined : v), str('a format string').optional()),
  },
  'an access log setting ({ Enabled, Type, Path, JSONFormat, TextFormat })',
  { unsupported: ['DisableListenerLogs'] },
).superRefine((v, ctx) => {
  if (v.Type === 'file' && v.Path === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['Path'],
      message: 'expected a file path with Type file, got none',
    });
  }
  if (v.Type !== 'file' && v.Path !== undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['Path'],
      message: `only allowed with Type file, got ${brief(v.Path)} with Type ${v.Type}`,
    });
  }
  if (v.JSONFormat !== undefined && v.TextFormat !== undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['TextFormat'],
      message: 'expected one of JSONFormat and TextFormat, got both',
    });
  }
});

/**
 * Tracing in proxy-defaults' opaque `Config` map, for Consul, which refuses unknown top-level
 * fields such as `Tracing` (docs/observability.md). Named in the spirit of Consul's `envoy_*`
 * keys; Consul keeps `Config` values as given, so a percent written as a string is read too.
 */
export const TRACING_CONFIG_KEYS = {
  collector: 'lucid_tracing_collector',
  samplePercent: 'lucid_tracing_sample_percent',
} as const;

export const tracingConfigFields = {
  [TRACING_CONFIG_KEYS.collector]: hostPort.optional(),
  [TRACING_CONFIG_KEYS.samplePercent]: z
    .preprocess((v) => (typeof v === 'string' && /^\d+(\.\d+)?$/.test(v) ? Number(v) : v), percent)
    .optional(),
};

interface WithTracingConfig {
  readonly Config: {
    readonly lucid_tracing_collector?: HostPort;
    readonly lucid_tracing_sample_percent?: number;
  };
  readonly Tracing?: { Collector: HostPort; SamplingPercent: number };
}

/** The Config keys need a collector, and say the same as `Tracing`: one of the two, not both. */
export function checkTracingConfig(entry: WithTracingConfig, ctx: z.RefinementCtx): void {
  const { Config } = entry;
  const given = Object.values(TRACING_CONFIG_KEYS).filter((k) => Config[k] !== undefined);
  if (given.length === 0) return;
  if (entry.Tracing !== undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['Config', given[0]!],
      message: `expected either Tracing or Config.${given.join('/')}, got both`,
    });
  } else if (Config.lucid_tracing_collector === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['Config', TRACING_CONFIG_KEYS.collector],
      message: `expected a collector HOST:PORT with Config.${TRACING_CONFIG_KEYS.samplePercent}, got none`,
    });
  }
}

/** Config's tracing keys as the entry's `Tracing`, so everything downstream reads one field. */
export function tracingFromConfig<T extends WithTracingConfig>(entry: T): T {
  const collector = entry.Config.lucid_tracing_collector;
  if (collector === undefined || entry.Tracing !== undefined) return entry;
  return {
    ...entry,
    Tracing: {
      Provider: 'opentelemetry',
      Collector: collector,
      SamplingPercent: entry.Config.lucid_tracing_sample_percent ?? 100,
    },
  };
}

/**
 * AccessLogs Type otlp for Consul, which refuses any Type but its own three (`invalid access
 * log type: otlp`): proxy-defaults' `Config.lucid_access_logs_type = "otlp"` makes the entry's
 * AccessLogs (Enabled as Consul stores it) send OTLP records instead.
 */
export const ACCESS_LOGS_TYPE_KEY = 'lucid_access_logs_type';

export const accessLogsConfigFields = {
  [ACCESS_LOGS_TYPE_KEY]: oneOf(['otlp'] as const).optional(),
};

interface WithAccessLogsConfig {
  readonly Config: { readonly lucid_access_logs_type?: 'otlp' };
  readonly AccessLogs?: { readonly Type: string; readonly Path?: string };
}

/** The key names AccessLogs' Type: a file log (Type file with its Path) says another. */
export function checkAccessLogsConfig(entry: WithAccessLogsConfig, ctx: z.RefinementCtx): void {
  if (entry.Config.lucid_access_logs_type === undefined) return;
  if (entry.AccessLogs?.Type === 'file') {
    ctx.addIssue({
      code: 'custom',
      path: ['Config', ACCESS_LOGS_TYPE_KEY],
      message: `expected either AccessLogs.Type file or Config.${ACCESS_LOGS_TYPE_KEY}, got both`,
    });
  }
}

/** The key as the entry's AccessLogs.Type, so everything downstream reads one field. */
export function accessLogsFromConfig<T extends WithAccessLogsConfig>(entry: T): T {
  const type = entry.Config.lucid_access_logs_type;
  if (type === undefined || entry.AccessLogs === undefined) return entry;
  return { ...entry, AccessLogs: { ...entry.AccessLogs, Type: type } };
}
