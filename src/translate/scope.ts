// A scope's share of the shared resources (docs/scoping.md): what a sidecar that may reach
// only some services is not sent, and its outbound route configuration with only their
// virtual hosts. Computed once per build and scope, whatever the number of its proxies.
import type { RouteConfiguration, VirtualHost } from '../protos/envoy-types.js';
import { outboundRouteConfiguration } from './routes.js';

/** What translateShared made of one service (see ServiceResources in index.ts). */
export interface ServiceNames {
  readonly clusters: ReadonlyArray<readonly [string, unknown]>;
  readonly endpoints: ReadonlyArray<readonly [string, unknown]>;
  readonly virtualHost?: VirtualHost;
  readonly tcpListener?: readonly [string, unknown];
}

export interface ScopedShared {
  /** Shared resources of services outside the scope, by kind: left out for its proxies. */
  readonly drop: {
    readonly clusters: ReadonlySet<string>;
    readonly endpoints: ReadonlySet<string>;
    readonly listeners: ReadonlySet<string>;
  };
  /** The outbound route configuration with the scope's virtual hosts only. */
  readonly routes: RouteConfiguration;
}

/**
 * The scope of `services` over the shared parts (services in name order). `last` is the
 * previous build's answer for the same scope: with the same virtual hosts its route
 * configuration is the very same object, so it is not encoded again.
 */
export function scopedShared(
  parts: ReadonlyMap<string, ServiceNames>,
  services: readonly string[],
  last: ScopedShared | undefined,
): ScopedShared {
  const keep = new Set(services);
  const clusters = new Set<string>();
  const endpoints = new Set<string>();
  const listeners = new Set<string>();
  const hosts: VirtualHost[] = [];
  for (const [name, part] of parts) {
    if (keep.has(name)) {
      if (part.virtualHost) hosts.push(part.virtualHost);
      continue;
    }
    for (const [c] of part.clusters) clusters.add(c);
    for (const [e] of part.endpoints) endpoints.add(e);
    if (part.tcpListener) listeners.add(part.tcpListener[0]);
  }
  // A name a reachable service also has (e.g. a shared subset cluster) stays.
  for (const name of keep) {
    const part = parts.get(name);
    for (const [c] of part?.clusters ?? []) clusters.delete(c);
    for (const [e] of part?.endpoints ?? []) endpoints.delete(e);
  }
  const lastHosts = last?.routes.virtualHosts;
  const routes =
    lastHosts && lastHosts.length === hosts.length && lastHosts.every((h, i) => h === hosts[i])
      ? last.routes
      : outboundRouteConfiguration(hosts);
  return { drop: { clusters, endpoints, listeners }, routes };
}
