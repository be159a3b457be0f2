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

/**
 * A RouteConfiguration as the encoded parts of its bytes: its name field, its virtual hosts
 * (each to be framed as field 2) and the rest. Undefined when it has no virtual hosts to
 * assemble from (encodeMessage then encodes it whole). Throws as encodeMessage would.
 */
export interface RouteParts {
  readonly head: Uint8Array;
  readonly hosts: readonly object[];
  readonly hostBytes: readonly Uint8Array[];
  readonly tail: Uint8Array;
}

export function routeParts(message: object, what = ''): RouteParts | undefined {
  const { name, virtualHosts, ...rest } = message as { name?: unknown; virtualHosts?: unknown };
  if (
    !Array.isArray(virtualHosts) ||
    virtualHosts.length === 0 ||
    !virtualHosts.every((h) => typeof h === 'object' && h !== null)
  ) {
    return undefined;
  }
  try {
    return {
      head:
        name === undefined ? new Uint8Array(0) : encodeMessage(ROUTE_CONFIGURATION, { name }, what),
      hosts: virtualHosts as object[],
      hostBytes: virtualHosts.map((h: object) => encodedHost(h, what)),
      tail: encodeMessage(ROUTE_CONFIGURATION, rest, what),
    };
  } catch {
    // The whole message again, for the error as encodeMessage words it.
    encodeMessage(ROUTE_CONFIGURATION, message, what);
    throw new Error(`cannot encode RouteConfiguration ${what}`);
  }
}

/**
 * Calls `take` with each piece of the parts' bytes in order (the pieces, joined, are the
 * message): for hashing them without joining them.
 */
export function eachPiece(parts: RouteParts, take: (piece: Uint8Array) => void): void {
  take(parts.head);
  const frame = new Uint8Array(6);
  for (const host of parts.hostBytes) {
    frame[0] = VIRTUAL_HOSTS_TAG;
    take(frame.subarray(0, writeVarint(frame, 1, host.length)));
    take(host);
  }
  take(parts.tail);
}

/** Counts for tests: route configurations whose bytes were joined from their parts. */
export const routeJoinCounters = { joined: 0 };

/** The parts' bytes, joined. */
export function joinRouteParts(parts: RouteParts): Uint8Array {
  routeJoinCounters.joined++;
  let size = parts.head.length + parts.tail.length;
  for (const h of parts.hostBytes) size += 1 + varintLength(h.length) + h.length;
  const out = new Uint8Array(size);
  let at = 0;
  eachPiece(parts, (piece) => {
    out.set(piece, at);
    at += piece.length;
  });
  return out;
}

/** The RouteConfiguration `message` (Envoy's JSON shape) encoded, as encodeMessage would. */
export function encodeRouteConfiguration(message: object, what = ''): Uint8Array {
  const parts = routeParts(message, what);
  return parts ? joinRouteParts(parts) : encodeMessage(ROUTE_CONFIGURATION, message, what);
}

/** VirtualHost.name: field 1, length-delimited (protobufjs writes it first). */
const NAME_TAG = (1 << 3) | 2;

/**
 * `host`'s bytes (encoded once, as for its route configurations) with `name` for its own:
 * a VHDS host (translate/vhds.ts) without a protobuf encode of its own.
 */
export function renamedHostBytes(host: object, name: string, what = ''): Uint8Array {
  const bytes = encodedHost(host, what);
  let rest = bytes;
  if (bytes[0] === NAME_TAG) {
    let length = 0;
    let shift = 0;
    let at = 1;
    for (;;) {
      const b = bytes[at++]!;
      length |= (b & 0x7f) << shift;
      if (b < 0x80) break;
      shift += 7;
    }
    rest = bytes.subarray(at + length);
  }
  const nameBytes = Buffer.from(name, 'utf8');
  const out = new Uint8Array(1 + varintLength(nameBytes.length) + nameBytes.length + rest.length);
  out[0] = NAME_TAG;
  let at = writeVarint(out, 1, nameBytes.length);
  out.set(nameBytes, at);
  at += nameBytes.length;
  out.set(rest, at);
  return out;
}
