// The catalog model: what every discovery source produces and every translator reads.
// Sources normalise into this shape (sorted, defaults filled) so equal catalogs compare equal.
import { compareStrings } from '../text-order.js';

export const PROTOCOLS = ['http', 'http2', 'grpc', 'tcp'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

export const HEALTH_STATES = ['passing', 'warning', 'critical'] as const;
export type Health = (typeof HEALTH_STATES)[number];

export interface Instance {
  /** Unique across the catalog; equals the Envoy node id of this instance's sidecar. */
  readonly id: string;
  readonly address: string;
  /** The application's own port. */
  readonly port: number;
  /** The sidecar's inbound port; peers connect here. Absent = not meshed. */
  readonly sidecarPort?: number;
  /**
   * Where the sidecar reaches its app (Consul's Proxy.LocalServiceAddress), an IP on the
   * sidecar's host. Absent: 127.0.0.1.
   */
  readonly localAppAddress?: string;
  readonly health: Health;
  readonly tags: readonly string[];
  readonly meta: Readonly<Record<string, string>>;
  /** Where the instance runs. Absent datacenter: the control plane's own (serve --datacenter). */
  readonly datacenter?: string;
  readonly region?: string;
  readonly zone?: string;
}

/** Where a workload runs, coarse to fine; a missing part matches only another missing part. */
export interface Locality {
  readonly datacenter?: string;
  readonly region?: string;
  readonly zone?: string;
}

export interface Service {
  readonly name: string;
  readonly protocol: Protocol;
  /** tcp services only: the local port on which every sidecar listens for this service. */
  readonly outboundPort?: number;
  /** Sorted by id. */
  readonly instances: readonly Instance[];
  /**
   * The services its sidecars call (docs/scoping.md): with a scope, they receive only these
   * (and what routes lead to). Absent: none declared. Sorted by name.
   */
  readonly upstreams?: readonly Upstream[];
  /**
   * How long its sidecars keep an idle connection to the app open (ms; 0: never closed).
   * Absent: proxy-defaults' Config.lucid_local_app_idle_timeout_ms, else 4 s (docs/local-app.md).
   */
  readonly localAppIdleTimeoutMs?: number;
}

/** A declared upstream; with a local bind port the sidecar also listens for it there. */
export interface Upstream {
  readonly name: string;
  /** Consul Connect's LocalBindPort: apps call the upstream at localBindAddress:this. */
  readonly localBindPort?: number;
  /** Default 127.0.0.1. */
  readonly localBindAddress?: string;
}

/**
 * A mesh gateway: an Envoy at the edge of a datacenter that forwards mesh TLS by SNI, without
 * terminating it, to the datacenter's services (and to other datacenters' gateways).
 */
export interface Gateway {
  /** Unique across the catalog; the Envoy node id of the gateway. */
  readonly id: string;
  /** Absent: the control plane's own datacenter. */
  readonly datacenter?: string;
  /** Where sidecars and gateways of the same datacenter reach it. */
  readonly address: string;
  readonly port: number;
  /** Where other datacenters reach it (default: address and port). */
  readonly wanAddress?: string;
  readonly wanPort?: number;
  readonly health: Health;
}

export interface Catalog {
  /** Sorted by name. */
  readonly services: readonly Service[];
  /** Mesh gateways, sorted by id (absent: none). */
  readonly gateways?: readonly Gateway[];
}

/** The identity a connected sidecar presents (from its Envoy node). */
export interface ProxyIdentity {
  readonly nodeId: string;
  /** Service the sidecar belongs to (node.cluster / metadata). May be empty if unknown. */
  readonly service: string;
  /** Port of the outbound HTTP listener on 127.0.0.1. */
  readonly outboundPort: number;
  /** Where the sidecar runs (Envoy node locality + metadata.datacenter), when it says. */
  readonly locality?: Locality;
  /** UDP port of its DNS listener on 127.0.0.1 (docs/dns.md); absent: no DNS listener. */
  readonly dnsPort?: number;
  /**
   * node.metadata.dns_forward false (`bootstrap --dns-forward off`): its DNS listener answers
   * names not in its table NXDOMAIN instead of forwarding them. Absent: forwarded.
   */
  readonly dnsForward?: false;
  /** node.metadata.exclusive_ports: bind its own ports without SO_REUSEPORT (MeshProxy). */
  readonly exclusivePorts?: true;
  /**
   * node.metadata.vhds, on a delta stream: its outbound virtual hosts come over VHDS
   * (translate/vhds.ts). Absent: inline in the route configuration.
   */
  readonly vhds?: true;
}

export const DEFAULT_OUTBOUND_PORT = 15001;
/** node.metadata.dns_port when a sidecar's bootstrap says nothing (0 there turns DNS off). */
export const DEFAULT_DNS_PORT = 15053;

/** Sorts services and instances so that equal catalogs are deep-equal. */
export function normalizeCatalog(catalog: Catalog): Catalog {
  const gateways = [...(catalog.gateways ?? [])].sort((a, b) => cmp(a.id, b.id));
  return {
    services: [...catalog.services]
      .map((s) => ({
        ...s,
        instances: [...s.instances].sort((a, b) => cmp(a.id, b.id)),
        ...(s.upstreams ? { upstreams: [...s.upstreams].sort((a, b) => cmp(a.name, b.name)) } : {}),
      }))
      .sort((a, b) => cmp(a.name, b.name)),
    ...(gateways.length > 0 ? { gateways } : {}),
  };
}

const cmp = compareStrings;

/**
 * `next` with whatever is deep-equal to `prev` replaced by prev's objects: unchanged services
 * (and, in a changed service, unchanged instances) keep their identity from one catalog to the
 * next, so work keyed by them (translation, per-proxy resources) is reused, not redone. A
 * source hands over a complete catalog each time; this turns it back into "what changed".
 */
export function reuseUnchanged(prev: Catalog | undefined, next: Catalog): Catalog {
  if (!prev) return next;
  // Sources keep unchanged services' objects, in the same place (a file's incremental parse):
  // the previous service at the same index is tried first, and a map of all of them is made
  // only when that fails (making it for 10,000 services cost ~3 ms per change, bench W10).
  let previous: Map<string, Service> | undefined;
  const oldOf = (service: Service, i: number): Service | undefined => {
    const same = prev.services[i];
    if (same === service || same?.name === service.name) return same;
    previous ??= new Map(prev.services.map((s) => [s.name, s]));
    return previous.get(service.name);
  };
  const services = next.services.map((service, i) => {
    const old = oldOf(service, i);
    return old ? reuseUnchangedService(old, service) : service;
  });
  // Gateways are few: kept as a whole while equal.
  const gateways =
    prev.gateways && JSON.stringify(prev.gateways) === JSON.stringify(next.gateways)
      ? prev.gateways
      : next.gateways;
  return { ...next, services, ...(gateways ? { gateways } : {}) };
}

/**
 * One service of reuseUnchanged: `old` if deep-equal, else `next` with old's objects for its
 * unchanged instances. `next` itself when none of its instances is swapped (a source that
 * already reused them, see incremental-parse.ts): a copy would hold the same objects twice
 * over, one for the source and one for the model, and compare field by field on every change.
 */
export function reuseUnchangedService(old: Service, next: Service): Service {
  if (old === next || sameService(old, next)) return old;
  const oldInstances = new Map(old.instances.map((i) => [i.id, i]));
  let swapped = false;
  const instances = next.instances.map((instance) => {
    const same = oldInstances.get(instance.id);
    if (!same || same === instance || !sameInstance(same, instance)) return instance;
    swapped = true;
    return same;
  });
  return swapped ? { ...next, instances } : next;
}

// Field by field (the model is small and fixed): isDeepStrictEqual took ~16 ms per change on a
// 1000-service catalog, this takes well under one. test/catalog/reuse-unchanged.test.ts changes
// every field of a service and an instance and checks each is noticed.
function sameService(a: Service, b: Service): boolean {
  if (
    a.name !== b.name ||
    a.protocol !== b.protocol ||
    a.outboundPort !== b.outboundPort ||
    a.localAppIdleTimeoutMs !== b.localAppIdleTimeoutMs
  ) {
    return false;
  }
  if (a.instances.length !== b.instances.length || keyCount(a) !== keyCount(b)) return false;
  if (!sameUpstreams(a.upstreams, b.upstreams)) return false;
  for (let i = 0; i < a.instances.length; i++) {
    if (!sameInstance(a.instances[i]!, b.instances[i]!)) return false;
  }
  return true;
}

function sameUpstreams(a: Service['upstreams'], b: Service['upstreams']): boolean {
  if (a === b) return true;
  if (!a || !b || a.length !== b.length) return false;
  return a.every(
    (u, i) =>
      u.name === b[i]!.name &&
      u.localBindPort === b[i]!.localBindPort &&
      u.localBindAddress === b[i]!.localBindAddress,
  );
}

function sameInstance(a: Instance, b: Instance): boolean {
  return (
    a.id === b.id &&
    a.address === b.address &&
    a.port === b.port &&
    a.sidecarPort === b.sidecarPort &&
    a.localAppAddress === b.localAppAddress &&
    a.health === b.health &&
    a.datacenter === b.datacenter &&
    a.region === b.region &&
    a.zone === b.zone &&
    keyCount(a) === keyCount(b) &&
    a.tags.length === b.tags.length &&
    a.tags.every((t, i) => t === b.tags[i]) &&
    sameRecord(a.meta, b.meta)
  );
}

function sameRecord(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>) {
  const keys = Object.keys(a);
  if (keys.length !== keyCount(b)) return false;
  for (const k of keys) if (a[k] !== b[k] || !Object.hasOwn(b, k)) return false;
  return true;
}

/** A field the comparisons above do not know about makes objects unequal rather than equal. */
function keyCount(o: object): number {
  return Object.keys(o).length;
}

/** Whether two catalogs hold the very same service and gateway objects (see reuseUnchanged). */
export function sameServices(a: Catalog, b: Catalog): boolean {
  return (
    a.gateways === b.gateways &&
    a.services.length === b.services.length &&
    a.services.every((s, i) => s === b.services[i])
  );
}
