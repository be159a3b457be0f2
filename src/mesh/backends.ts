// A service's backends: the whole service and each subset its service-resolver defines, with
// the endpoints that receive traffic and the upstream settings (timeouts, limits, outlier
// detection, load balancing) from the resolver, proxy-defaults and the serve flags.
import type { Instance, Protocol, Service } from '../catalog/model.js';
import { compareStrings } from '../text-order.js';
import { compileFilter } from '../traffic/filter-expression.js';
import type {
  ProxyDefaults,
  ResolverSubset,
  ServiceResolver,
  UpstreamConfig,
  UpstreamSettings,
} from '../traffic/types.js';
import type { ConfigProblem } from '../traffic/provider.js';
import { compareLocalities, localityKey, placed } from './locality.js';
import { backendName } from './names.js';
import type {
  Backend,
  Endpoint,
  LoadBalancing,
  LocalityEndpoints,
  MeshSettings,
  OutlierDetection,
  PlacedLocality,
} from './types.js';

/**
 * passing and warning instances serve. Critical ones are left out instead of being sent as
 * UNHEALTHY: once enough hosts are unhealthy, Envoy's panic threshold (50% by default) makes
 * it balance across all hosts, the unhealthy ones included. (Failover backends do send them,
 * with the panic threshold off: see translate/clusters.ts.)
 */
export function receivesTraffic(instance: Instance): boolean {
  return instance.health !== 'critical';
}

const filters = new WeakMap<ResolverSubset, (i: Instance) => boolean>();

/** Membership of a subset (its Filter); health is judged separately (see serves). */
function subsetFilter(subset: ResolverSubset): (i: Instance) => boolean {
  let filter = filters.get(subset);
  if (!filter) {
    const matches = compileFilter(subset.Filter);
    filter = (i) => matches(i);
    filters.set(subset, filter);
  }
  return filter;
}

/** Whether a member takes traffic: not critical, and passing when the subset says OnlyPassing. */
function serves(i: Instance, subset: ResolverSubset | undefined): boolean {
  return receivesTraffic(i) && (!subset?.OnlyPassing || i.health === 'passing');
}

/**
 * Endpoints grouped by locality, sorted. A failover backend keeps its non-serving members as
 * unhealthy (Envoy counts them when it decides how much load a priority can take); any other
 * backend leaves them out.
 */
function localities(
  members: readonly Instance[],
  subset: ResolverSubset | undefined,
  settings: MeshSettings,
  failover: boolean,
): LocalityEndpoints[] {
  const groups = new Map<string, { locality: PlacedLocality; endpoints: Endpoint[] }>();
  for (const i of [...members].sort((a, b) => compareStrings(a.id, b.id))) {
    const healthy = serves(i, subset);
    if (!healthy && !failover) continue;
    const locality = placed(i, settings);
    const key = localityKey(locality);
    let group = groups.get(key);
    if (!group) groups.set(key, (group = { locality, endpoints: [] }));
    group.endpoints.push({
      id: i.id,
      address: i.address,
      port: i.sidecarPort ?? i.port,
      meshed: i.sidecarPort !== undefined,
      healthy,
    });
  }
  return [...groups.values()].sort((a, b) => compareLocalities(a.locality, b.locality));
}

/** Passive health checking for failover backends nothing else configures: a dead datacenter's
 * instances are ejected before the catalog notices. All may go (the next priority takes over). */
export const FAILOVER_OUTLIER_DETECTION: OutlierDetection = {
  intervalMs: 10_000,
  consecutive5xx: 5,
  maxEjectionPercent: 100,
  baseEjectionTimeMs: 30_000,
};

/**
 * The upstream settings a proxy uses for `service`: the defaults, with what an override for it
 * sets on top. As Consul's UpstreamConfig.MergeInto: each field the override sets replaces the
 * default's as a whole (Limits, PassiveHealthCheck), the rest stay the defaults'.
 */
export function upstreamSettings(
  config: UpstreamConfig | undefined,
  service: string,
): UpstreamSettings | undefined {
  const override = config?.Overrides.find((o) => o.Name === service);
  const defaults = config?.Defaults;
  if (!override || !defaults) return override ?? defaults;
  const set = (v: object | number | undefined) =>
    v !== undefined && v !== 0 && (typeof v !== 'object' || Object.keys(v).length > 0);
  return {
    ...defaults,
    ...(set(override.ConnectTimeoutMs) ? { ConnectTimeoutMs: override.ConnectTimeoutMs } : {}),
    ...(set(override.Limits) ? { Limits: override.Limits } : {}),
    ...(set(override.PassiveHealthCheck)
      ? { PassiveHealthCheck: override.PassiveHealthCheck }
      : {}),
  };
}

