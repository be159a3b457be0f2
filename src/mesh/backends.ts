// A service's backends: the whole service and each subset its service-resolver defines, with
// the endpoints that receive traffic and the upstream settings (timeouts, limits, outlier
// detection, load balancing) from the resolver, proxy-defaults and the serve flags.
import { compareStrings, type Instance, type Protocol, type Service } from '../catalog/model.js';
import { compileFilter } from '../traffic/filter-expression.js';
import type {
  ProxyDefaults,
  ResolverSubset,
  ServiceResolver,
  UpstreamConfig,
  UpstreamSettings,
} from '../traffic/types.js';
import { backendName } from './names.js';
import type {
  Backend,
  LoadBalancing,
  LocalityEndpoints,
  MeshSettings,
  OutlierDetection,
} from './types.js';

/**
 * passing and warning instances serve. Critical ones are left out instead of being sent as
 * UNHEALTHY: once enough hosts are unhealthy, Envoy's panic threshold (50% by default) makes
 * it balance across all hosts, the unhealthy ones included.
 */
export function receivesTraffic(instance: Instance): boolean {
  return instance.health !== 'critical';
}

const filters = new WeakMap<ResolverSubset, (i: Instance) => boolean>();

function subsetFilter(subset: ResolverSubset): (i: Instance) => boolean {
  let filter = filters.get(subset);
  if (!filter) {
    const matches = compileFilter(subset.Filter);
    filter = (i) =>
      receivesTraffic(i) && (!subset.OnlyPassing || i.health === 'passing') && matches(i);
    filters.set(subset, filter);
  }
  return filter;
}

function localities(instances: readonly Instance[]): LocalityEndpoints[] {
  const endpoints = [...instances]
    .sort((a, b) => compareStrings(a.id, b.id))
    .map((i) => ({
      id: i.id,
      address: i.address,
      port: i.sidecarPort ?? i.port,
      meshed: i.sidecarPort !== undefined,
    }));
  // One locality until instances carry theirs (the cross-datacenter work).
  return endpoints.length === 0 ? [] : [{ locality: {}, endpoints }];
}

/** The upstream settings a proxy uses for `service`: an override for it, else the defaults. */
export function upstreamSettings(
  config: UpstreamConfig | undefined,
  service: string,
): UpstreamSettings | undefined {
  return config?.Overrides.find((o) => o.Name === service) ?? config?.Defaults;
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
  const outlier = outlierDetection(settings);
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

export function serviceBackends(
  service: Service,
  protocol: Protocol,
  resolver: ServiceResolver | undefined,
  proxyDefaults: ProxyDefaults | undefined,
  settings: MeshSettings,
): Backend[] {
  const serving = service.instances.filter(receivesTraffic);
  const base = (subset: string | undefined, instances: readonly Instance[]): Backend =>
    applyUpstreamSettings(
      {
        name: backendName(service.name, subset),
        service: service.name,
        ...(subset !== undefined ? { subset } : {}),
        protocol,
        connectTimeoutMs: 0,
        loadBalancing: loadBalancing(resolver),
        localities: localities(instances),
      },
      upstreamSettings(proxyDefaults?.UpstreamConfig, service.name),
      resolver,
      defaultConnectTimeoutMs(proxyDefaults, settings),
    );
  const backends = [base(undefined, serving)];
  const subsets = resolver ? Object.keys(resolver.Subsets).sort() : [];
  for (const name of subsets) {
    backends.push(base(name, service.instances.filter(subsetFilter(resolver!.Subsets[name]!))));
  }
  return backends;
}
