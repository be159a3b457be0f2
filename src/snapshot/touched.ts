// What a patched build touched: the watchers whose view it may change. After a build that
// patched a few services (an endpoint change) and changed nothing else, the proxies of those
// services (their own resources) and the proxies of every scope holding one of them (their
// scoped snapshot). Every other scope's snapshot would be found unchanged (its resources are
// the same objects), so it is kept at once as the new build's, and its proxies are not
// visited: W9 visited 10,000 watchers a change (~60 ms) to hand 100 a view.
// A traffic edit of one service's entries (router, splitter, resolver, service-defaults,
// intentions) is judged the same way, from the mesh model: only the MeshServices that read
// the entry are new objects, and what they now reach shows as changed scopes. Mesh-wide
// inputs (proxy-defaults, the policy, settings, secrets) visit every watcher.
import { proxyScope } from '../mesh/index.js';
import type { MeshObservability } from '../mesh/types.js';
import type { Policy } from '../policy/schema.js';
import type { TrafficConfig } from '../traffic/types.js';
import { RESOURCE_KINDS } from '../protos/envoy.js';
import type { PatchedNames, TranslationCache } from '../translate/index.js';
import { OUTBOUND_ROUTE_NAME } from '../translate/names.js';
import type { Watch, WatchIndex } from './fanout.js';
import type { ScopedSnapshots } from './scoped-snapshots.js';
import type { Snapshot } from './snapshot.js';

/** The inputs a build was made from besides the catalog (see narrowInputs). */
export interface BuiltInputs {
  /** Secrets and settings (SnapshotStore.inputsGeneration). */
  readonly generation: number;
  readonly traffic: TrafficConfig;
  readonly policy: Policy | undefined;
}

/**
 * Whether a build from `now` after one from `last` may visit only what its mesh changed: the
 * same secrets, settings and policy (RBAC from the policy is in every proxy's inbound
 * listener), and no mesh-wide traffic entry changed (proxy-defaults: protocol, timeouts,
 * tracing, access logs and upstream settings of every proxy). Entries of named services
 * (kept as the same objects when unchanged) show in the mesh as their services' changes.
 */
export function narrowInputs(last: BuiltInputs | undefined, now: BuiltInputs): boolean {
  return (
    last !== undefined &&
    last.generation === now.generation &&
    last.policy === now.policy &&
    last.traffic.proxyDefaults === now.traffic.proxyDefaults
  );
}

/**
 * The services `snapshot` changed over `previous`, when it differs from it only by the
 * patched shared resources `changes` (the names whose encoded resource changed), each owned
 * by one of those services. Undefined when it may have changed anything (a full encode, other
 * settings or gateways, services added or removed, a resource every scope holds).
 */
export function patchedServices(
  previous: Snapshot,
  snapshot: Snapshot,
  changes: PatchedNames | undefined,
  translationCache: TranslationCache,
): Set<string> | undefined {
  const a = previous.mesh;
  const b = snapshot.mesh;
  if (!changes || a.settings !== b.settings || a.gatewayMode !== b.gatewayMode) return undefined;
  // Mesh gateways' own resources follow every service, but gateway proxies are strays
  // (WatchIndex.served), visited on every change; the gateways themselves (the same array
  // while equal) reach every sidecar's clusters and failover endpoints.
  if (a.gateways !== b.gateways) return undefined;
  // Failover backends: a caller elsewhere gets their endpoints from its locality's snapshot,
  // made from the backend alone (its service's), the gateways and the caller's mode (its own
  // service's). Aggregate clusters name their targets only; a target appearing or leaving
  // changes the names of a part (patchShared then translates in full: no `changes`).
  if (a.services.length !== b.services.length) return undefined;
  if (!sameMeshWideObservability(a.observability, b.observability)) return undefined;
  for (const kind of RESOURCE_KINDS) {
    if (!(kind in changes) && previous.shared[kind] !== snapshot.shared[kind]) return undefined;
  }
  // Every scope holds the mesh's other route configurations (bound upstreams').
  if (changes.routes.some((name) => name !== OUTBOUND_ROUTE_NAME)) return undefined;
  const changed = new Set<string>();
  const owned = new Set<string>();
  for (let i = 0; i < b.services.length; i++) {
    const x = a.services[i]!;
    const y = b.services[i]!;
    if (x === y) continue;
    const part = x.name === y.name ? translationCache.partOf(y) : undefined;
    if (!part) return undefined;
    // Other proxies' own resources follow these (a local bind listener's kind, the ports
    // every sidecar listens on): not seen from their own service.
    if (x.protocol !== y.protocol || x.outboundPort !== y.outboundPort) return undefined;
    changed.add(y.name);
    for (const [name] of part.clusters) owned.add(name);
    for (const [name] of part.endpoints) owned.add(name);
    if (part.tcpListener) owned.add(part.tcpListener[0]);
  }
  // A changed resource no changed service owns (the tracing cluster) is in every scope.
  for (const kind of ['clusters', 'endpoints', 'listeners'] as const) {
    for (const name of changes[kind]) if (!owned.has(name)) return undefined;
  }
  return changed;
}

/**
 * Tracing and the default access log are in every proxy's own resources. A service's own
 * access log (its service-defaults) reaches its proxies only, whose MeshService read it.
 */
function sameMeshWideObservability(
  a: MeshObservability | undefined,
  b: MeshObservability | undefined,
): boolean {
  if (a === b) return true;
  const wide = (o: MeshObservability | undefined) =>
    JSON.stringify([o?.tracing ?? null, o?.accessLog ?? null]);
  return wide(a) === wide(b);
}

/**
 * The watchers whose view `snapshot` may change, or undefined for every watcher (see
 * patchedServices). Scopes holding none of the changed services keep their snapshot as
 * `snapshot`'s (ScopedSnapshots.keepUntouched). Strays (proxies that are no instance of their
 * service, failing ones) are always visited.
 */
export function touchedWatchers(
  previous: Snapshot,
  snapshot: Snapshot,
  changes: PatchedNames | undefined,
  translationCache: TranslationCache,
  watches: WatchIndex,
  scoped: ScopedSnapshots,
): Watch[] | undefined {
  const all = (snapshot.mesh.settings.scope ?? 'all') === 'all';
  // Scope all: every proxy holds every service; visited in the order they came, not by service.
  if (all && !changes) return undefined;
  const changed = patchedServices(previous, snapshot, changes, translationCache);
  if (!changed) return undefined;
  // No service changed (an entry of a service not in the catalog, a problem only): no
  // proxy's own resources and no shared resource did either, so a proxy holding every
  // service is not touched (scope all visited every watcher for such an edit).
  const none = changed.size === 0;
  if (all) return none ? [...watches.strays] : undefined;
  const a = previous.mesh;
  const b = snapshot.mesh;
  const scopeTouched = new Map<string, boolean>();
  const visit: Watch[] = [...watches.strays];
  for (const [service, holders] of watches.holders) {
    const scope = proxyScope(b, service);
    const key = scope.key;
    let touched = changed.has(service) || scope !== proxyScope(a, service);
    // A scope of every service (no key) is touched by any change.
    if (!touched && key === undefined) touched = !none;
    else if (!touched) {
      touched = scopeTouched.get(key!) ?? !scoped.keepUntouched(scope, previous, snapshot, changed);
      scopeTouched.set(key!, touched);
    }
    if (touched) for (const w of holders) visit.push(w);
  }
  return visit;
}
