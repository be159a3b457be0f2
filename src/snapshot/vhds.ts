// What a VHDS sidecar (translate/vhds.ts) is served: a snapshot the same as its scope's, but
// with the outbound route configuration as a VHDS stub and its virtual hosts as resources of
// their own. One such snapshot per snapshot, shared by every VHDS sidecar of the scope, and
// each host's resource made once per host object (translate/ keeps an unchanged host the
// same object from build to build, in every scope): a router edit makes one host resource,
// and the stub, the same bytes for ever, is never sent again.
import { OUTBOUND_ROUTE_NAME } from '../translate/names.js';
import {
  noServicesVirtualHost,
  servedOverVhds,
  vhdsHostName,
  vhdsRouteConfiguration,
} from '../translate/vhds.js';
import { NO_RESOURCES } from './encode-set.js';
import {
  encodeResource,
  resourceOf,
  virtualHostsOf,
  type EncodedResource,
} from './encoded-resource.js';
import { renamedHostBytes } from './route-assembly.js';
import type { ResourceMap, Snapshot } from './snapshot.js';

const STUB = encodeResource(
  'routes',
  OUTBOUND_ROUTE_NAME,
  vhdsRouteConfiguration(OUTBOUND_ROUTE_NAME),
);
const NO_SERVICES = (() => {
  const host = noServicesVirtualHost(OUTBOUND_ROUTE_NAME);
  return new Map([[host.name!, encodeResource('virtualHosts', host.name!, host)]]);
})();

/** By a snapshot: its VHDS form. */
const variants = new WeakMap<Snapshot, Snapshot>();
/** By a VHDS snapshot: the snapshot it was made from (the one the store knows). */
const origins = new WeakMap<Snapshot, Snapshot>();
/** By an outbound route configuration: its hosts as VHDS resources. */
const hostMaps = new WeakMap<EncodedResource, ResourceMap>();
/** By a translated virtual host: its VHDS resource. */
const hostResources = new WeakMap<object, EncodedResource>();

/** Counts for tests: VHDS host resources made. */
export const vhdsCounters = { hostsMade: 0 };

/** `snapshot` as a VHDS sidecar is served it. */
export function vhdsSnapshot(snapshot: Snapshot): Snapshot {
  let variant = variants.get(snapshot);
  if (variant) return variant;
  const routes = new Map(snapshot.shared.routes);
  let virtualHosts = NO_RESOURCES;
  for (const [name, config] of snapshot.shared.routes) {
    if (!servedOverVhds(name)) continue;
    routes.set(name, STUB);
    virtualHosts = hostsOf(config);
  }
  variant = snapshot.narrowed({ ...snapshot.shared, routes, virtualHosts });
  variants.set(snapshot, variant);
  origins.set(variant, snapshot);
  return variant;
}

/** The snapshot a VHDS one was made from; any other as it is. */
export function vhdsOrigin(snapshot: Snapshot): Snapshot {
  return origins.get(snapshot) ?? snapshot;
}

function hostsOf(config: EncodedResource): ResourceMap {
  let map = hostMaps.get(config);
  if (map) return map;
  const hosts = virtualHostsOf(config);
  if (!hosts || hosts.length === 0) map = NO_SERVICES;
  else {
    const made = new Map<string, EncodedResource>();
    for (const host of hosts) {
      const r = hostResource(config.name, host);
      made.set(r.name, r);
    }
    map = made;
  }
  hostMaps.set(config, map);
  return map;
}

function hostResource(route: string, host: object): EncodedResource {
  let r = hostResources.get(host);
  if (!r) {
    const name = vhdsHostName(route, (host as { name: string }).name);
    r = resourceOf('virtualHosts', name, renamedHostBytes(host, name, `"${name}"`));
    hostResources.set(host, r);
    vhdsCounters.hostsMade++;
  }
  return r;
}
