// Consul's discovery chain for one service: service-router → service-splitter →
// service-resolver, compiled into the routes of the service's outbound virtual host.
// A destination that names a missing service or subset falls back to the service's default
// destination and is reported; it never breaks another route or service.
import type { Protocol } from '../catalog/model.js';
import type { ConfigProblem } from '../traffic/provider.js';
import type {
  HeaderEdits,
  HttpMatch,
  RouteDestination,
  ServiceResolver,
  ServiceRoute,
} from '../traffic/types.js';
import type { TrackedReader } from './inputs.js';
import { backendName } from './names.js';
import type { RetryPolicy, Route, RouteMatch, WeightedDestination } from './types.js';

export const TOTAL_WEIGHT = 10_000;
const MAX_CHAIN_DEPTH = 8;

/** Where a problem was found: the entry and the field path inside it. */
interface Origin {
  readonly kind: string;
  readonly name: string;
  readonly field: string;
}

interface Target {
  readonly backend: string;
  /** Out of TOTAL_WEIGHT. */
  readonly weight: number;
  readonly requestHeaders?: HeaderEdits;
  readonly responseHeaders?: HeaderEdits;
}

export const isHttpFamily = (p: Protocol): boolean => p !== 'tcp';

export class ChainCompiler {
  readonly problems: ConfigProblem[] = [];

  constructor(
    private readonly reader: TrackedReader,
    /** Protocol of a service as the mesh settles it (service-defaults, proxy-defaults, catalog). */
    private readonly protocolOf: (service: string) => Protocol | undefined,
  ) {}

  private problem(origin: Origin, message: string): void {
    const at = origin.field ? `${origin.field}: ` : '';
    const p = { kind: origin.kind, name: origin.name, message: `${at}${message}` };
    // A splitter or resolver is reached once per route that leads to it: say it once.
    const same = (q: ConfigProblem) =>
      q.kind === p.kind && q.name === p.name && q.message === p.message;
    if (!this.problems.some(same)) this.problems.push(p);
  }

  /** The routes of `service`'s virtual host, catch-all last. */
  routes(service: string): Route[] {
    const router = this.reader.get('router', service);
    const resolver = this.reader.get('resolver', service);
    const routes: Route[] = [];
    router?.Routes.forEach((r, i) => {
      const origin = { kind: 'service-router', name: service, field: `Routes[${i}]` };
      routes.push(this.route(service, r, origin));
    });
    const last = routes[routes.length - 1];
    if (!last || !isCatchAll(last.match)) {
      routes.push(this.defaultRoute(service, resolver));
    }
    return routes;
  }

  private defaultRoute(service: string, resolver: ServiceResolver | undefined): Route {
    const origin = { kind: 'service-splitter', name: service, field: '' };
    return {
      match: CATCH_ALL,
      destinations: this.defaultTargets(service, origin, new Set()).map(destination),
      ...this.timeouts(undefined, resolver),
      hashPolicies: hashPolicies(resolver),
    };
  }

  private route(service: string, r: ServiceRoute, origin: Origin): Route {
    const d: RouteDestination | undefined = r.Destination;
    const at = { ...origin, field: `${origin.field}.Destination` };
    const target = d?.Service ?? service;
    let targets =
      d?.ServiceSubset !== undefined || target !== service
        ? this.targetsOf(target, d?.ServiceSubset, at, new Set())
        : this.defaultTargets(service, at, new Set());
    if (!targets) targets = this.defaultTargets(service, at, new Set());
    const targetService = d?.Service ?? service;
    const resolver = this.reader.get('resolver', targetService);
    const mirror = d?.Mirror
      ? this.mirror(d.Mirror, { ...at, field: `${at.field}.Mirror` })
      : undefined;
    return {
      match: routeMatch(r.Match?.HTTP),
      destinations: targets.map(destination),
      ...this.timeouts(d, resolver),
      ...(d ? retryPolicy(d) : {}),
      ...(d?.PrefixRewrite !== undefined ? { prefixRewrite: d.PrefixRewrite } : {}),
      ...(d?.RequestHeaders ? { requestHeaders: d.RequestHeaders } : {}),
      ...(d?.ResponseHeaders ? { responseHeaders: d.ResponseHeaders } : {}),
      ...(d?.Fault ? { fault: d.Fault } : {}),
      ...(mirror ? { mirror } : {}),
      hashPolicies: hashPolicies(resolver),
    };
  }

  private timeouts(
    d: RouteDestination | undefined,
    resolver: ServiceResolver | undefined,
  ): { timeoutMs?: number; idleTimeoutMs?: number } {
    const timeoutMs = d?.RequestTimeout ?? resolver?.RequestTimeout;
    return {
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      ...(d?.IdleTimeout !== undefined ? { idleTimeoutMs: d.IdleTimeout } : {}),
    };
  }

