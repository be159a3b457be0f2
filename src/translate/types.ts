// What the translators produce: Envoy resources in their JSON shape, keyed by resource name,
// per kind. Encoded later, once, by the snapshot store.
import type {
  Cluster,
  ClusterLoadAssignment,
  Listener,
  RouteConfiguration,
  Secret,
  VirtualHost,
} from '../protos/envoy-types.js';
import type { ResourceKind } from '../protos/envoy.js';

/** The Envoy message each kind of resource is. */
export interface ResourceTypes {
  clusters: Cluster;
  endpoints: ClusterLoadAssignment;
  listeners: Listener;
  routes: RouteConfiguration;
  /** VHDS: made by the snapshot store from the outbound routes (snapshot/vhds.ts), not here. */
  virtualHosts: VirtualHost;
  secrets: Secret;
}

/** A resource of any kind: for code that handles them alike (the encoder, secret providers). */
export type ResourceMessage = ResourceTypes[ResourceKind];

export type ResourceSet = { [K in ResourceKind]: Map<string, ResourceTypes[K]> };

export function emptyResourceSet(): ResourceSet {
  return {
    clusters: new Map(),
    endpoints: new Map(),
    listeners: new Map(),
    routes: new Map(),
    virtualHosts: new Map(),
    secrets: new Map(),
  };
}
