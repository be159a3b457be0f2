// A scope's share of the shared resources (docs/scoping.md): the resources of the services a
// sidecar may reach, and its outbound route configuration with only their virtual hosts.
// Computed once per build and scope, whatever the number of its proxies, and in the size of
// the scope (not of the mesh): a mesh of many narrow scopes pays for each what it holds.
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
  /** Shared resources of the scope's services, by kind (names). */
  readonly keep: {
    readonly clusters: readonly string[];
    readonly endpoints: readonly string[];
    readonly listeners: readonly string[];
  };
  /** The outbound route configuration with the scope's virtual hosts only. */
  readonly routes: RouteConfiguration;
}

/**
 * The scope of `services` (sorted) over this build's parts. `last` is the previous build's
 * answer for the same scope: with the same virtual hosts its route configuration is the very
 * same object, so it is not encoded again.
 */
export function scopedShared(
  parts: ReadonlyMap<string, ServiceNames>,
  services: readonly string[],
  last: ScopedShared | undefined,
): ScopedShared {
  const clusters: string[] = [];
  const endpoints: string[] = [];
  const listeners: string[] = [];
  const hosts: VirtualHost[] = [];
  for (const name of services) {
    const part = parts.get(name);
    if (!part) continue;
    for (const [c] of part.clusters) clusters.push(c);
    for (const [e] of part.endpoints) endpoints.push(e);
    if (part.tcpListener) listeners.push(part.tcpListener[0]);
    if (part.virtualHost) hosts.push(part.virtualHost);
  }
  const lastHosts = last?.routes.virtualHosts;
  const routes =
    lastHosts && lastHosts.length === hosts.length && lastHosts.every((h, i) => h === hosts[i])
      ? last.routes
      : outboundRouteConfiguration(hosts);
  // Unchanged (an endpoint change elsewhere): the last answer itself, so a change does not
  // leave a new copy of every scope's names behind until the next one (W9: 1,000 scopes).
  if (
    last?.routes === routes &&
    sameNames(last.keep.clusters, clusters) &&
    sameNames(last.keep.endpoints, endpoints) &&
    sameNames(last.keep.listeners, listeners)
  ) {
    return last;
  }
  return { keep: { clusters, endpoints, listeners }, routes };
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((n, i) => n === b[i]);
}

/** Names of `kind` in `all` that no service owns (e.g. the tracing cluster): every scope has them. */
export function unowned(
  all: Iterable<string>,
  parts: ReadonlyMap<string, ServiceNames>,
  kind: 'clusters' | 'endpoints' | 'listeners',
): string[] {
  const owned = new Set<string>();
  for (const part of parts.values()) {
    if (kind === 'listeners') {
      if (part.tcpListener) owned.add(part.tcpListener[0]);
    } else {
      for (const [n] of part[kind]) owned.add(n);
    }
  }
  return [...all].filter((n) => !owned.has(n));
}