  private mirror(
    m: NonNullable<RouteDestination['Mirror']>,
    origin: Origin,
  ): Route['mirror'] | undefined {
    const backend = this.resolve(m.Service, m.ServiceSubset, origin, new Set());
    return backend === undefined ? undefined : { backend, percent: m.Percent };
  }

  /**
   * Targets of a destination without a subset: the service's splitter if it has one, else
   * its resolver's default. Never fails for a service that exists.
   */
  private defaultTargets(service: string, origin: Origin, seen: Set<string>): Target[] {
    return (
      this.targetsOf(service, undefined, origin, seen) ?? [
        { backend: backendName(service), weight: TOTAL_WEIGHT },
      ]
    );
  }

  /** Targets of (service, subset); undefined when they cannot be resolved (reported). */
  private targetsOf(
    service: string,
    subset: string | undefined,
    origin: Origin,
    seen: Set<string>,
  ): Target[] | undefined {
    const splitter = subset === undefined ? this.reader.get('splitter', service) : undefined;
    if (splitter && seen.has(service)) {
      // Consul refuses a circular chain; here the split goes to the service itself instead.
      this.problem(
        origin,
        `splitter loop through ${[...seen, service].join(' → ')}; this part goes to ${service}'s default destination`,
      );
    } else if (splitter && seen.size < MAX_CHAIN_DEPTH) {
      const protocol = this.protocolOf(service);
      if (protocol !== undefined && isHttpFamily(protocol)) return this.split(service, seen);
    }
    const protocol = this.protocolOf(service);
    if (service !== origin.name && protocol !== undefined && !isHttpFamily(protocol)) {
      // Consul refuses an L7 route or split to an L4 service; Envoy sends it HTTP regardless.
      this.problem(
        origin,
        `service "${service}" is ${protocol}; requests routed to it are sent as HTTP all the same`,
      );
    }
    const backend = this.resolve(service, subset, origin, new Set());
    return backend === undefined ? undefined : [{ backend, weight: TOTAL_WEIGHT }];
  }

  private split(service: string, seen: Set<string>): Target[] {
    const splitter = this.reader.get('splitter', service)!;
    const inner = new Set(seen).add(service);
    const targets: Target[] = [];
    splitter.Splits.forEach((s, i) => {
      const weight = Math.round(s.Weight * 100);
      if (weight === 0) return;
      const origin = { kind: 'service-splitter', name: service, field: `Splits[${i}]` };
      const target = s.Service ?? service;
      // A split to the splitter's own service (no subset) means its resolver, not itself again.
      const sub =
        target === service && s.ServiceSubset === undefined
          ? this.resolveOrDefault(service, undefined, origin)
          : (this.targetsOf(target, s.ServiceSubset, origin, inner) ?? [
              { backend: this.resolveOrDefault(service, undefined, origin), weight: TOTAL_WEIGHT },
            ]);
      const parts = typeof sub === 'string' ? [{ backend: sub, weight: TOTAL_WEIGHT }] : sub;
      for (const p of parts) {
        targets.push({
          backend: p.backend,
          weight: (weight * p.weight) / TOTAL_WEIGHT,
          ...(s.RequestHeaders ? { requestHeaders: s.RequestHeaders } : {}),
          ...(s.ResponseHeaders ? { responseHeaders: s.ResponseHeaders } : {}),
        });
      }
    });
    return normalizeWeights(targets);
  }

  private resolveOrDefault(service: string, subset: string | undefined, origin: Origin): string {
    return this.resolve(service, subset, origin, new Set()) ?? backendName(service);
  }

  /** The backend a (service, subset) resolves to, following redirects; undefined if missing. */
  private resolve(
    service: string,
    subset: string | undefined,
    origin: Origin,
    seen: Set<string>,
  ): string | undefined {
    if (!this.reader.get('service', service)) {
      this.problem(
        origin,
        `service "${service}" is not in the catalog; using the default destination`,
      );
      return undefined;
    }
    const resolver = this.reader.get('resolver', service);
    const redirect = resolver?.Redirect;
    if (redirect && (redirect.Service !== undefined || redirect.ServiceSubset !== undefined)) {
      if (seen.has(service) || seen.size >= MAX_CHAIN_DEPTH) {
        this.problem(
          { kind: 'service-resolver', name: service, field: 'Redirect' },
          `redirect loop through ${[...seen, service].join(' → ')}; not followed`,
        );
        return backendName(service);
      }
      const at = { kind: 'service-resolver', name: service, field: 'Redirect' };
      return this.resolve(
        redirect.Service ?? service,
        redirect.ServiceSubset,
        at,
        new Set(seen).add(service),
      );
    }
    const wanted = subset ?? resolver?.DefaultSubset;
    if (wanted === undefined) return backendName(service);
    if (resolver && Object.hasOwn(resolver.Subsets, wanted)) return backendName(service, wanted);
    if (subset === undefined) {
      this.problem(
        { kind: 'service-resolver', name: service, field: 'DefaultSubset' },
        `subset "${wanted}" is not defined in Subsets; using every instance`,
      );
      return backendName(service);
    }
    this.problem(
      origin,
      `subset "${wanted}" is not defined by service-resolver/${service}; using the default destination`,
    );
    return undefined;
  }
}