function outlierDetection(settings: UpstreamSettings | undefined): OutlierDetection | undefined {
  const p = settings?.PassiveHealthCheck;
  if (!p) return undefined;
  return {
    ...(p.Interval !== undefined ? { intervalMs: p.Interval } : {}),
    ...(p.MaxFailures !== undefined ? { consecutive5xx: p.MaxFailures } : {}),
    ...(p.EnforcingConsecutive5xx !== undefined
      ? { enforcingConsecutive5xx: p.EnforcingConsecutive5xx }
      : {}),
    ...(p.MaxEjectionPercent !== undefined ? { maxEjectionPercent: p.MaxEjectionPercent } : {}),
    ...(p.BaseEjectionTime !== undefined ? { baseEjectionTimeMs: p.BaseEjectionTime } : {}),
  };
}

function loadBalancing(resolver: ServiceResolver | undefined): LoadBalancing {
  const lb = resolver?.LoadBalancer;
  if (!lb) return { policy: 'round_robin' };
  return {
    policy: lb.Policy,
    ...(lb.LeastRequestConfig?.ChoiceCount !== undefined
      ? { choiceCount: lb.LeastRequestConfig.ChoiceCount }
      : {}),
    ...(lb.RingHashConfig?.MinimumRingSize !== undefined
      ? { minimumRingSize: lb.RingHashConfig.MinimumRingSize }
      : {}),
    ...(lb.RingHashConfig?.MaximumRingSize !== undefined
      ? { maximumRingSize: lb.RingHashConfig.MaximumRingSize }
      : {}),
  };
}

/** The settings part of a backend: what a proxy's UpstreamConfig may change. */
export function applyUpstreamSettings(
  backend: Backend,
  settings: UpstreamSettings | undefined,
  resolver: ServiceResolver | undefined,
  fallbackConnectTimeoutMs: number,
): Backend {
  const { limits: _l, outlierDetection: _o, ...rest } = backend;
  const limits = settings?.Limits;
  const outlier =
    outlierDetection(settings) ?? (backend.failover ? FAILOVER_OUTLIER_DETECTION : undefined);
  return {
    ...rest,
    // The resolver's ConnectTimeout is the destination's own word, so it wins (as in Consul).
    connectTimeoutMs:
      resolver?.ConnectTimeout ?? settings?.ConnectTimeoutMs ?? fallbackConnectTimeoutMs,
    ...(limits && Object.keys(limits).length > 0 ? { limits } : {}),
    ...(outlier ? { outlierDetection: outlier } : {}),
  };
}

/** The mesh-wide connect timeout: proxy-defaults Config, else the serve flag. */
export function defaultConnectTimeoutMs(
  proxyDefaults: ProxyDefaults | undefined,
  settings: MeshSettings,
): number {
  return proxyDefaults?.Config.connect_timeout_ms ?? settings.connectTimeoutMs;
}

/**
 * What a resolver fails over to for a subset ("*": any): datacenters of the same service (as
 * priorities of one cluster) and other services or subsets (as further clusters of an
 * aggregate cluster, each with its own mTLS identity), in order.
 */
function failoverOf(
  resolver: ServiceResolver | undefined,
  subset: string | undefined,
): { datacenters: string[]; targets: string[] } | undefined {
  const f =
    (subset !== undefined ? resolver?.Failover[subset] : undefined) ?? resolver?.Failover['*'];
  if (!f || !resolver) return undefined;
  const datacenters = [...f.Datacenters];
  const targets: string[] = [];
  const target = (service: string | undefined, sub: string | undefined): void => {
    const name = backendName(service ?? resolver.Name, sub);
    if (name !== backendName(resolver.Name, subset) && !targets.includes(name)) targets.push(name);
  };
  if (f.Service !== undefined || f.ServiceSubset !== undefined) target(f.Service, f.ServiceSubset);
  for (const t of f.Targets) {
    if (t.Service !== undefined || t.ServiceSubset !== undefined)
      target(t.Service, t.ServiceSubset);
    else if (t.Datacenter !== undefined) datacenters.push(t.Datacenter);
  }
  return { datacenters, targets };
}

/**
 * Failovers that name another service together with datacenters: Consul reads them as that
 * service in those datacenters, which lucid-mesh does not do (the datacenters order the
 * service's own instances; the other service is used in every datacenter). Said, not silent.
 */
