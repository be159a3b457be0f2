// Consul health entries of service 'web' on one node: its app instances and their sidecar
// registrations, for the mapping tests of a sidecar's Proxy fields (Config, Upstreams, ...).
import type { ConsulHealthEntry } from '../../src/sources/consul/client.js';

const node = { Node: 'n1', Address: '10.0.0.1' };

/** Instance `id` of 'web' (port 8080). */
export function webApp(id: string): ConsulHealthEntry {
  return { Node: node, Service: { ID: id, Service: 'web', Port: 8080 }, Checks: [] };
}

/** The connect-proxy registration `<id>-sidecar-proxy` of instance `id`, with `proxy` fields. */
export function webSidecar(id: string, proxy: Record<string, unknown>): ConsulHealthEntry {
  return {
    Node: node,
    Service: {
      ID: `${id}-sidecar-proxy`,
      Service: 'web-sidecar-proxy',
      Kind: 'connect-proxy',
      Port: 21000,
      Proxy: {
        DestinationServiceName: 'web',
        DestinationServiceID: id,
        ...proxy,
      } as ConsulHealthEntry['Service']['Proxy'],
    },
    Checks: [],
  } as ConsulHealthEntry;
}
