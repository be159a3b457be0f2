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
