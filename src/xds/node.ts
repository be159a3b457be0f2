// Who is on the other end of a stream: the proxy identity read from Envoy's Node message.
import {
  DEFAULT_DNS_PORT,
  DEFAULT_OUTBOUND_PORT,
  type Locality,
  type ProxyIdentity,
} from '../catalog/model.js';
import type { NodeMessage } from './messages.js';

export class InvalidNodeError extends Error {
  override readonly name: string = 'InvalidNodeError';
}

/** Datacenter, region and zone names, as the catalog accepts them (src/catalog/schema.ts). */
const LOCALITY_NAME_RE = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,62})?$/;

/** Reads the identity; the metadata keys are the ones `lucid-mesh bootstrap` writes. */
export function proxyIdentityOf(node: NodeMessage | undefined): ProxyIdentity {
  if (!node) throw new InvalidNodeError('the first request on a stream must carry node');
  const nodeId = node.id ?? '';
  if (nodeId.trim() === '' || nodeId.length > 253) {
    throw new InvalidNodeError(`node.id: expected a non-empty id, got ${JSON.stringify(nodeId)}`);
  }
  const meta = node.metadata ?? {};
  const service = typeof meta.service === 'string' ? meta.service : (node.cluster ?? '');
  const rawPort = meta.outbound_port ?? DEFAULT_OUTBOUND_PORT;
  const outboundPort = typeof rawPort === 'string' ? Number(rawPort) : rawPort;
  if (
    typeof outboundPort !== 'number' ||
    !Number.isInteger(outboundPort) ||
    outboundPort < 1 ||
    outboundPort > 65535
  ) {
    throw new InvalidNodeError(
      `node.metadata.outbound_port: expected integer 1-65535, got ${JSON.stringify(rawPort)}`,
    );
  }
  const locality = localityOf(node);
  const dnsPort = dnsPortOf(meta.dns_port);
  const exclusivePorts = booleanMeta('exclusive_ports', meta.exclusive_ports) === true;
  const dnsForward = booleanMeta('dns_forward', meta.dns_forward) !== false;
  const vhds = booleanMeta('vhds', meta.vhds) === true;
  return {
    nodeId,
    service,
    outboundPort,
    ...(locality ? { locality } : {}),
    ...(dnsPort !== 0 ? { dnsPort } : {}),
    ...(dnsPort !== 0 && !dnsForward ? { dnsForward: false as const } : {}),
    ...(exclusivePorts ? { exclusivePorts: true as const } : {}),
    ...(vhds ? { vhds: true as const } : {}),
  };
}

/**
 * A true/false key of node.metadata, as `lucid-mesh bootstrap` writes them (a YAML boolean; a
 * string from other bootstraps): undefined when absent. exclusive_ports (true): its own ports
 * without SO_REUSEPORT (translate/envoy.ts), absent for sidecars bootstrapped before it;
 * dns_forward (false): `bootstrap --dns-forward off`; vhds (true): `bootstrap --mode delta`, its
 * outbound virtual hosts over VHDS (a live route configuration cannot switch: absent before).
 */
function booleanMeta(key: string, raw: unknown): boolean | undefined {
  if (raw === undefined || raw === null || raw === '') return undefined;
  if (raw === true || raw === 'true') return true;
  if (raw === false || raw === 'false') return false;
  throw new InvalidNodeError(
    `node.metadata.${key}: expected true or false, got ${JSON.stringify(raw)}`,
  );
}

/** node.metadata.dns_port: absent → the default; 0 → no DNS listener (docs/dns.md). */
function dnsPortOf(raw: unknown): number {
  if (raw === undefined || raw === null || raw === '') return DEFAULT_DNS_PORT;
  const port = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidNodeError(
      `node.metadata.dns_port: expected integer 0-65535 (0: no DNS listener), got ${JSON.stringify(raw)}`,
    );
  }
  return port;
}

/**
 * Where the proxy runs: node.locality.region/zone and node.metadata.datacenter (Envoy's
 * Locality has no datacenter; sub_zone is not used). Only the parts that are set; undefined
 * when none is, so a proxy without a locality has the same identity as before localities.
 */
function localityOf(node: NodeMessage): Locality | undefined {
  const parts: Array<[keyof Locality, string, unknown]> = [
    ['datacenter', 'node.metadata.datacenter', node.metadata?.datacenter],
    ['region', 'node.locality.region', node.locality?.region],
    ['zone', 'node.locality.zone', node.locality?.zone],
  ];
  const locality: { -readonly [K in keyof Locality]: Locality[K] } = {};
  for (const [part, field, value] of parts) {
    // Protobuf leaves an unset string empty; an empty Struct value means unset too.
    if (value === undefined || value === null || value === '') continue;
    if (typeof value !== 'string' || !LOCALITY_NAME_RE.test(value)) {
      throw new InvalidNodeError(
        `${field}: expected a name (letters, digits, . _ -; up to 63, a letter or digit first), got ${JSON.stringify(value)}`,
      );
    }
    locality[part] = value;
  }
  return Object.keys(locality).length > 0 ? locality : undefined;
}
