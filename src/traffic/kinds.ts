// The six config-entry kinds lucid-mesh implements, field by field as Consul 1.16+ prints them.
// Per object: implemented fields (types.ts), Consul bookkeeping that is dropped, and Consul
// fields lucid-mesh does not implement (reported by parseEntry as unsupported when in use).
// Rules Consul itself enforces are enforced here too, so an entry Consul accepts is accepted
// and an entry it rejects is rejected with a path; the lucid-mesh extensions (RetryBackoff,
// RetryOnOtherHosts, Fault, Mirror, proxy-defaults UpstreamConfig) are strict objects.
import { z } from 'zod';
import { MAX_TIMEOUT_MS } from '../catalog/schema.js';
import { LOCAL_APP_IDLE_TIMEOUT_KEY } from './local-app.js';
import {
  NAME,
  PATH_KINDS,
  atMostOnePath,
  bool,
  brief,
  consulObject,
  duration,
  durationUnlessZero,
  positiveDuration,
  uint32,
  UINT32_MAX,
  filter,
  unlessZero,
  headerEdits,
  headerMatch,
  int,
  list,
  methods,
  nonEmpty,
  oneOf,
  path,
  percent,
  protocol,
  queryParamMatch,
  record,
  regex,
  routeTimeout,
  serviceName,
  setFields,
  str,
  subsetName,
  UNSUPPORTED,
} from './fields.js';
import {
  accessLogs,
  accessLogsConfigFields,
  accessLogsFromConfig,
  checkAccessLogsConfig,
  checkTracingConfig,
  tracing,
  tracingConfigFields,
  tracingFromConfig,
} from './observability.js';
import { LB_POLICIES, type EntryKind } from './types.js';

/** Envoy's bound on ring_hash_lb_config's minimum and maximum ring sizes. */
const MAX_RING_SIZE = 8_388_608;

const TENANCY = ['Namespace', 'Partition'];
/** Intention source fields that name callers outside this mesh (IntentionSource.Elsewhere). */
const ELSEWHERE_FIELDS: readonly string[] = [...TENANCY, 'Peer', 'SamenessGroup'];
const BOOKKEEPING = ['CreateIndex', 'ModifyIndex', 'Hash', 'Meta', 'EnterpriseMeta'];

function issue(ctx: z.RefinementCtx, path: PropertyKey[], message: string): void {
  ctx.addIssue({ code: 'custom', path, message });
}

/** Consul's retry conditions (Envoy's retry_on / retry_grpc_on names). */
const RETRY_ON = [
  '5xx',
  'gateway-error',
  'reset',
  'connect-failure',
  'envoy-ratelimited',
  'retriable-4xx',
  'refused-stream',
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
] as const;

// ---- service-defaults / proxy-defaults -------------------------------------------------------

export const MESH_GATEWAY_MODES = ['local', 'remote', 'none'] as const;

/** A route with no condition at all matches every request. */
export function isCatchAll(route: { readonly Match?: { readonly HTTP?: object } }): boolean {
  const http = route.Match?.HTTP as Record<string, unknown> | undefined;
  if (!http) return true;
  const lists = ['Methods', 'Header', 'QueryParam'].every(
    (k) => !(http[k] as unknown[] | undefined)?.length,
  );
  return lists && setFields(http, PATH_KINDS).length === 0;
}

/**
 * Every kind's schema, built on first use: zod schemas are objects built when their module runs,
 * and a control plane without a traffic file never parses an entry (issue 16, idle RSS).
 */
