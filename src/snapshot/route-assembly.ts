// A RouteConfiguration's bytes assembled from its virtual hosts' bytes, each virtual host
// encoded once per object. Scoped sidecars (`--scope declared`) get a RouteConfiguration per
// scope: at W2's shape with 10 declared upstreams, 1,000 configurations of 10 virtual hosts,
// each host in 10 of them, and protobufjs's fromObject/verify/encode of every configuration
// was ~10 % of the storm's control-plane thread (bench W6:declared --profile). Virtual hosts
// are cached by content upstream (translate/), so the same object comes back in every scope
// and every build that keeps it.
//
// The bytes are exactly protobufjs's: it writes fields in field-number order, a repeated
// message field as tag + length + the element's own encoding, so `name` (1), then every
// virtual host (2), then the rest (3…) encoded on its own is the same sequence.
import { encodeMessage } from '../protos/envoy.js';
import { varintLength, writeVarint } from '../protos/wire.js';

const ROUTE_CONFIGURATION = 'envoy.config.route.v3.RouteConfiguration';
const VIRTUAL_HOST = 'envoy.config.route.v3.VirtualHost';
/** RouteConfiguration.virtual_hosts: field 2, length-delimited. */
const VIRTUAL_HOSTS_TAG = (2 << 3) | 2;

const hostBytes = new WeakMap<object, Uint8Array>();

/** Counts for tests: virtual hosts encoded (not found in the cache). */
export const routeAssemblyCounters = { hostsEncoded: 0 };

function encodedHost(host: object, what: string): Uint8Array {
  let bytes = hostBytes.get(host);
  if (!bytes) {
    bytes = encodeMessage(VIRTUAL_HOST, host, what);
    hostBytes.set(host, bytes);
    routeAssemblyCounters.hostsEncoded++;
  }
  return bytes;
}

/** The RouteConfiguration `message` (Envoy's JSON shape) encoded, as encodeMessage would. */
export function encodeRouteConfiguration(message: object, what = ''): Uint8Array {
  const { name, virtualHosts, ...rest } = message as { name?: unknown; virtualHosts?: unknown };
  if (
    !Array.isArray(virtualHosts) ||
    virtualHosts.length === 0 ||
    !virtualHosts.every((h) => typeof h === 'object' && h !== null)
  ) {
    return encodeMessage(ROUTE_CONFIGURATION, message, what);
  }
  let parts: Uint8Array[];
  try {
    parts = [
      name === undefined ? new Uint8Array(0) : encodeMessage(ROUTE_CONFIGURATION, { name }, what),
      ...virtualHosts.map((h: object) => encodedHost(h, what)),
      encodeMessage(ROUTE_CONFIGURATION, rest, what),
    ];
  } catch {
    // The whole message again, for the error as encodeMessage words it.
    return encodeMessage(ROUTE_CONFIGURATION, message, what);
  }
  const hosts = parts.length - 2;
  let size = parts[0]!.length + parts[hosts + 1]!.length;
  for (let i = 1; i <= hosts; i++) size += 1 + varintLength(parts[i]!.length) + parts[i]!.length;
  const out = new Uint8Array(size);
  out.set(parts[0]!, 0);
  let at = parts[0]!.length;
  for (let i = 1; i <= hosts; i++) {
    const host = parts[i]!;
    out[at++] = VIRTUAL_HOSTS_TAG;
    at = writeVarint(out, at, host.length);
    out.set(host, at);
    at += host.length;
  }
  out.set(parts[hosts + 1]!, at);
  return out;
}
