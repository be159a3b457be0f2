// Mesh gateways for end-to-end tests: a real Envoy bootstrapped by the real CLI command
// (`lucid-mesh bootstrap --gateway mesh`, run in-process), and readers for what a proxy holds:
// the EDS it applied (priorities, health, addresses) and counters summed by name.
import { bootstrapCommand } from '../../src/cli/bootstrap-command.js';
import type { XdsMode } from '../../src/bootstrap/render.js';
import { startEnvoy, type EnvoyHandle } from './envoy.js';
import { freePort } from './ports.js';
import { runCommand } from './run-command.js';

/**
 * Starts a mesh gateway: `lucid-mesh bootstrap --gateway mesh --node-id <id> --datacenter <dc>`
 * (node service mesh-gateway, so its token must be issued for mesh-gateway).
 */
export async function startMeshGateway(opts: {
  id: string;
  datacenter: string;
  xdsPort: number;
  mode: XdsMode;
  token?: string;
}): Promise<EnvoyHandle> {
  const adminPort = await freePort();
  const args = [
    '--gateway',
    'mesh',
    '--node-id',
    opts.id,
    '--datacenter',
    opts.datacenter,
    '--xds',
    `127.0.0.1:${opts.xdsPort}`,
    '--mode',
    opts.mode,
    '--admin-port',
    String(adminPort),
    // A DNS port of its own: Envoys of test files running in parallel never share 15053.
    '--dns-port',
    String(await freePort()),
    ...(opts.token !== undefined ? ['--token', opts.token] : []),
  ];
  const out = await runCommand(bootstrapCommand, args);
  if (out.code !== 0) {
    throw new Error(`lucid-mesh bootstrap ${args.join(' ')}: exit ${out.code}: ${out.stderr}`);
  }
  return startEnvoy({ name: opts.id, adminPort, bootstrapYaml: out.stdout });
}

/** One endpoint of a cluster's EDS as the proxy applied it (config_dump?include_eds). */
export interface AppliedEndpoint {
  /** host:port */
  readonly address: string;
  readonly hostname: string;
  readonly priority: number;
  /** Envoy's health_status as sent (HEALTHY, UNHEALTHY, ...). */
  readonly health: string;
  /** envoy.transport_socket_match metadata ({} when none). */
  readonly match: Record<string, unknown>;
}

interface DumpedLbEndpoint {
  endpoint?: { address?: { socket_address?: { address?: string; port_value?: number } } };
  health_status?: string;
  metadata?: { filter_metadata?: Record<string, Record<string, unknown>> };
}
interface DumpedEndpointConfig {
  endpoint_config?: {
    cluster_name?: string;
    endpoints?: Array<{ priority?: number; lb_endpoints?: DumpedLbEndpoint[] }>;
  };
}

/** The EDS endpoints `envoy` applied for `cluster`, sorted by priority then address. */
export async function appliedEndpoints(
  envoy: EnvoyHandle,
  cluster: string,
): Promise<AppliedEndpoint[]> {
  const dump = (await envoy.configDump()) as { configs: Array<Record<string, unknown>> };
  const out: AppliedEndpoint[] = [];
  for (const section of dump.configs) {
    const configs = (section.dynamic_endpoint_configs ?? []) as DumpedEndpointConfig[];
    for (const c of configs) {
      if (c.endpoint_config?.cluster_name !== cluster) continue;
      for (const group of c.endpoint_config.endpoints ?? []) {
        for (const lb of group.lb_endpoints ?? []) {
          const sa = lb.endpoint?.address?.socket_address;
          out.push({
            address: `${sa?.address}:${sa?.port_value}`,
            hostname: (lb.endpoint as { hostname?: string } | undefined)?.hostname ?? '',
            priority: group.priority ?? 0,
            health: lb.health_status ?? 'UNKNOWN',
            match: lb.metadata?.filter_metadata?.['envoy.transport_socket_match'] ?? {},
          });
        }
      }
    }
  }
  return out.sort((a, b) => a.priority - b.priority || (a.address < b.address ? -1 : 1));
}

