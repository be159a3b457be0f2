// What `lucid-mesh bootstrap --consul-service-id ID` reads from Consul: the sidecar's own
// registration on the local agent (`/v1/agent/services`), as `consul connect envoy
// -proxy-id/-sidecar-for` does.
//
// - node id  = the proxy's service ID (e.g. web-1-sidecar-proxy): the same id the Consul
//   source gives the instance, so the sidecar finds its inbound listener;
// - service  = Proxy.DestinationServiceName;
// - ports    = Proxy.Config.lucid_admin_port / lucid_outbound_port / lucid_dns_port when set
//   (the Envoy admin port, the outbound listener port and the DNS listener port of this
//   sidecar; sidecars sharing a host need their own), else the defaults.
// ID may also be the app's own service ID: its `<ID>-sidecar-proxy` registration is used.
import type { ConsulAgentService, ConsulClient } from './client.js';
import { PROXY_KIND } from './mapping.js';

export const CONFIG_ADMIN_PORT = 'lucid_admin_port';
export const CONFIG_OUTBOUND_PORT = 'lucid_outbound_port';
export const CONFIG_DNS_PORT = 'lucid_dns_port';

export interface ConsulProxyBootstrap {
  /** The proxy's service ID: the Envoy node id. */
  readonly id: string;
  /** The service the proxy fronts. */
  readonly service: string;
  /** Proxy.Config.lucid_admin_port, if set (a string, validated by the bootstrap options). */
  readonly adminPort?: string;
  /** Proxy.Config.lucid_outbound_port, if set. */
  readonly outboundPort?: string;
  /** Proxy.Config.lucid_dns_port, if set ("0": no DNS listener). */
  readonly dnsPort?: string;
  /** The proxy's own (inbound) port, for messages. */
  readonly sidecarPort: number;
}

export async function lookupConsulProxy(
  client: ConsulClient,
  id: string,
): Promise<ConsulProxyBootstrap | { problem: string }> {
  const where = `the Consul agent at ${client.address}`;
  let svc = await client.agentService(id);
  if (!svc) {
    return {
      problem: `no service ${JSON.stringify(id)} is registered with ${where} (the sidecar registration must be on this agent)`,
    };
  }
  if (svc.Kind !== PROXY_KIND) {
    const sidecarId = `${id}-sidecar-proxy`;
    const sidecar = await client.agentService(sidecarId);
    if (!sidecar || sidecar.Kind !== PROXY_KIND) {
      return {
        problem:
          `${JSON.stringify(id)} is not a sidecar registration (Kind ${JSON.stringify(svc.Kind ?? '')}, ` +
          `expected "${PROXY_KIND}") and has no ${JSON.stringify(sidecarId)}; register it with ` +
          '"Connect": {"SidecarService": {}}',
      };
    }
    svc = sidecar;
  }
  return fromRegistration(svc);
}

function fromRegistration(svc: ConsulAgentService): ConsulProxyBootstrap | { problem: string } {
  const service = svc.Proxy?.DestinationServiceName;
  if (!service) {
    return { problem: `${JSON.stringify(svc.ID)} has no Proxy.DestinationServiceName` };
  }
  const config = svc.Proxy?.Config ?? {};
  const port = (key: string): string | undefined => {
    const v = config[key];
    return v === undefined || v === null || v === '' ? undefined : String(v);
  };
  const adminPort = port(CONFIG_ADMIN_PORT);
  const outboundPort = port(CONFIG_OUTBOUND_PORT);
  const dnsPort = port(CONFIG_DNS_PORT);
  return {
    id: svc.ID,
    service,
    sidecarPort: svc.Port,
    ...(adminPort !== undefined ? { adminPort } : {}),
    ...(outboundPort !== undefined ? { outboundPort } : {}),
    ...(dnsPort !== undefined ? { dnsPort } : {}),
  };
}

/** The host ports a sidecar's Envoy listens on at 127.0.0.1 (dns 0: none). */
export interface SidecarHostPorts {
  readonly adminPort: number;
  readonly outboundPort: number;
  readonly dnsPort: number;
}

/**
 * Other sidecars registered with the same agent (so, as a rule, on the same host) whose
 * registration gives one of `mine`'s outbound or DNS ports, or leaves it at the same default.
 * A sidecar bootstrapped by us binds its outbound port without SO_REUSEPORT, so the second one
 * on 127.0.0.1:15001 has that listener refused (a NACK); its DNS port keeps SO_REUSEPORT, so
 * sidecars share it and a query is answered by either one (docs/consul.md). One line per port
 * shared. (The admin port needs no check: Envoy refuses to start on a taken one.)
 */
export function hostPortClashes(
  id: string,
  mine: SidecarHostPorts,
  others: readonly ConsulAgentService[],
  defaults: SidecarHostPorts,
): string[] {
  const ports: Array<[string, string, number, number, (port: number) => string]> = [
    [
      'outbound',
      CONFIG_OUTBOUND_PORT,
      mine.outboundPort,
      defaults.outboundPort,
      (port) =>
        `only the first sidecar on the host to start binds 127.0.0.1:${port} and the others' ` +
        `outbound listener is refused`,
    ],
    [
      'DNS',
      CONFIG_DNS_PORT,
      mine.dnsPort,
      defaults.dnsPort,
      (port) => `sidecars on one host share 127.0.0.1:${port} and queries reach either one`,
    ],
  ];
  const out: string[] = [];
  for (const [what, key, port, fallback, consequence] of ports) {
    if (port === 0) continue;
    const sharing = others
      .filter((other) => other.ID !== id && other.Kind === PROXY_KIND)
      .filter((other) => (configPort(other, key) ?? fallback) === port)
      .map((other) => JSON.stringify(other.ID))
      .sort();
    if (sharing.length === 0) continue;
    const named =
      sharing.length > 3
        ? `${sharing.slice(0, 3).join(', ')} and ${sharing.length - 3} more`
        : sharing.join(', ');
    out.push(
      `${what} port ${port} is also that of ${named}, registered with this Consul agent ` +
        `(Proxy.Config.${key}, else the default): ${consequence(port)}, unless those were ` +
        `bootstrapped with other ports; ` +
        `give each registration its own Proxy.Config.${key} (docs/consul.md)`,
    );
  }
  return out;
}

/** A port in a registration's Proxy.Config (Consul keeps values as given: 15001 or "15001"). */
function configPort(svc: ConsulAgentService, key: string): number | undefined {
  const v = svc.Proxy?.Config?.[key];
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : NaN;
  return Number.isInteger(n) ? n : undefined;
}
