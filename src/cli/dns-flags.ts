// `serve` flags of mesh DNS (docs/dns.md): the control plane's DNS server (--dns-port,
// --dns-ttl) and the domain both it and the sidecars' DNS listeners answer (--dns-domain).
import { InvalidArgumentError, Option } from 'commander';
import { DEFAULT_DNS_TTL_SECONDS, type DnsServerSettings } from '../dns/server.js';
import { DEFAULT_MESH_SETTINGS } from '../mesh/types.js';
import { portOption } from './options.js';

export interface DnsFlags {
  dnsPort?: number;
  dnsTtl: number;
  dnsDomain: string;
}

const LABEL = '[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?';
const DOMAIN_RE = new RegExp(`^${LABEL}(\\.${LABEL})*$`);

function ttlOption(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n > 86_400) {
    throw new InvalidArgumentError(
      `--dns-ttl: expected whole seconds 0-86400, got ${JSON.stringify(value)}`,
    );
  }
  return n;
}

function domainOption(value: string): string {
  const domain = value.trim().toLowerCase().replace(/\.$/, '');
  if (domain.length > 200 || !DOMAIN_RE.test(domain)) {
    throw new InvalidArgumentError(
      `--dns-domain: expected a DNS name (labels of a-z, 0-9, "-"), got ${JSON.stringify(value)}`,
    );
  }
  return domain;
}

export function dnsCliOptions(): Option[] {
  return [
    new Option(
      '--dns-port <port>',
      'serve DNS for callers outside the mesh on this port, UDP and TCP (8600 is Consul DNS’s): ' +
        '<service>.<domain> A/AAAA, _<service>._tcp.<domain> SRV, <instance-id>.instance.<domain>; ' +
        'off when not given',
    )
      .env('LUCID_DNS_PORT')
      .argParser(portOption('--dns-port', true)),
    new Option('--dns-ttl <seconds>', 'TTL of the DNS answers of --dns-port (negative ones too)')
      .env('LUCID_DNS_TTL')
      .default(DEFAULT_DNS_TTL_SECONDS)
      .argParser(ttlOption),
    new Option(
      '--dns-domain <domain>',
      'mesh DNS domain: --dns-port and the sidecars’ DNS listeners answer <service>.<domain>; ' +
        'also the outbound virtual hosts’ domain',
    )
      .env('LUCID_DNS_DOMAIN')
      .default(DEFAULT_MESH_SETTINGS.domainSuffix)
      .argParser(domainOption),
  ];
}

/** The DNS server's settings, when --dns-port is given. */
export function dnsServerFromFlags(flags: DnsFlags): DnsServerSettings | undefined {
  return flags.dnsPort === undefined
    ? undefined
    : { port: flags.dnsPort, ttlSeconds: flags.dnsTtl };
}