/** Compact text of applied endpoints, for assertions and failure messages. */
export function showEndpoints(endpoints: readonly AppliedEndpoint[]): string[] {
  return endpoints.map(
    (e) =>
      `p${e.priority} ${e.hostname}@${e.address} ${e.health}` +
      (Object.keys(e.match).length > 0 ? ` ${JSON.stringify(sortedKeys(e.match))}` : ''),
  );
}

function sortedKeys(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Counters of an Envoy, read once; `get` is 0 for a counter the proxy does not have. */
export async function counters(envoy: EnvoyHandle): Promise<Counters> {
  return new Counters(await envoy.stats());
}

export class Counters {
  constructor(readonly raw: ReadonlyMap<string, string>) {}

  get(name: string): number {
    const v = Number(this.raw.get(name) ?? 0);
    return Number.isFinite(v) ? v : 0;
  }

  /** Sum of every numeric stat whose name matches. */
  sum(match: RegExp): number {
    let total = 0;
    for (const [name, value] of this.raw) if (match.test(name)) total += Number(value) || 0;
    return total;
  }

  /** name → value of every nonzero numeric stat whose name matches. */
  nonzero(match: RegExp): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, value] of this.raw) {
      if (match.test(name) && Number(value) > 0) out[name] = Number(value);
    }
    return out;
  }
}

/** Per-host counters from Envoy's /clusters (e.g. rq_total, cx_total) for one cluster. */
export async function hostCounters(
  envoy: EnvoyHandle,
  cluster: string,
): Promise<Map<string, Record<string, string>>> {
  const hosts = new Map<string, Record<string, string>>();
  for (const line of (await envoy.clusters()).split('\n')) {
    const parts = line.split('::');
    if (parts[0] !== cluster || parts.length < 4 || !/:\d+$/.test(parts[1]!)) continue;
    const host = hosts.get(parts[1]!) ?? {};
    host[parts[2]!] = parts.slice(3).join('::');
    hosts.set(parts[1]!, host);
  }
  return hosts;
}

interface DumpedFilterChain {
  filter_chain_match?: { server_names?: string[] };
  filters?: Array<{ typed_config?: { cluster?: string } }>;
  transport_socket?: unknown;
}
interface DumpedListener {
  name?: string;
  active_state?: {
    listener?: { filter_chains?: DumpedFilterChain[]; listener_filters?: Array<{ name?: string }> };
  };
}

/**
 * A gateway's applied listeners as `<server names> → <cluster>` per filter chain, with
 * " +tls" where a chain terminates TLS (a transport socket on the listener side).
 */
export async function gatewayChains(envoy: EnvoyHandle): Promise<string[]> {
  const dump = (await envoy.configDump()) as { configs: Array<Record<string, unknown>> };
  const out: string[] = [];
  for (const section of dump.configs) {
    for (const l of (section.dynamic_listeners ?? []) as DumpedListener[]) {
      for (const chain of l.active_state?.listener?.filter_chains ?? []) {
        const names = (chain.filter_chain_match?.server_names ?? []).join(',');
        const clusters = (chain.filters ?? []).map((f) => f.typed_config?.cluster ?? '?').join(',');
        out.push(`${names} → ${clusters}${chain.transport_socket ? ' +tls' : ''}`);
      }
    }
  }
  return out.sort();
}

/** The URI SANs of the certificates an Envoy holds (its /certs). */
export async function certificateUris(envoy: EnvoyHandle): Promise<string[]> {
  const certs = JSON.parse(await envoy.admin('/certs')) as {
    certificates: Array<{ cert_chain?: Array<{ subject_alt_names?: Array<{ uri?: string }> }> }>;
  };
  return certs.certificates
    .flatMap((c) => c.cert_chain ?? [])
    .flatMap((leaf) => leaf.subject_alt_names ?? [])
    .flatMap((san) => (san.uri !== undefined ? [san.uri] : []));
}
