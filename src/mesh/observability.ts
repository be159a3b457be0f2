// Tracing and access logs as the mesh settles them: mesh-wide tracing from proxy-defaults
// Tracing, else the serve flags (--tracing-otlp); access logs per service from its
// service-defaults AccessLogs, else proxy-defaults'. Disabled settings become absent here, so
// translators only ever see what to emit.
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

/** Absent when nothing is configured (the mesh of most deployments, and most goldens). */
export function meshObservability(
  traffic: TrafficConfig,
  settings: MeshSettings,
): MeshObservability | undefined {
  const fromEntry = traffic.proxyDefaults?.Tracing;
  const tracing: MeshTracing | undefined = fromEntry
    ? {
        collector: fromEntry.Collector,
        samplingPercent: fromEntry.SamplingPercent,
        from: 'proxy-defaults/global',
      }
    : settings.tracing
      ? { ...settings.tracing, from: 'serve flags' }
      : undefined;
  // Service names are DNS labels: no key can be __proto__.
  const serviceAccessLogs: Record<string, MeshAccessLog | null> = {};
  for (const [name, defaults] of traffic.serviceDefaults) {
    if (defaults.AccessLogs) serviceAccessLogs[name] = accessLog(defaults.AccessLogs) ?? null;
  }
  const mesh = accessLog(traffic.proxyDefaults?.AccessLogs);
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