function buildEntrySchemas(): Readonly<Record<EntryKind, z.ZodType>> {
  const limits = consulObject(
    {
      MaxConnections: uint32.optional(),
      MaxPendingRequests: uint32.optional(),
      MaxConcurrentRequests: uint32.optional(),
    },
    'limits ({ MaxConnections, MaxPendingRequests, MaxConcurrentRequests })',
  );

  const passiveHealthCheck = consulObject(
    {
      Interval: durationUnlessZero.optional(),
      MaxFailures: uint32.optional(),
      EnforcingConsecutive5xx: int(0, 100).optional(),
      MaxEjectionPercent: int(0, 100).optional(),
      BaseEjectionTime: durationUnlessZero.optional(),
    },
    'a passive health check',
  );

  const upstreamSettings = {
    ConnectTimeoutMs: int(0).transform(unlessZero).optional(),
    Limits: limits.optional(),
    PassiveHealthCheck: passiveHealthCheck.optional(),
  };
  const UPSTREAM_UNSUPPORTED = [
    'Protocol',
    'EnvoyListenerJSON',
    'EnvoyClusterJSON',
    'MeshGateway',
    'BalanceOutboundConnections',
  ];

  /** Consul's MeshGateway: how a proxy reaches other datacenters ("" = not set). */
  const meshGateway = consulObject(
    { Mode: z.preprocess((v) => (v === '' ? undefined : v), oneOf(MESH_GATEWAY_MODES).optional()) },
    'a mesh gateway setting ({ Mode })',
  )
    .optional()
    // Consul prints `"MeshGateway": {}` on every entry: no mode is no setting.
    .transform((v) => (v?.Mode === undefined ? undefined : v));

  const upstreamConfig = consulObject(
    {
      Defaults: consulObject(upstreamSettings, 'upstream defaults', {
        unsupported: UPSTREAM_UNSUPPORTED,
      }).optional(),
      Overrides: list(
        consulObject({ Name: serviceName, ...upstreamSettings }, 'an upstream override', {
          unsupported: [...UPSTREAM_UNSUPPORTED, ...TENANCY, 'Peer'],
        }),
        'upstream overrides',
      )
        .superRefine((overrides, ctx) => {
          overrides.forEach((o, i) => {
            const first = overrides.findIndex((x) => x.Name === o.Name);
            if (first !== i)
              issue(
                ctx,
                [i, 'Name'],
                `duplicate upstream ${brief(o.Name)} (also Overrides[${first}])`,
              );
          });
        })
        .default([]),
    },
    'an upstream config ({ Defaults, Overrides })',
  );

  /** A config entry: Kind, Name, Consul's bookkeeping, tenancy (default only) and its own fields. */
  function entry<K extends EntryKind, T extends z.core.$ZodLooseShape>(
    kind: K,
    shape: T,
    fields: { readonly name?: z.ZodType<string>; readonly unsupported?: readonly string[] } = {},
  ) {
    return consulObject(
      { Kind: z.literal(kind), Name: fields.name ?? serviceName, ...shape },
      `a ${kind} entry`,
      {
        drop: BOOKKEEPING,
        unsupported: [...TENANCY, ...(fields.unsupported ?? [])],
      },
    );
  }

  /** `{ Enabled: false, Type: "", ... }`: an object whose every value is Go's zero value. */
  const isZeroObject = (v: unknown): boolean =>
    typeof v === 'object' &&
    v !== null &&
    !Array.isArray(v) &&
    Object.values(v).every((x) => x === false || x === '' || x === null || x === 0);

  const proxyDefaults = entry(
    'proxy-defaults',
    {
      // Consul's Config is opaque: read protocol and connect_timeout_ms, report any other key.
      Config: consulObject(
        {
          protocol: protocol.optional(),
          connect_timeout_ms: z
            .preprocess((v) => (typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v), int(0))
            .transform(unlessZero)
            .optional(),
          // Not Consul's local_idle_timeout_ms (a route's stream idle timeout): this closes the
          // sidecar's idle connections to its app before the app does (docs/local-app.md).
          [LOCAL_APP_IDLE_TIMEOUT_KEY]: z
            .preprocess(
              (v) => (typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v),
              int(0, MAX_TIMEOUT_MS),
            )
            .optional(),
          // Tracing for Consul users, who cannot write the top-level Tracing field.
          ...tracingConfigFields,
          // AccessLogs Type otlp for Consul users, whose AccessLogs.Type cannot say it.
          ...accessLogsConfigFields,
        },
        'a mapping (Consul proxy Config)',
        { unsupported: 'rest' },
      ).default({}),
      UpstreamConfig: upstreamConfig.optional(),
      MeshGateway: meshGateway,
      Tracing: tracing.optional(),
      // Consul prints its zero AccessLogs on every proxy-defaults entry: no setting.
      AccessLogs: z.preprocess((v) => (isZeroObject(v) ? undefined : v), accessLogs.optional()),
    },
    {
      name: z.literal('global', {
        error: (i) =>
          `expected "global" (there is one proxy-defaults entry, named global), got ${brief(i.input)}`,
      }),
      unsupported: [
        'Mode',
        'TransparentProxy',
        'MutualTLSMode',
        'Expose',
        'EnvoyExtensions',
        'FailoverPolicy',
        'PrioritizeByLocality',
      ],
    },
  )
    .superRefine(checkTracingConfig)
    .superRefine(checkAccessLogsConfig)
    .transform((e) => accessLogsFromConfig(tracingFromConfig(e)));

  const serviceDefaults = entry(
    'service-defaults',
    {
      // Consul prints `"Protocol": ""` for an entry written without one: that is no protocol.
      Protocol: z.preprocess((v) => (v === '' ? undefined : v), protocol.optional()),
      UpstreamConfig: upstreamConfig.optional(),
      MeshGateway: meshGateway,
      AccessLogs: accessLogs.optional(),
    },
    {
      unsupported: [
        'Mode',
        'TransparentProxy',
        'MutualTLSMode',
        'Expose',
        'ExternalSNI',
        'Destination',
        'MaxInboundConnections',
        'LocalConnectTimeoutMs',
        'LocalRequestTimeoutMs',
        'BalanceInboundConnections',
        'RateLimits',
        'EnvoyExtensions',
      ],
    },
  );

  // ---- service-router ---------------------------------------------------------------------------

  const httpMatch = consulObject(
    {
      PathExact: path.optional(),
      PathPrefix: path.optional(),
      PathRegex: regex.optional(),
      Methods: methods,
      Header: list(headerMatch, 'header matches').default([]),
      QueryParam: list(queryParamMatch, 'query parameter matches').default([]),
      CaseInsensitive: bool.optional(),
    },
    'an HTTP match',
  ).superRefine(atMostOnePath);

  const headerEditsOpt = headerEdits.optional();

  const destination = consulObject(
    {
      Service: serviceName.optional(),
      ServiceSubset: subsetName.optional(),
      // The upstream's path starts with it: without a leading "/" every request is invalid.
      PrefixRewrite: path.optional(),
      RequestTimeout: routeTimeout.optional(),
      IdleTimeout: routeTimeout.optional(),
      NumRetries: uint32.optional(),
      RetryOnConnectFailure: bool.default(false),
      RetryOn: list(oneOf(RETRY_ON), 'retry conditions').default([]),
      RetryOnStatusCodes: list(int(100, 599), 'HTTP status codes').default([]),
      RequestHeaders: headerEditsOpt,
      ResponseHeaders: headerEditsOpt,
      // lucid-mesh extensions:
      RetryBackoff: consulObject(
        { BaseInterval: duration, MaxInterval: duration.optional() },
        'a retry backoff ({ BaseInterval, MaxInterval })',
      )
        .superRefine((b, ctx) => {
          if (b.BaseInterval <= 0)
            issue(ctx, ['BaseInterval'], `expected a duration > 0, got ${b.BaseInterval}ms`);
          if (b.MaxInterval !== undefined && b.MaxInterval < b.BaseInterval) {
            issue(
              ctx,
              ['MaxInterval'],
              `expected at least BaseInterval (${b.BaseInterval}ms), got ${b.MaxInterval}ms`,
            );
          }
        })
        .optional(),
      RetryOnOtherHosts: bool.optional(),
      Fault: consulObject(
        {
          Delay: consulObject(
            { Duration: positiveDuration, Percent: percent.default(100) },
            'a delay ({ Duration, Percent })',
          ).optional(),
          Abort: consulObject(
            { HttpStatus: int(200, 599), Percent: percent.default(100) },
            'an abort ({ HttpStatus, Percent })',
          ).optional(),
        },
        'a fault ({ Delay, Abort })',
      )
        .superRefine((f, ctx) => {
          if (!f.Delay && !f.Abort) issue(ctx, [], 'expected Delay and/or Abort, got neither');
        })
        .optional(),
      Mirror: consulObject(
        {
          Service: serviceName,
          ServiceSubset: subsetName.optional(),
          Percent: percent.default(100),
        },
        'a mirror ({ Service, ServiceSubset, Percent })',
      ).optional(),
    },
    'a route destination',
    { unsupported: TENANCY },
  );

  const route = consulObject(
    {
      Match: consulObject({ HTTP: httpMatch.optional() }, 'a route match ({ HTTP })').optional(),
      Destination: destination.optional(),
    },
    'a route ({ Match, Destination })',
  ).superRefine((r, ctx) => {
    const http = r.Match?.HTTP;
    if (r.Destination?.PrefixRewrite !== undefined && !http?.PathExact && !http?.PathPrefix) {
      issue(
        ctx,
        ['Destination', 'PrefixRewrite'],
        'expected only with Match.HTTP.PathExact or PathPrefix',
      );
    }
  });

  const serviceRouter = entry('service-router', {
    Routes: list(route, 'routes').default([]),
  }).superRefine((router, ctx) => {
    // Routes match in order: anything after a catch-all would never be reached.
    const all = router.Routes.findIndex((r) => isCatchAll(r));
    if (all >= 0 && all < router.Routes.length - 1) {
      issue(
        ctx,
        ['Routes', all],
        `a catch-all route (no Match) must be last: Routes[${all + 1}] after it would never match`,
      );
    }
  });

  // ---- service-splitter -------------------------------------------------------------------------

  const split = consulObject(
    {
      Weight: percent,
      Service: serviceName.optional(),
      ServiceSubset: subsetName.optional(),
      RequestHeaders: headerEditsOpt,
      ResponseHeaders: headerEditsOpt,
    },
    'a split ({ Weight, Service, ServiceSubset, ... })',
    { unsupported: TENANCY },
  );

  const serviceSplitter = entry('service-splitter', {
    Splits: list(split, 'splits'),
  }).superRefine((s, ctx) => {
    // As Consul: each weight counts with two decimals (33.333 is 33.33), and those sum to 100.
    const scaled = s.Splits.reduce((total, x) => total + Math.round(x.Weight * 100), 0);
    if (scaled !== 10_000) {
      const sum = s.Splits.reduce((total, x) => total + x.Weight, 0);
      const counted = scaled / 100 !== sum ? ` (${scaled / 100} with two decimals each)` : '';
      issue(
        ctx,
        ['Splits'],
        `expected weights summing to 100, got ${Math.round(sum * 1000) / 1000}${counted}`,
      );
    }
  });

  // ---- service-resolver -------------------------------------------------------------------------

  const hashPolicy = consulObject(
    {
      Field: oneOf(['header', 'cookie', 'query_parameter']).optional(),
      FieldValue: nonEmpty('a header, cookie or query parameter name').optional(),
      CookieConfig: consulObject(
        { Session: bool.default(false), TTL: duration.optional(), Path: str('a path').optional() },
        'a cookie config ({ Session, TTL, Path })',
      ).optional(),
      SourceIP: bool.default(false),
      Terminal: bool.default(false),
    },
    'a hash policy',
  ).superRefine((h, ctx) => {
    if (h.Field && h.SourceIP)
      issue(ctx, ['SourceIP'], 'expected either Field or SourceIP, got both');
    if (!h.Field && !h.SourceIP)
      issue(ctx, [], 'expected Field (with FieldValue) or SourceIP, got neither');
    if (h.Field && !h.FieldValue)
      issue(ctx, ['FieldValue'], `expected a ${h.Field} name, got nothing`);
    if (!h.Field && h.FieldValue) issue(ctx, ['FieldValue'], 'expected only with Field');
    if (h.CookieConfig && h.Field !== 'cookie')
      issue(ctx, ['CookieConfig'], 'expected only with Field: cookie');
    if (h.CookieConfig?.Session && h.CookieConfig.TTL !== undefined) {
      issue(ctx, ['CookieConfig', 'TTL'], 'expected either Session or TTL, got both');
    }
  });

  const loadBalancer = consulObject(
    {
      // Consul prints "" for the default policy.
      Policy: z
        .preprocess((v) => (v === '' ? undefined : v), oneOf(LB_POLICIES).optional())
        .transform((p) => p ?? 'round_robin'),
      LeastRequestConfig: consulObject(
        { ChoiceCount: int(2, UINT32_MAX).optional() },
        'a least-request config',
      ).optional(),
      RingHashConfig: consulObject(
        // Envoy's limit for both: 8M entries.
        {
          MinimumRingSize: int(1, MAX_RING_SIZE).optional(),
          MaximumRingSize: int(1, MAX_RING_SIZE).optional(),
        },
        'a ring-hash config',
      ).optional(),
      HashPolicies: list(hashPolicy, 'hash policies').default([]),
    },
    'a load balancer ({ Policy, ... })',
  ).superRefine((lb, ctx) => {
    if (lb.LeastRequestConfig && lb.Policy !== 'least_request') {
      issue(
        ctx,
        ['LeastRequestConfig'],
        `expected only with Policy least_request, got Policy ${lb.Policy}`,
      );
    }
    if (lb.RingHashConfig && lb.Policy !== 'ring_hash') {
      issue(
        ctx,
        ['RingHashConfig'],
        `expected only with Policy ring_hash, got Policy ${lb.Policy}`,
      );
    }
    const ring = lb.RingHashConfig;
    if (
      ring?.MinimumRingSize !== undefined &&
      ring.MaximumRingSize !== undefined &&
      ring.MinimumRingSize > ring.MaximumRingSize
    ) {
      issue(
        ctx,
        ['RingHashConfig', 'MaximumRingSize'],
        `expected at least MinimumRingSize (${ring.MinimumRingSize}), got ${ring.MaximumRingSize}`,
      );
    }
    if (lb.HashPolicies.length > 0 && lb.Policy !== 'ring_hash' && lb.Policy !== 'maglev') {
      issue(
        ctx,
        ['HashPolicies'],
        `expected only with Policy ring_hash or maglev, got Policy ${lb.Policy}`,
      );
    }
  });

  const target = { Service: serviceName.optional(), ServiceSubset: subsetName.optional() };

  const serviceResolver = entry(
    'service-resolver',
    {
      DefaultSubset: subsetName.optional(),
      Subsets: record(
        subsetName,
        consulObject(
          { Filter: filter.default(''), OnlyPassing: bool.default(false) },
          'a subset ({ Filter, OnlyPassing })',
        ),
        'subset names to subsets',
      ).default({}),
      ConnectTimeout: durationUnlessZero.optional(),
      RequestTimeout: durationUnlessZero.optional(),
      Redirect: consulObject(
        { ...target, Datacenter: nonEmpty('a datacenter').optional() },
        'a redirect ({ Service, ServiceSubset, Datacenter })',
        { unsupported: [...TENANCY, 'Peer', 'SamenessGroup'] },
      ).optional(),
      LoadBalancer: loadBalancer.optional(),
      // Extension: percent of healthy local endpoints below which the next priority takes load.
      FailoverThreshold: percent
        .refine((v) => v > 0, {
          error: (i) => `expected a number above 0, at most 100, got ${brief(i.input)}`,
        })
        .optional(),
      Failover: record(
        z.string().refine((k) => k === '*' || NAME.test(k), {
          error: (i) => `expected "*" or a subset name, got ${brief(i.input)}`,
        }),
        consulObject(
          {
            ...target,
            Datacenters: list(nonEmpty('a datacenter'), 'datacenters').default([]),
            Targets: list(
              consulObject(
                { ...target, Datacenter: nonEmpty('a datacenter').optional() },
                'a failover target',
                {
                  unsupported: [...TENANCY, 'Peer'],
                },
              ),
              'failover targets',
            ).default([]),
          },
          'a failover ({ Service, ServiceSubset, Datacenters, Targets })',
          { unsupported: ['Namespace', 'Policy', 'SamenessGroup'] },
        ),
        '"*" or subset names to failovers',
      ).default({}),
    },
    { unsupported: ['PrioritizeByLocality'] },
  ).superRefine((r, ctx) => {
    const subsets = Object.keys(r.Subsets);
    const known = subsets.length ? `defined: ${subsets.join(', ')}` : 'no Subsets are defined';
    if (r.DefaultSubset !== undefined && !Object.hasOwn(r.Subsets, r.DefaultSubset)) {
      issue(
        ctx,
        ['DefaultSubset'],
        `expected one of the Subsets (${known}), got ${brief(r.DefaultSubset)}`,
      );
    }
    for (const key of Object.keys(r.Failover)) {
      if (key !== '*' && !Object.hasOwn(r.Subsets, key)) {
        issue(
          ctx,
          ['Failover', key],
          `expected "*" or one of the Subsets (${known}), got ${brief(key)}`,
        );
      }
    }
    // Consul: a redirect replaces the resolver; nothing else may be set beside it.
    if (r.Redirect) {
      for (const other of ['Subsets', 'Failover'] as const) {
        if (Object.keys(r[other]).length > 0)
          issue(ctx, [other], 'expected nothing beside Redirect');
      }
      if (r.DefaultSubset !== undefined)
        issue(ctx, ['DefaultSubset'], 'expected nothing beside Redirect');
    }
  });

  // ---- service-intentions -----------------------------------------------------------------------

  const action = oneOf(['allow', 'deny']);

  const permission = consulObject(
    {
      Action: action,
      HTTP: consulObject(
        {
          PathExact: path.optional(),
          PathPrefix: path.optional(),
          PathRegex: regex.optional(),
          Methods: methods,
          Header: list(headerMatch, 'header matches').default([]),
        },
        'an HTTP permission ({ PathExact | PathPrefix | PathRegex, Methods, Header })',
      ).superRefine((http, ctx) => {
        atMostOnePath(http, ctx);
        if (
          setFields(http, PATH_KINDS).length === 0 &&
          !http.Methods.length &&
          !http.Header.length
        ) {
          issue(
            ctx,
            [],
            'expected at least one of PathExact, PathPrefix, PathRegex, Methods, Header, got none',
          );
        }
      }),
    },
    'a permission ({ Action, HTTP })',
    { unsupported: ['JWT'] },
  );

  /** A service name, or "*" for every service. */
  const serviceOrAny = str('a service name or "*"').refine((n) => n === '*' || NAME.test(n), {
    error: (i) =>
      `expected a service name (a DNS label: a-z, 0-9, -) or "*", got ${brief(i.input)}`,
  });

  const intentionSource = consulObject(
    {
      Name: serviceOrAny,
      Action: action.optional(),
      Permissions: list(permission, 'permissions').optional(),
    },
    'an intention source ({ Name, Action | Permissions })',
    {
      // Computed or informational in Consul's output.
      drop: [
        'Precedence',
        'Type',
        'Description',
        'LegacyID',
        'LegacyMeta',
        'LegacyCreateTime',
        'LegacyUpdateTime',
      ],
      unsupported: [...TENANCY, 'Peer', 'SamenessGroup'],
    },
  )
    .superRefine((s, ctx) => {
      const l7 = s.Permissions !== undefined && s.Permissions.length > 0;
      if ((s.Action !== undefined) === l7) {
        issue(
          ctx,
          [],
          `expected exactly one of Action and Permissions, got ${l7 ? 'both' : 'neither'}`,
        );
      }
    })
    .transform(({ Permissions, ...rest }) => {
      // Callers elsewhere (a peer's, another tenancy's): reported as unsupported, and kept
      // apart so that no rule for this mesh's service of that name is made of them.
      const marks = (rest as { [UNSUPPORTED]?: readonly string[] })[UNSUPPORTED] ?? [];
      const elsewhere = marks.filter((m) => ELSEWHERE_FIELDS.includes(m));
      return {
        ...rest,
        ...(Permissions?.length ? { Permissions } : {}),
        ...(elsewhere.length > 0 ? { Elsewhere: elsewhere } : {}),
      };
    });

  const serviceIntentions = entry(
    'service-intentions',
    { Sources: list(intentionSource, 'sources') },
    {
      // "*" as the destination: Consul's default-deny / default-allow intention.
      name: serviceOrAny,
      unsupported: ['JWT'],
    },
  ).superRefine((e, ctx) => {
    e.Sources.forEach((s, i) => {
      const first = e.Sources.findIndex((x) => x.Name === s.Name);
      if (first !== i)
        issue(
          ctx,
          ['Sources', i, 'Name'],
          `duplicate source ${brief(s.Name)} (also Sources[${first}])`,
        );
    });
  });

  return {
    'proxy-defaults': proxyDefaults,
    'service-defaults': serviceDefaults,
    'service-router': serviceRouter,
    'service-splitter': serviceSplitter,
    'service-resolver': serviceResolver,
    'service-intentions': serviceIntentions,
  };
}

let builtSchemas: Readonly<Record<EntryKind, z.ZodType>> | undefined;

/** The one schema of each config-entry kind (memoised). */
export function entrySchemas(): Readonly<Record<EntryKind, z.ZodType>> {
  return (builtSchemas ??= buildEntrySchemas());
}
