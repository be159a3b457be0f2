// The etcd key layout of lucid-mesh, and the decoding of its values (see docs/etcd.md).
//
//   <prefix>services/<service>                → service settings, JSON {"protocol": "http2"}
//                                               (optional; without it: protocol http; may
//                                               declare "upstreams", docs/scoping.md, and
//                                               "localAppIdleTimeoutMs", docs/local-app.md)
//   <prefix>services/<service>/<instance-id>  → one instance, JSON with the catalog file's
//                                               instance fields; "id" may be omitted, and
//                                               must equal <instance-id> when present
//
//   <prefix>config/<kind>/<name>              → one traffic config entry (Consul's JSON, e.g.
//                                               a service-router), read by config-entries.ts
//
// The default prefix is "/lucid-mesh/". The catalog ignores keys outside `services/`; keys
// under `services/` of any other shape are reported as bad.
// Values are validated with the catalog file's zod schemas, so a value is accepted in etcd
// exactly when the same fields would be accepted in a catalog file.
import type { Instance, Protocol, Upstream } from '../../catalog/model.js';
import { formatIssues, instanceSchema, serviceSchema, show } from '../../catalog/schema.js';

export const DEFAULT_ETCD_PREFIX = '/lucid-mesh/';
const SERVICES = 'services/';

/** A prefix always ends with "/", so "/lucid-mesh" and "/lucid-mesh/" mean the same. */
export function normalizePrefix(prefix: string): string {
  return prefix.endsWith('/') ? prefix : `${prefix}/`;
}

/** Everything the source watches: `<prefix>services/`. */
export function servicesPrefix(prefix: string): string {
  return normalizePrefix(prefix) + SERVICES;
}

/** Where the traffic config entries live: `<prefix>config/`. */
export function configPrefix(prefix: string): string {
  return `${normalizePrefix(prefix)}config/`;
}

/** The key of one config entry: `<prefix>config/<kind>/<name>`. */
export function configEntryKey(prefix: string, kind: string, name: string): string {
  return `${configPrefix(prefix)}${kind}/${name}`;
}

export function serviceKey(prefix: string, service: string): string {
  return `${servicesPrefix(prefix)}${service}`;
}

export function instanceKey(prefix: string, service: string, id: string): string {
  return `${servicesPrefix(prefix)}${service}/${id}`;
}

export type ParsedKey =
  | { readonly kind: 'service'; readonly service: string }
  | { readonly kind: 'instance'; readonly service: string; readonly id: string }
  | { readonly kind: 'bad'; readonly problem: string }
  | { readonly kind: 'ignored' };

/** Classifies a key (the full key, prefix included). */
export function parseKey(prefix: string, key: string): ParsedKey {
  const root = servicesPrefix(prefix);
  if (!key.startsWith(root)) return { kind: 'ignored' };
  const parts = key.slice(root.length).split('/');
  const [service = '', id] = parts;
  if (parts.length > 2 || (parts.length === 2 && id === '')) {
    return {
      kind: 'bad',
      problem: `expected ${root}<service> or ${root}<service>/<instance-id>`,
    };
  }
  const nameProblem = serviceNameProblem(service);
  if (nameProblem) return { kind: 'bad', problem: `service name in the key: ${nameProblem}` };
  return id === undefined ? { kind: 'service', service } : { kind: 'instance', service, id };
}

/** undefined if `name` is a valid service name, else why not (the catalog's rule). */
export function serviceNameProblem(name: string): string | undefined {
  const result = serviceSchema.safeParse({ name });
  if (result.success) return undefined;
  return result.error.issues.find((i) => i.path[0] === 'name')?.message;
}

export interface ServiceSettings {
  readonly protocol: Protocol;
  readonly outboundPort?: number;
  /** Declared upstreams (docs/scoping.md), as in a catalog file. */
  readonly upstreams?: readonly Upstream[];
  /** Its sidecars' idle timeout towards the app (docs/local-app.md), as in a catalog file. */
  readonly localAppIdleTimeoutMs?: number;
}

export type Decoded<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problem: string };

function parseJsonObject(text: string): Decoded<Record<string, unknown>> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return { ok: false, problem: `not JSON: ${(err as Error).message}` };
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    return { ok: false, problem: `expected a JSON object, got ${show(doc)}` };
  }
  return { ok: true, value: doc as Record<string, unknown> };
}

/** An instance value. `id` (from the key) fills a missing "id" and must match a present one. */
export function decodeInstance(id: string, text: string): Decoded<Instance> {
  const parsed = parseJsonObject(text);
  if (!parsed.ok) return parsed;
  const doc = parsed.value;
  if ('id' in doc && doc.id !== id) {
    return {
      ok: false,
      problem: `id: ${show(doc.id)} does not match the instance id in the key (${show(id)})`,
    };
  }
  const result = instanceSchema.safeParse({ ...doc, id });
  if (!result.success) return { ok: false, problem: formatIssues(result.error).join('; ') };
  return { ok: true, value: result.data };
}

/** A service settings value. An empty value means "all defaults" (protocol http). */
export function decodeServiceSettings(service: string, text: string): Decoded<ServiceSettings> {
  const parsed = text.trim() === '' ? { ok: true as const, value: {} } : parseJsonObject(text);
  if (!parsed.ok) return parsed;
  const known = ['protocol', 'outboundPort', 'upstreams', 'localAppIdleTimeoutMs'];
  const unknown = Object.keys(parsed.value).filter((k) => !known.includes(k));
  if (unknown.length > 0) {
    return {
      ok: false,
      problem: `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => show(k)).join(', ')} (expected ${known.join(', ')})`,
    };
  }
  const result = serviceSchema.safeParse({ ...parsed.value, name: service, instances: [] });
  if (!result.success) return { ok: false, problem: formatIssues(result.error).join('; ') };
  const { protocol, outboundPort, upstreams, localAppIdleTimeoutMs } = result.data;
  return {
    ok: true,
    value: {
      protocol,
      ...(outboundPort !== undefined ? { outboundPort } : {}),
      ...(upstreams !== undefined ? { upstreams } : {}),
      ...(localAppIdleTimeoutMs !== undefined ? { localAppIdleTimeoutMs } : {}),
    },
  };
}

/** The JSON written for an instance (by `lucid-mesh register`): the validated fields. */
export function encodeInstance(instance: Instance): string {
  return JSON.stringify(instance);
}

export function encodeServiceSettings(settings: ServiceSettings): string {
  return JSON.stringify(settings);
}