const CATCH_ALL: RouteMatch = { methods: [], headers: [], queryParams: [] };

function isCatchAll(m: RouteMatch): boolean {
  return (
    m.path === undefined &&
    m.methods.length === 0 &&
    m.headers.length === 0 &&
    m.queryParams.length === 0
  );
}

function routeMatch(http: HttpMatch | undefined): RouteMatch {
  if (!http) return CATCH_ALL;
  const path =
    http.PathExact !== undefined
      ? { kind: 'exact' as const, value: http.PathExact }
      : http.PathPrefix !== undefined
        ? { kind: 'prefix' as const, value: http.PathPrefix }
        : http.PathRegex !== undefined
          ? { kind: 'regex' as const, value: http.PathRegex }
          : undefined;
  return {
    ...(path ? { path: http.CaseInsensitive ? { ...path, caseInsensitive: true } : path } : {}),
    methods: http.Methods,
    headers: http.Header,
    queryParams: http.QueryParam,
  };
}

function destination(t: Target): WeightedDestination {
  return {
    backend: t.backend,
    weight: t.weight,
    ...(t.requestHeaders ? { requestHeaders: t.requestHeaders } : {}),
    ...(t.responseHeaders ? { responseHeaders: t.responseHeaders } : {}),
  };
}

/**
 * Same backend with the same header edits merged, weights made integers that sum to
 * TOTAL_WEIGHT exactly (rounding remainders go to the largest share).
 */
function normalizeWeights(targets: Target[]): Target[] {
  const merged = new Map<string, Target>();
  for (const t of targets) {
    const key = JSON.stringify([t.backend, t.requestHeaders ?? null, t.responseHeaders ?? null]);
    const prev = merged.get(key);
    merged.set(key, prev ? { ...prev, weight: prev.weight + t.weight } : t);
  }
  const out = [...merged.values()].map((t) => ({ ...t, weight: Math.floor(t.weight) }));
  const sum = out.reduce((a, t) => a + t.weight, 0);
  if (out.length > 0 && sum !== TOTAL_WEIGHT) {
    const largest = out.reduce((a, t) => (t.weight > a.weight ? t : a), out[0]!);
    largest.weight += TOTAL_WEIGHT - sum;
  }
  return out.filter((t) => t.weight > 0);
}

/** Consul's RetryOn names are Envoy's retry_on conditions. */
function retryPolicy(d: RouteDestination): { retry?: RetryPolicy } {
  const on = new Set(d.RetryOn);
  if (d.RetryOnConnectFailure) on.add('connect-failure');
  if (d.RetryOnStatusCodes.length > 0) on.add('retriable-status-codes');
  const retries = d.NumRetries;
  if (on.size === 0 && !(retries !== undefined && retries > 0)) return {};
  // Consul's default when only NumRetries is given: retry what is safe to retry.
  if (on.size === 0)
    for (const c of [
      'connect-failure',
      'refused-stream',
      'unavailable',
      'cancelled',
      'retriable-status-codes',
    ])
      on.add(c);
  return {
    retry: {
      retryOn: [...on].sort(),
      // As Consul: NumRetries 0 is not set, so Envoy's default (1 retry) applies.
      ...(retries !== undefined && retries > 0 ? { numRetries: retries } : {}),
      retriableStatusCodes: [...d.RetryOnStatusCodes].sort((a, b) => a - b),
      ...(d.RetryBackoff
        ? {
            backoff: {
              baseIntervalMs: d.RetryBackoff.BaseInterval,
              ...(d.RetryBackoff.MaxInterval !== undefined
                ? { maxIntervalMs: d.RetryBackoff.MaxInterval }
                : {}),
            },
          }
        : {}),
      otherHosts: d.RetryOnOtherHosts === true,
    },
  };
}

function hashPolicies(resolver: ServiceResolver | undefined): Route['hashPolicies'] {
  const lb = resolver?.LoadBalancer;
  if (!lb || (lb.Policy !== 'ring_hash' && lb.Policy !== 'maglev')) return [];
  return lb.HashPolicies;
}
