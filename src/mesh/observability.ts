// Tracing and access logs as the mesh settles them: mesh-wide tracing from proxy-defaults
// Tracing, else the serve flags (--tracing-otlp); access logs per service from its
// service-defaults AccessLogs, else proxy-defaults'. Disabled settings become absent here, so
// translators only ever see what to emit. An otlp access log sends to the tracing collector:
// without one it does not apply (a ConfigProblem names the entry and field).
import type { ConfigProblem } from '../traffic/provider.js';
import type { AccessLogs, TrafficConfig } from '../traffic/types.js';
import type { MeshAccessLog, MeshObservability, MeshSettings, MeshTracing } from './types.js';

function accessLog(entry: AccessLogs | undefined): MeshAccessLog | undefined {
  if (!entry?.Enabled) return undefined;
  return Object.freeze({
    type: entry.Type,
    ...(entry.Path !== undefined ? { path: entry.Path } : {}),
    ...(entry.JSONFormat !== undefined ? { json: entry.JSONFormat } : {}),
    ...(entry.TextFormat !== undefined ? { text: entry.TextFormat } : {}),
  });
}

function meshTracing(traffic: TrafficConfig, settings: MeshSettings): MeshTracing | undefined {
  const fromEntry = traffic.proxyDefaults?.Tracing;
  if (fromEntry) {
    return {
      collector: fromEntry.Collector,
      samplingPercent: fromEntry.SamplingPercent,
      from: 'proxy-defaults/global',
    };
  }
  return settings.tracing ? { ...settings.tracing, from: 'serve flags' } : undefined;
}

/** An otlp log needs the tracing collector; without one the entry's AccessLogs do not apply. */
const lacksCollector = (entry: AccessLogs | undefined, tracing: MeshTracing | undefined) =>
  entry?.Enabled === true && entry.Type === 'otlp' && tracing === undefined;

/** The entries whose AccessLogs cannot apply (Type otlp with no collector configured). */
export function observabilityProblems(
  traffic: TrafficConfig,
  settings: MeshSettings,
): ConfigProblem[] {
  const tracing = meshTracing(traffic, settings);
  if (tracing) return [];
  const message = (whose: string) =>
    'AccessLogs.Type: otlp sends log records to the tracing collector, but none is configured ' +
    '(proxy-defaults Tracing.Collector or Config.lucid_tracing_collector, or serve ' +
    `--tracing-otlp); ${whose} get no access log from this entry`;
  const problems: ConfigProblem[] = [];
  if (lacksCollector(traffic.proxyDefaults?.AccessLogs, tracing)) {
    problems.push({ kind: 'proxy-defaults', name: 'global', message: message('the sidecars') });
  }
  for (const [name, defaults] of traffic.serviceDefaults) {
    if (lacksCollector(defaults.AccessLogs, tracing)) {
      problems.push({
        kind: 'service-defaults',
        name,
        message: message(`the sidecars of "${name}"`),
      });
    }
  }
  return problems;
}

/** Absent when nothing is configured (the mesh of most deployments, and most goldens). */
export function meshObservability(
  traffic: TrafficConfig,
  settings: MeshSettings,
): MeshObservability | undefined {
  const tracing = meshTracing(traffic, settings);
  // Service names are DNS labels: no key can be __proto__. An entry that cannot apply is as if
  // unset: its sidecars keep proxy-defaults' log.
  const serviceAccessLogs: Record<string, MeshAccessLog | null> = {};
  for (const [name, defaults] of traffic.serviceDefaults) {
    if (defaults.AccessLogs && !lacksCollector(defaults.AccessLogs, tracing)) {
      serviceAccessLogs[name] = accessLog(defaults.AccessLogs) ?? null;
    }
  }
  const meshEntry = traffic.proxyDefaults?.AccessLogs;
  const mesh = lacksCollector(meshEntry, tracing) ? undefined : accessLog(meshEntry);
  const perService = Object.keys(serviceAccessLogs).length > 0;
  if (!tracing && !mesh && !perService) return undefined;
  return Object.freeze({
    ...(tracing ? { tracing: Object.freeze(tracing) } : {}),
    ...(mesh ? { accessLog: mesh } : {}),
    ...(perService ? { serviceAccessLogs: Object.freeze(serviceAccessLogs) } : {}),
  });
}

/** The access log of a proxy of `service` (its service-defaults win over proxy-defaults). */
export function proxyAccessLog(
  observability: MeshObservability | undefined,
  service: string,
): MeshAccessLog | undefined {
  const logs = observability?.serviceAccessLogs;
  const own = logs && Object.hasOwn(logs, service) ? logs[service] : undefined;
  return own === null ? undefined : (own ?? observability?.accessLog);
}
