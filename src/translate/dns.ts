// A sidecar's DNS listener (docs/dns.md): Envoy's DNS filter on UDP 127.0.0.1:<dns port>
// answering `<service>.<domain suffix>` with the address of the sidecar's own outbound
// listeners (127.0.0.1), so an app calls http://world.lucid.internal:15001/ and the outbound
// route (whose virtual hosts carry `world.lucid.internal` domains) takes it from there.
import type { MeshProxyDns } from '../mesh/types.js';
import { typedAny, type Listener } from '../protos/envoy-types.js';
import { durationMs, socketAddress } from './envoy.js';

/** Where every outbound listener of a sidecar listens (see listeners.ts). */
const OUTBOUND_ADDRESS = '127.0.0.1';
/**
 * The same address as IPv6 (IPv4-mapped), for AAAA queries: a dual-stack socket connecting
 * to it reaches the IPv4 listener. Without it Envoy answers AAAA with NXDOMAIN, which some
 * resolvers (musl's) take as "no such name" for the A record too.
 */
const OUTBOUND_ADDRESS_V6 = '::ffff:127.0.0.1';
/** Envoy's smallest answer TTL: a removed service stops resolving soon after. */
const ANSWER_TTL_MS = 30_000;
/** Lookups of names outside the mesh forwarded at once; past it Envoy answers SERVFAIL. */
const MAX_PENDING_LOOKUPS = 256;
const RESOLVER_TIMEOUT_MS = 5_000;

export function dnsListenerName(port: number): string {
  return `dns|${port}`;
}

/** Every sidecar with the same settings and names gets the very same object (encoded once). */
const byNames = new WeakMap<readonly string[], Map<string, Listener>>();

export function dnsListener(dns: MeshProxyDns): Listener {
  let forNames = byNames.get(dns.names);
  if (!forNames) {
    forNames = new Map();
    byNames.set(dns.names, forNames);
  }
  const key = `${dns.port}|${dns.domainSuffix}|${dns.forward}`;
  let built = forNames.get(key);
  if (!built) {
    built = buildDnsListener(dns);
    forNames.set(key, built);
  }
  return built;
}

function buildDnsListener(dns: MeshProxyDns): Listener {
  const name = dnsListenerName(dns.port);
  return {
    name,
    address: {
      socketAddress: {
        ...socketAddress(OUTBOUND_ADDRESS, dns.port).socketAddress,
        protocol: 'UDP',
      },
    },
    trafficDirection: 'OUTBOUND',
    listenerFilters: [
      {
        name: 'envoy.filters.udp.dns_filter',
        typedConfig: typedAny('envoy.extensions.filters.udp.dns_filter.v3.DnsFilterConfig', {
          statPrefix: 'mesh_dns',
          serverConfig: {
            inlineDnsTable: {
              virtualDomains: dns.names.map((service) => ({
                name: `${service}.${dns.domainSuffix}`,
                endpoint: { addressList: { address: [OUTBOUND_ADDRESS, OUTBOUND_ADDRESS_V6] } },
                answerTtl: durationMs(ANSWER_TTL_MS),
              })),
            },
          },
          // Other names, mesh names not in the table included (Envoy 1.40 answers only its
          // table), go to the resolvers of the sidecar's own /etc/resolv.conf, as the app's
          // would have. Without a client config Envoy answers them NXDOMAIN itself: the
          // sidecar's --dns-forward off, for a host resolver that sends it only the mesh
          // domain and would send a forwarded name straight back (a loop: docs/dns.md).
          ...(dns.forward
            ? {
                clientConfig: {
                  resolverTimeout: durationMs(RESOLVER_TIMEOUT_MS),
                  maxPendingLookups: MAX_PENDING_LOOKUPS,
                },
              }
            : {}),
        }),
      },
    ],
  };
}
