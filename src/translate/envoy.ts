// Small Envoy builders every translator shares. A leaf: it imports no other translator, so
// the feature modules (clusters, endpoints, routes, listeners, tls, rbac) never import each
// other in a cycle.

/** What translators produce: an Envoy resource in its JSON shape (camelCase, "@type" in Any). */
export type ResourceMessage = Record<string, unknown>;

export const TYPE = 'type.googleapis.com/';

/** Fetch the referenced resource over the node's ADS stream. */
export function adsConfigSource(): ResourceMessage {
  return { ads: {}, resourceApiVersion: 'V3' };
}

/**
 * Milliseconds as a google.protobuf.Duration object. Not a '5s' string: protobufjs's
 * generated fromObject rejects a non-object in a message field before the Duration wrapper
 * (src/protos/wrappers.ts) is consulted. Decoded resources (goldens, config_dump) read '5s'.
 */
export function durationMs(ms: number): ResourceMessage {
  if (!Number.isFinite(ms) || ms < 0) throw new Error(`invalid duration ${ms} ms`);
  const seconds = Math.floor(ms / 1000);
  const nanos = Math.round((ms - seconds * 1000) * 1e6);
  return nanos ? { seconds, nanos } : { seconds };
}

export function socketAddress(address: string, portValue: number): ResourceMessage {
  return { socketAddress: { address, portValue } };
}

/** A percentage as Envoy's FractionalPercent (per million, so Consul's decimals survive). */
export function fractionalPercent(percent: number): ResourceMessage {
  return { numerator: Math.round(percent * 10_000), denominator: 'MILLION' };
}

/** Endpoint metadata that makes a cluster use its mTLS transport socket for that endpoint. */
export const MTLS_MATCH_KEY = 'envoy.transport_socket_match';
export const MTLS_MATCH = { mtls: true };

/** Envoy's JSON is deterministic only if translators never emit undefined: drop empty keys. */
export function defined(o: Record<string, unknown>): ResourceMessage {
  const out: ResourceMessage = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out;
}