function failoverDatacenterProblems(resolver: ServiceResolver, problems: ConfigProblem[]): void {
  const report = (message: string): void => {
    problems.push({ kind: 'service-resolver', name: resolver.Name, message });
  };
  for (const [key, f] of Object.entries(resolver.Failover)) {
    const other = f.Service ?? resolver.Name;
    const named =
      f.ServiceSubset !== undefined ? `subset "${f.ServiceSubset}" of "${other}"` : `"${other}"`;
    if ((f.Service !== undefined || f.ServiceSubset !== undefined) && f.Datacenters.length > 0) {
      report(
        `Failover["${key}"]: Datacenters with Service/ServiceSubset is not supported as Consul reads it (that target in those datacenters): the datacenters order "${resolver.Name}"'s own instances and ${named} is used in every datacenter`,
      );
    }
    f.Targets.forEach((t, i) => {
      if (t.Datacenter === undefined || (t.Service === undefined && t.ServiceSubset === undefined))
        return;
      const target = t.Service ?? resolver.Name;
      const what =
        t.ServiceSubset !== undefined
          ? `subset "${t.ServiceSubset}" of "${target}"`
          : `"${target}"`;
      report(
        `Failover["${key}"].Targets[${i}]: Datacenter "${t.Datacenter}" with Service/ServiceSubset is not supported: failing over to ${what} in every datacenter`,
      );
    });
  }
}

export function serviceBackends(
  service: Service,
  protocol: Protocol,
  resolver: ServiceResolver | undefined,
  proxyDefaults: ProxyDefaults | undefined,
  settings: MeshSettings,
  problems: ConfigProblem[] = [],
): Backend[] {
  // Redirect{Datacenter}: every request for the service goes to its instances there.
  const dc = resolver?.Redirect?.Datacenter;
  const instances =
    dc === undefined
      ? service.instances
      : service.instances.filter((i) => (i.datacenter ?? settings.datacenter) === dc);
  const present = new Set(instances.map((i) => i.datacenter ?? settings.datacenter));
  const redirect = resolver?.Redirect;
  const elsewhere = redirect?.Service !== undefined || redirect?.ServiceSubset !== undefined;
  if (dc !== undefined && elsewhere) {
    // Routes follow the redirect to the other service's backend (mesh/routes.ts), which has
    // no datacenter of its own to keep to.
    const to = `${redirect.ServiceSubset !== undefined ? `subset "${redirect.ServiceSubset}" of ` : ''}"${redirect.Service ?? service.name}"`;
    problems.push({
      kind: 'service-resolver',
      name: service.name,
      message: `Redirect: Datacenter "${dc}" with Service/ServiceSubset is not supported: requests go to ${to} in every datacenter`,
    });
  } else if (dc !== undefined && present.size === 0 && service.instances.length > 0) {
    problems.push({
      kind: 'service-resolver',
      name: service.name,
      message: `Redirect: datacenter "${dc}" has no instances of "${service.name}"; every request for it fails (503)`,
    });
  }
  const base = (name: string | undefined): Backend => {
    const subset = name !== undefined ? resolver!.Subsets[name] : undefined;
    const members = subset ? instances.filter(subsetFilter(subset)) : instances;
    const failoverTo = failoverOf(resolver, name);
    const datacenters = failoverTo?.datacenters;
    for (const d of datacenters ?? []) {
      const message = `Failover: datacenter "${d}" has no instances of "${service.name}"; the others keep working`;
      // Once, not once per subset backend that fails over there.
      if (!present.has(d) && !problems.some((p) => p.message === message)) {
        problems.push({ kind: 'service-resolver', name: service.name, message });
      }
    }
    // Endpoints depend on where the caller is when they span localities, when any is outside
    // the mesh's own datacenter (a caller there reaches it directly, one elsewhere perhaps
    // through a gateway), or when the resolver says where to fail over.
    const spread = new Set(members.map((i) => localityKey(placed(i, settings)))).size > 1;
    const elsewhere = members.some(
      (i) => (i.datacenter ?? settings.datacenter) !== settings.datacenter,
    );
    const failover = spread || elsewhere || datacenters !== undefined;
    const threshold = resolver?.FailoverThreshold ?? settings.failoverThresholdPercent;
    return applyUpstreamSettings(
      {
        name: backendName(service.name, name),
        service: service.name,
        ...(name !== undefined ? { subset: name } : {}),
        protocol,
        connectTimeoutMs: 0,
        loadBalancing: loadBalancing(resolver),
        localities: localities(members, subset, settings, failover),
        ...(failover
          ? {
              failover: {
                ...(datacenters !== undefined ? { datacenters } : {}),
                ...(failoverTo && failoverTo.targets.length > 0
                  ? { targets: failoverTo.targets }
                  : {}),
                ...(threshold !== undefined ? { thresholdPercent: threshold } : {}),
              },
            }
          : {}),
      },
      upstreamSettings(proxyDefaults?.UpstreamConfig, service.name),
      resolver,
      defaultConnectTimeoutMs(proxyDefaults, settings),
    );
  };
  if (resolver) failoverDatacenterProblems(resolver, problems);
  const backends = [base(undefined)];
  for (const name of resolver ? Object.keys(resolver.Subsets).sort() : [])
    backends.push(base(name));
  return backends;
}
