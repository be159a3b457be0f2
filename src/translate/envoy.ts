// Small Envoy builders every translator shares. A leaf: it imports no other translator, so
// the feature modules (clusters, endpoints, routes, listeners, tls, rbac) never import each
// other in a cycle.
//
// Every builder returns a generated Envoy type (src/protos/envoy-types.ts), so a misspelt field
// or enum value is a compile error rather than a key protobufjs `fromObject` drops silently.
import type {
  Address,
  ConfigSource,
  Duration,
  FractionalPercent,
  Listener,
  Struct,
} from '../protos/envoy-types.js';

export const TYPE = 'type.googleapis.com/';

/** Fetch the referenced resource over the node's ADS stream. */
export function adsConfigSource(): ConfigSource {
  return { ads: {}, resourceApiVersion: 'V3' };
}

/**
 * Milliseconds as a google.protobuf.Duration object. Not a '5s' string: protobufjs's
 * generated fromObject rejects a non-object in a message field before the Duration wrapper
 * (src/protos/wrappers.ts) is consulted. Decoded resources (goldens, config_dump) read '5s'.
 */
export function durationMs(ms: number): Duration {
  if (!Number.isFinite(ms) || ms < 0) throw new Error(`invalid duration ${ms} ms`);
  const seconds = Math.floor(ms / 1000);
  const nanos = Math.round((ms - seconds * 1000) * 1e6);
  return nanos ? { seconds, nanos } : { seconds };
}

export function socketAddress(address: string, portValue: number): Address {
  return { socketAddress: { address, portValue } };
}

/**
 * A TCP listener on a sidecar's own port (its outbound, inbound and bind ports, a gateway's),
 * for a node whose bootstrap says `exclusive_ports` (MeshProxy.exclusivePorts): bound without
 * SO_REUSEPORT, which Envoy sets by default. With it, a second sidecar on the host given the
 * same port shares it silently and the kernel hands each connection to either one, so a request
 * may leave with another service's identity; without it, the second sidecar's listener fails to
 * bind and Envoy NACKs it ("cannot bind …: Address already in use"), which `lucid-mesh status`
 * shows. Only for such nodes: Envoy refuses to change the option on a running listener ("reuse
 * port cannot be changed during an update"), so sidecars bootstrapped before keep the default.
 * A tcp service's outbound port is the same in every sidecar by design and keeps it too
 * (docs/consul.md), as does the DNS listener: Envoy refuses UDP without SO_REUSEPORT when it
 * runs more than one worker.
 */
export const EXCLUSIVE_PORT: Pick<Listener, 'enableReusePort'> = {
  enableReusePort: { value: false },
};

/** A percentage as Envoy's FractionalPercent (per million, so Consul's decimals survive). */
export function fractionalPercent(percent: number): FractionalPercent {
  return { numerator: Math.round(percent * 10_000), denominator: 'MILLION' };
}

/**
 * `T`'s fields as a type literal. The generated Envoy types are interfaces, and an interface is
 * not assignable to Record<string, unknown> (it has no implicit index signature); this is,
 * with the very same fields. For the exports callers outside translate read as plain JSON
 * (the RBAC builders, which test/policy and test/mesh evaluate).
 */
export type PlainJson<T> = { [K in keyof T]: T[K] };

/** Endpoint metadata that makes a cluster use its mTLS transport socket for that endpoint. */
export const MTLS_MATCH_KEY = 'envoy.transport_socket_match';
export const MTLS_MATCH: Struct = { mtls: true };

/** The metadata (and match) of an endpoint reached through a gateway into datacenter `dc`. */
export function gatewayMatch(dc: string): Struct {
  return { mtls: true, dc };
}

/**
 * Envoy's JSON is deterministic only if translators never emit undefined: `o` without its
 * undefined-valued keys, the others in their order. `T` comes from where the result goes
 * (`retryPolicy: defined({...})`, `return defined({...})` in a builder typed `: RetryPolicy`),
 * never from `o` (NoInfer), so `o`'s fields are checked against the Envoy type.
 */
export function defined<T extends object | undefined>(o: NoInfer<T> & object): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  // Not expressible without a cast: `out` is `o` minus keys whose value is undefined, which
  // every Envoy JSON type admits (all its fields are optional), but Object.entries loses the
  // key types.
  return out as T;
}
