// The serve flags that change what a sidecar receives, as the settings record replicas sharing
// a state store compare (src/ca/state/replica-settings.ts; the list is in docs/ha.md). Left
// out: what may differ per replica (ports, --host, log level, --data-dir, the replica's own TLS
// files, debounce, stream limits, drain, events, the DNS server's port and TTL), file paths
// (each host has its own: only whether a file is used counts) and --trust-domain (its own
// check, which no override passes: ca/open.ts).
import type { ReplicaSettings } from '../ca/state/replica-settings.js';
import type { DnsFlags } from './dns-flags.js';
import type { SecurityFlags } from './security-flags.js';
import type { TracingSettings } from './tracing-flags.js';
import { meshSettingsFromFlags, type TrafficFlags } from './traffic-flags.js';

export interface ReplicaSettingsFlags
  extends Record<string, unknown>, SecurityFlags, TrafficFlags, DnsFlags {
  source: string;
}

/** A comma-separated list flag, spaces and empty items dropped; `none` when empty. */
function list(value: unknown): string {
  const items =
    typeof value === 'string'
      ? value.split(',')
      : Array.isArray(value)
        ? value.map((v) => String(v))
        : [];
  return (
    items
      .map((v) => v.trim())
      .filter((v) => v !== '')
      .join(',') || 'none'
  );
}

/**
 * `datacenterGiven`: --datacenter (or its env) was set; `tracing`: what tracingFromFlags gave.
 * Values read as the operator would write them (the message of a mismatch shows them).
 */
export function replicaSettingsFromFlags(
  flags: ReplicaSettingsFlags,
  datacenterGiven: boolean,
  tracing: TracingSettings | undefined,
): ReplicaSettings {
  const mesh = meshSettingsFromFlags(flags, datacenterGiven);
  const settings: Record<string, string> = {
    '--source': flags.source,
    '--traffic': flags.traffic !== undefined ? 'a file' : "the source's",
    '--mtls': flags.mtls === 'on' || flags.mtls === 'true' ? 'on' : 'off',
    '--auth': flags.auth,
    '--ca': flags.ca,
    '--policy': flags.policy
      ? 'a file'
      : flags.policyConsulKey
        ? `Consul key ${flags.policyConsulKey}`
        : 'none',
    '--scope': mesh?.scope ?? 'all',
    '--intentions-default': flags.intentionsDefault,
    '--connect-timeout-ms': String(flags.connectTimeoutMs),
    '--datacenter': datacenterGiven ? flags.datacenter : "the source's (else dc1)",
    '--datacenters': list(flags.datacenters),
    '--failover-threshold':
      flags.failoverThreshold !== undefined ? String(flags.failoverThreshold) : "Envoy's default",
    '--dns-domain': flags.dnsDomain,
    '--tracing-otlp': tracing ? `${tracing.collector.host}:${tracing.collector.port}` : 'off',
    '--tracing-sample': tracing ? String(tracing.samplingPercent) : 'off',
  };
  // A source's own flags count with that source only (elsewhere they are ignored).
  if (flags.source === 'consul') {
    settings['--consul-default-protocol'] = String(flags.consulDefaultProtocol ?? 'http');
    settings['--consul-warning'] = String(flags.consulWarning ?? 'passing');
    settings['--consul-datacenters'] = list(flags.consulDatacenters ?? flags.datacenters);
  }
  if (flags.source === 'etcd') settings['--etcd-prefix'] = String(flags.etcdPrefix);
  return settings;
}
