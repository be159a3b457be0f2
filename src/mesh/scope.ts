// The one home of the scoping rule (docs/scoping.md): which services a sidecar receives.
// In order: its service's declared upstreams, else (scope `policy`) what the policy and
// intentions let it call, else every service. Whatever a reachable service's routes, splits,
// redirects, mirrors or failover name is reachable too.
import { hash } from 'node:crypto';
import type { Authorization, Mesh, MeshService, ProxyScope } from './types.js';

const ALL: ProxyScope = Object.freeze({ from: 'all' as const });

const scopes = new WeakMap<Mesh, Map<string, ProxyScope>>();
/** Scopes handed out last: an equal one in the next mesh is this very object. */
let lastByKey = new Map<string, ProxyScope>();
/** The newest mesh scopes were asked of, and its scopes by service (see sameReach). */
let lastMesh:
  { readonly mesh: WeakRef<Mesh>; readonly byService: Map<string, ProxyScope> } | undefined;

/**
 * The scope of the sidecars of `service` (memoised per mesh). A mesh whose reach is that of the
 * last one (an endpoint change: sameReach) shares its scopes: recomputing each service's for
 * each new mesh cost ~12 ms a change at W9 (1,000 services).
 */
export function proxyScope(mesh: Mesh, service: string | undefined): ProxyScope {
  const mode = mesh.settings.scope ?? 'all';
  // Not kept: a node may claim any name, and the scopes outlive a mesh (shared with the next).
  if (mode === 'all' || !service || !serviceIndex(mesh).has(service)) return ALL;
  let byService = scopes.get(mesh);
  if (!byService) {
    const last = lastMesh?.mesh.deref();
    if (last && sameReach(last, mesh)) byService = lastMesh!.byService;
    else {
      byService = new Map();
      lastByKey = new Map([...lastByKey].slice(-4096));
    }
    scopes.set(mesh, byService);
    lastMesh = { mesh: new WeakRef(mesh), byService };
  }
  let scope = byService.get(service);
  if (!scope) {
    scope = computeScope(mesh, service, mode === 'policy');
    if (scope.key !== undefined) {
      const same = lastByKey.get(scope.key);
      if (same && same.from === scope.from) scope = same;
      else lastByKey.set(scope.key, scope);
    }
    byService.set(service, scope);
  }
  return scope;
}

/**
 * Whether every service's scope in `b` is what it is in `a`: the same settings and service
 * names, and each service whose object changed has the same declared upstreams, backends,
 * route targets and (with scope `policy`) authorization. Instances do not matter.
 */
export function sameReach(a: Mesh, b: Mesh): boolean {
  if (a === b) return true;
  if (a.settings !== b.settings || a.services.length !== b.services.length) return false;
  const usePolicy = b.settings.scope === 'policy';
  for (let i = 0; i < b.services.length; i++) {
    const x = a.services[i]!;
    const y = b.services[i]!;
    if (x === y) continue;
    if (x.name !== y.name || !sameList(upstreamNames(x), upstreamNames(y))) return false;
    if ((x.upstreams === undefined) !== (y.upstreams === undefined)) return false;
    if (
      !sameList(backendNames(x), backendNames(y)) ||
      !sameList([...leadsTo(x)], [...leadsTo(y)])
    ) {
      return false;
    }
    if (usePolicy && x.authorization !== y.authorization) {
      if (JSON.stringify(x.authorization) !== JSON.stringify(y.authorization)) return false;
    }
  }
  return true;
}

const upstreamNames = (s: MeshService): readonly string[] => s.upstreams?.map((u) => u.name) ?? [];
const backendNames = (s: MeshService): readonly string[] => s.backends.map((b) => b.name);

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function computeScope(mesh: Mesh, name: string, usePolicy: boolean): ProxyScope {
  const own = serviceIndex(mesh).get(name);
  if (!own) return ALL;
  if (own.upstreams !== undefined) {
    return scopeOf(
      mesh,
      'declared',
      own.upstreams.map((u) => u.name),
    );
  }
  if (usePolicy && hasAuthorization(mesh)) {
    const allowed = mesh.services.filter((d) => d.name !== name && mayCall(name, d.authorization));
    return scopeOf(
      mesh,
      'policy',
      allowed.map((d) => d.name),
    );
  }
  return ALL;
}

function scopeOf(mesh: Mesh, from: 'declared' | 'policy', roots: readonly string[]): ProxyScope {
  const services = Object.freeze(reachableFrom(mesh, roots));
  const key = hash('sha1', services.join('\n'), 'base64url');
  return Object.freeze({ from, services, key });
}

/**
 * The closure of `roots` (names of services; unknown names are kept out) over what their
 * routes and backends lead to. Sorted.
 */
export function reachableFrom(mesh: Mesh, roots: readonly string[]): string[] {
  const services = serviceIndex(mesh);
  const owner = backendOwners(mesh);
  const seen = new Set<string>();
  const queue = roots.filter((r) => services.has(r));
  while (queue.length > 0) {
    const name = queue.pop()!;
    if (seen.has(name)) continue;
    seen.add(name);
    const service = services.get(name)!;
    for (const backend of leadsTo(service)) {
      const next = owner.get(backend);
      if (next !== undefined && !seen.has(next)) queue.push(next);
    }
  }
  return [...seen].sort();
}

/** Backend names a service's routes (splits, redirects, mirrors) and failover name. */
function* leadsTo(service: MeshService): Iterable<string> {
  for (const route of service.routes) {
    for (const d of route.destinations) yield d.backend;
    if (route.mirror) yield route.mirror.backend;
  }
  for (const b of service.backends) yield* b.failover?.targets ?? [];
}

/** Whether the policy and intentions let `caller` call a destination (deny wins). */
function mayCall(caller: string, auth: Authorization): boolean {
  const p = auth.policy;
  if (p) {
    const decision = p.allowed.includes(caller)
      ? 'allow'
      : p.denied.includes(caller)
        ? 'deny'
        : p.others;
    if (decision === 'deny') return false;
  }
  const i = auth.intentions;
  if (i) {
    const rule = i.rules.find((r) => r.source === caller || r.source === '*');
    if (!rule) return i.default === 'allow';
    // L7 permissions: some request may be allowed, so the service is reachable.
    if (rule.permissions !== undefined) return true;
    return rule.action !== 'deny';
  }
  return true;
}

const authorized = new WeakMap<Mesh, boolean>();
/** A policy is loaded or some service has intentions: there is something to scope by. */
function hasAuthorization(mesh: Mesh): boolean {
  let has = authorized.get(mesh);
  if (has === undefined) {
    has = mesh.services.some(
      (s) => s.authorization.policy !== undefined || s.authorization.intentions !== undefined,
    );
    authorized.set(mesh, has);
  }
  return has;
}

const indexes = new WeakMap<Mesh, Map<string, MeshService>>();
function serviceIndex(mesh: Mesh): Map<string, MeshService> {
  let index = indexes.get(mesh);
  if (!index) indexes.set(mesh, (index = new Map(mesh.services.map((s) => [s.name, s]))));
  return index;
}

const owners = new WeakMap<Mesh, Map<string, string>>();
/** Backend name → its service. */
function backendOwners(mesh: Mesh): Map<string, string> {
  let map = owners.get(mesh);
  if (!map) {
    map = new Map();
    for (const s of mesh.services) for (const b of s.backends) map.set(b.name, s.name);
    owners.set(mesh, map);
  }
  return map;
}
