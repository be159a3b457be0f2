// Consul config entries: what is accepted (real `consul config read` output), how it is
// normalised, that every rejection names the entry, the path and the value, and that Consul
// fields lucid-mesh does not implement are listed, never dropped silently.
import { describe, expect, it } from 'vitest';
import {
  TrafficDocumentError,
  TrafficEntryError,
  parseEntry,
  parseTrafficDocument,
} from '../../src/traffic/schema.js';
import * as consul from './consul-entries.js';
import { problems } from './entry-problems.js';

const router = (routes: unknown[]) => ({ Kind: 'service-router', Name: 'web', Routes: routes });
const destination = (d: Record<string, unknown>) => router([{ Destination: d }]);
const resolver = (fields: Record<string, unknown>) => ({
  Kind: 'service-resolver',
  Name: 'web',
  ...fields,
});

describe('parseEntry: Consul output as printed', () => {
  it('service-defaults', () => {
    expect(parseEntry(consul.serviceDefaults)).toEqual({
      entry: {
        Kind: 'service-defaults',
        Name: 'web',
        Protocol: 'http',
        UpstreamConfig: {
          Defaults: {
            ConnectTimeoutMs: 5000,
            Limits: { MaxConnections: 100, MaxConcurrentRequests: 50 },
            PassiveHealthCheck: {
              Interval: 10_000,
              MaxFailures: 5,
              EnforcingConsecutive5xx: 100,
              MaxEjectionPercent: 50,
              BaseEjectionTime: 30_000,
            },
          },
          Overrides: [{ Name: 'api', ConnectTimeoutMs: 1000 }],
        },
      },
      unsupported: [],
    });
  });

  it('proxy-defaults', () => {
    expect(parseEntry(consul.proxyDefaults)).toEqual({
      entry: {
        Kind: 'proxy-defaults',
        Name: 'global',
        Config: { protocol: 'http', connect_timeout_ms: 3000 },
      },
      unsupported: [],
    });
  });

  it('service-router: defaults filled, methods upper-cased, match fields kept as set', () => {
    const { entry, unsupported } = parseEntry(consul.serviceRouter);
    expect(unsupported).toEqual([]);
    expect(entry).toEqual({
      Kind: 'service-router',
      Name: 'web',
      Routes: [
        {
          Match: { HTTP: { PathPrefix: '/admin', Methods: [], Header: [], QueryParam: [] } },
          Destination: {
            ServiceSubset: 'v2',
            RequestTimeout: 500,
            IdleTimeout: 60_000,
            RetryOnConnectFailure: false,
            RetryOn: [],
            RetryOnStatusCodes: [],
          },
        },
        {
          Match: {
            HTTP: {
              Methods: ['GET', 'HEAD'],
              Header: [{ Name: 'x-canary', Exact: '1', Invert: false }],
              QueryParam: [{ Name: 'debug', Present: true }],
            },
          },
          Destination: {
            Service: 'web',
            ServiceSubset: 'v2',
            NumRetries: 3,
            RetryOnConnectFailure: true,
            RetryOn: ['5xx', 'reset'],
            RetryOnStatusCodes: [503],
            RequestHeaders: { Add: {}, Set: { 'x-route': 'canary' }, Remove: ['x-debug'] },
          },
        },
        {
          Match: { HTTP: { PathExact: '/old', Methods: [], Header: [], QueryParam: [] } },
          Destination: {
            PrefixRewrite: '/new',
            RetryOnConnectFailure: false,
            RetryOn: [],
            RetryOnStatusCodes: [],
          },
        },
      ],
    });
  });

  it('service-splitter', () => {
    expect(parseEntry(consul.serviceSplitter).entry).toEqual({
      Kind: 'service-splitter',
      Name: 'web',
      Splits: [
        { Weight: 90, ServiceSubset: 'v1' },
        {
          Weight: 10,
          ServiceSubset: 'v2',
          ResponseHeaders: { Add: { 'x-split': 'v2' }, Set: {}, Remove: [] },
        },
      ],
    });
  });

  it('service-resolver: subsets sorted, durations in ms, failover stored', () => {
    const { entry } = parseEntry(consul.serviceResolver);
    expect(entry).toEqual({
      Kind: 'service-resolver',
      Name: 'web',
      DefaultSubset: 'v1',
      Subsets: {
        v1: { Filter: 'Service.Meta.version == v1', OnlyPassing: false },
        v2: { Filter: 'Service.Meta.version == v2', OnlyPassing: true },
      },
      ConnectTimeout: 15_000,
      RequestTimeout: 30_000,
      LoadBalancer: {
        Policy: 'ring_hash',
        RingHashConfig: { MinimumRingSize: 1024, MaximumRingSize: 8192 },
        HashPolicies: [
          { Field: 'header', FieldValue: 'x-user', SourceIP: false, Terminal: false },
          { SourceIP: true, Terminal: true },
        ],
      },
      Failover: { '*': { Datacenters: ['dc2'], Targets: [] } },
    });
    expect(Object.keys((entry as { Subsets: object }).Subsets)).toEqual(['v1', 'v2']);
  });

  it('service-intentions: L4 and L7 sources, Consul computed fields dropped', () => {
    expect(parseEntry(consul.serviceIntentions).entry).toEqual({
      Kind: 'service-intentions',
      Name: 'api',
      Sources: [
        { Name: 'web', Action: 'deny' },
        {
          Name: '*',
          Permissions: [
            {
              Action: 'allow',
              HTTP: { PathPrefix: '/public', Methods: ['GET'], Header: [] },
            },
            { Action: 'deny', HTTP: { PathRegex: '/admin/.*', Methods: [], Header: [] } },
          ],
        },
      ],
    });
  });

  it('a default intention for every destination ("*")', () => {
    const entry = {
      Kind: 'service-intentions',
      Name: '*',
      Sources: [{ Name: '*', Action: 'deny' }],
    };
    expect(parseEntry(entry).entry).toEqual(entry);
  });

  it('a route without conditions is a catch-all: no Match', () => {
    const { entry } = parseEntry(
      router([
        { Match: { HTTP: { PathPrefix: '/a' } } },
        { Match: { HTTP: {} }, Destination: { ServiceSubset: 'v1' } },
      ]),
    );
    const routes = (entry as unknown as { Routes: object[] }).Routes;
    expect(routes[1]).toEqual({
      Destination: {
        ServiceSubset: 'v1',
        RetryOnConnectFailure: false,
        RetryOn: [],
        RetryOnStatusCodes: [],
      },
    });
  });

  it('zero and negative timeouts as Consul reads them: 0 is not set, a negative route timeout is none', () => {
    const { entry } = parseEntry(
      destination({ RequestTimeout: '-1s', IdleTimeout: '0s', NumRetries: 1 }),
    );
    const d = (entry as unknown as { Routes: Array<{ Destination: Record<string, unknown> }> })
      .Routes[0]!.Destination;
    expect(d.RequestTimeout).toBe(0); // Envoy's 0s: no timeout
    expect(d.IdleTimeout).toBeUndefined(); // not set: Envoy's default
    const r = parseEntry(resolver({ ConnectTimeout: '0s', RequestTimeout: 0 }))
      .entry as unknown as Record<string, unknown>;
    // Envoy refuses a 0s connect timeout (a NACK); Consul's 0 means its default.
    expect([r.ConnectTimeout, r.RequestTimeout]).toEqual([undefined, undefined]);
    const defaults = parseEntry({
      Kind: 'service-defaults',
      Name: 'web',
      UpstreamConfig: {
        Defaults: {
          ConnectTimeoutMs: 0,
          PassiveHealthCheck: { Interval: '0s', BaseEjectionTime: 0, MaxFailures: 3 },
        },
      },
    }).entry as unknown as { UpstreamConfig: { Defaults: Record<string, unknown> } };
    expect(defaults.UpstreamConfig.Defaults.ConnectTimeoutMs).toBeUndefined();
    expect(defaults.UpstreamConfig.Defaults.PassiveHealthCheck).toEqual({ MaxFailures: 3 });
  });

  it('lucid-mesh extensions on a route destination', () => {
    const { entry } = parseEntry(
      destination({
        RetryBackoff: { BaseInterval: '25ms', MaxInterval: '250ms' },
        RetryOnOtherHosts: true,
        Fault: { Delay: { Duration: '2s', Percent: 50 }, Abort: { HttpStatus: 503 } },
        Mirror: { Service: 'shadow', Percent: 10 },
      }),
    );
    expect(
      (entry as unknown as { Routes: { Destination: object }[] }).Routes[0]?.Destination,
    ).toEqual({
      RetryOnConnectFailure: false,
      RetryOn: [],
      RetryOnStatusCodes: [],
      RetryBackoff: { BaseInterval: 25, MaxInterval: 250 },
      RetryOnOtherHosts: true,
      Fault: { Delay: { Duration: 2000, Percent: 50 }, Abort: { HttpStatus: 503, Percent: 100 } },
      Mirror: { Service: 'shadow', Percent: 10 },
    });
  });

  it('results are deeply frozen', () => {
    const { entry } = parseEntry(consul.serviceRouter);
    const routes = (entry as unknown as { Routes: { Destination: { RetryOn: string[] } }[] })
      .Routes;
    expect(Object.isFrozen(entry)).toBe(true);
    expect(Object.isFrozen(routes[1]?.Destination.RetryOn)).toBe(true);
  });
});

describe('parseEntry: every rule names the entry, the path and the value', () => {
  it.each<[string, unknown, string[]]>([
    [
      'NumRetries integer ≥ 0',
      destination({ NumRetries: -1 }),
      ['service-router/web: Routes[0].Destination.NumRetries: expected integer ≥ 0, got -1'],
    ],
    [
      'NumRetries integer',
      destination({ NumRetries: 1.5 }),
      ['service-router/web: Routes[0].Destination.NumRetries: expected integer ≥ 0, got 1.5'],
    ],
    [
      'durations',
      destination({ RequestTimeout: '5 sec' }),
      [
        'service-router/web: Routes[0].Destination.RequestTimeout: expected a duration such as "500ms", "1.5s", "2m" or "1h30m" (or integer nanoseconds), got "5 sec" (unknown unit " sec")',
      ],
    ],
    [
      'a bare number is nanoseconds: under a millisecond, a missing unit',
      destination({ RequestTimeout: 5 }),
      [
        'service-router/web: Routes[0].Destination.RequestTimeout: expected a duration such as "500ms", "1.5s", "2m" or "1h30m" (or integer nanoseconds), got 5: a number is nanoseconds (5 ns, under a millisecond); write the unit, e.g. "5s" or "5ms"',
      ],
    ],
    [
      'negative durations only where Consul gives them a meaning',
      resolver({ RequestTimeout: '-1s' }),
      ['service-resolver/web: RequestTimeout: expected a duration ≥ 0, got "-1s"'],
    ],
    [
      'RetryOn values are Consul’s',
      destination({ RetryOn: ['5xx', 'timeout'] }),
      [
        'service-router/web: Routes[0].Destination.RetryOn[1]: expected one of 5xx | gateway-error | reset | connect-failure | envoy-ratelimited | retriable-4xx | refused-stream | cancelled | deadline-exceeded | internal | resource-exhausted | unavailable, got "timeout"',
      ],
    ],
    [
      'RetryOnStatusCodes are HTTP statuses',
      destination({ RetryOnStatusCodes: [503, 700] }),
      [
        'service-router/web: Routes[0].Destination.RetryOnStatusCodes[1]: expected integer 100-599, got 700',
      ],
    ],
    [
      'Abort.HttpStatus 200-599',
      destination({ Fault: { Abort: { HttpStatus: 150 } } }),
      [
        'service-router/web: Routes[0].Destination.Fault.Abort.HttpStatus: expected integer 200-599, got 150',
      ],
    ],
    [
      'Percent 0-100',
      destination({ Fault: { Delay: { Duration: '1s', Percent: 101 } } }),
      [
        'service-router/web: Routes[0].Destination.Fault.Delay.Percent: expected a number 0-100, got 101',
      ],
    ],
    [
      'a fault does something',
      destination({ Fault: {} }),
      ['service-router/web: Routes[0].Destination.Fault: expected Delay and/or Abort, got neither'],
    ],
    [
      'mirror percent',
      destination({ Mirror: { Service: 'shadow', Percent: -5 } }),
      ['service-router/web: Routes[0].Destination.Mirror.Percent: expected a number 0-100, got -5'],
    ],
    [
      'retry backoff',
      destination({ RetryBackoff: { BaseInterval: '1s', MaxInterval: '100ms' } }),
      [
        'service-router/web: Routes[0].Destination.RetryBackoff.MaxInterval: expected at least BaseInterval (1000ms), got 100ms',
      ],
    ],
    [
      'at most one path match',
      router([{ Match: { HTTP: { PathExact: '/a', PathPrefix: '/b' } } }]),
      [
        'service-router/web: Routes[0].Match.HTTP: expected at most one of PathExact, PathPrefix, PathRegex, got PathExact and PathPrefix',
      ],
    ],
    [
      'paths start with /',
      router([{ Match: { HTTP: { PathPrefix: 'admin' } } }]),
      [
        'service-router/web: Routes[0].Match.HTTP.PathPrefix: expected a path starting with "/", got "admin"',
      ],
    ],
    [
      'regexes compile',
      router([{ Match: { HTTP: { PathRegex: '/(a' } } }]),
      [
        'service-router/web: Routes[0].Match.HTTP.PathRegex: expected a regular expression (RE2, Envoy\'s), got "/(a" (missing closing ): `/(a`)',
      ],
    ],
    [
      'regexes are RE2’s, as Envoy runs them: no lookarounds or backreferences (a NACK otherwise)',
      router([
        { Match: { HTTP: { PathRegex: '/(?!admin).*' } } },
        { Match: { HTTP: { PathRegex: '/(a)\\1' } } },
        // RE2 syntax JavaScript refuses is fine.
        { Match: { HTTP: { PathRegex: '(?i)/reports/.*' } } },
      ]),
      [
        'service-router/web: Routes[0].Match.HTTP.PathRegex: expected a regular expression (RE2, Envoy\'s), got "/(?!admin).*" (invalid or unsupported Perl syntax: `(?!`)',
        'service-router/web: Routes[1].Match.HTTP.PathRegex: expected a regular expression (RE2, Envoy\'s), got "/(a)\\\\1" (invalid escape sequence: `\\1`)',
      ],
    ],
    [
      'header match: exactly one kind',
      router([{ Match: { HTTP: { Header: [{ Name: 'x-a', Exact: '1', Prefix: '2' }] } } }]),
      [
        'service-router/web: Routes[0].Match.HTTP.Header[0]: expected exactly one of Exact, Prefix, Suffix, Regex, Present, got Exact and Prefix',
      ],
    ],
    [
      'header match: not none',
      router([{ Match: { HTTP: { Header: [{ Name: 'x-a', Present: false }] } } }]),
      [
        'service-router/web: Routes[0].Match.HTTP.Header[0]: expected exactly one of Exact, Prefix, Suffix, Regex, Present, got none',
      ],
    ],
    [
      'header regex compiles',
      router([{ Match: { HTTP: { Header: [{ Name: 'x-a', Regex: '[' }] } } }]),
      [
        'service-router/web: Routes[0].Match.HTTP.Header[0].Regex: expected a regular expression (RE2, Envoy\'s), got "[" (missing closing ]: `[`)',
      ],
    ],
    [
      'query match: exactly one kind',
      router([{ Match: { HTTP: { QueryParam: [{ Name: 'q' }] } } }]),
      [
        'service-router/web: Routes[0].Match.HTTP.QueryParam[0]: expected exactly one of Exact, Regex, Present, got none',
      ],
    ],
    [
      'methods',
      router([{ Match: { HTTP: { Methods: ['get', 'FETCH'] } } }]),
      [
        'service-router/web: Routes[0].Match.HTTP.Methods[1]: expected an HTTP method (GET, HEAD, POST, PUT, PATCH, DELETE, CONNECT, OPTIONS, TRACE), got "FETCH"',
      ],
    ],
    [
      'methods: no duplicates',
      router([{ Match: { HTTP: { Methods: ['get', 'GET'] } } }]),
      ['service-router/web: Routes[0].Match.HTTP.Methods[1]: duplicate method GET (also [0])'],
    ],
    [
      'catch-all last',
      router([
        { Destination: { ServiceSubset: 'v1' } },
        { Match: { HTTP: { PathPrefix: '/admin' } } },
      ]),
      [
        'service-router/web: Routes[0]: a catch-all route (no Match) must be last: Routes[1] after it would never match',
      ],
    ],
    [
      'PrefixRewrite needs a path match',
      router([{ Match: { HTTP: { Methods: ['GET'] } }, Destination: { PrefixRewrite: '/x' } }]),
      [
        'service-router/web: Routes[0].Destination.PrefixRewrite: expected only with Match.HTTP.PathExact or PathPrefix',
      ],
    ],
    [
      'Name is a DNS label',
      { Kind: 'service-router', Name: 'Web_1', Routes: [] },
      [
        'service-router/Web_1: Name: expected a service name (a DNS label: a-z, 0-9, -), got "Web_1"',
      ],
    ],
    [
      'Destination.Service is a DNS label',
      destination({ Service: 'API' }),
      [
        'service-router/web: Routes[0].Destination.Service: expected a service name (a DNS label: a-z, 0-9, -), got "API"',
      ],
    ],
    [
      'subset names are DNS labels',
      resolver({ Subsets: { V2: { Filter: '' } } }),
      [
        'service-resolver/web: Subsets.V2: expected a subset name (a DNS label: a-z, 0-9, -), got "V2"',
      ],
    ],
    [
      'filters compile',
      resolver({ Subsets: { v2: { Filter: 'Service.Meta.version = v2' } } }),
      [
        'service-resolver/web: Subsets.v2.Filter: expected a filter expression, got "Service.Meta.version = v2": unexpected character "=" at position 22',
      ],
    ],
    [
      'DefaultSubset is a subset',
      resolver({ DefaultSubset: 'v3', Subsets: { v1: {}, v2: {} } }),
      [
        'service-resolver/web: DefaultSubset: expected one of the Subsets (defined: v1, v2), got "v3"',
      ],
    ],
    [
      'Failover keys are subsets or *',
      resolver({ Subsets: { v1: {} }, Failover: { v9: { Datacenters: ['dc2'] } } }),
      [
        'service-resolver/web: Failover.v9: expected "*" or one of the Subsets (defined: v1), got "v9"',
      ],
    ],
    [
      'Redirect stands alone',
      resolver({ Redirect: { Service: 'api' }, Subsets: { v1: {} } }),
      ['service-resolver/web: Subsets: expected nothing beside Redirect'],
    ],
    [
      'LB policy',
      resolver({ LoadBalancer: { Policy: 'fastest' } }),
      [
        'service-resolver/web: LoadBalancer.Policy: expected one of round_robin | least_request | random | ring_hash | maglev, got "fastest"',
      ],
    ],
    [
      'hash policies need a hashing LB',
      resolver({ LoadBalancer: { Policy: 'random', HashPolicies: [{ SourceIP: true }] } }),
      [
        'service-resolver/web: LoadBalancer.HashPolicies: expected only with Policy ring_hash or maglev, got Policy random',
      ],
    ],
    [
      'hash policy: Field or SourceIP',
      resolver({
        LoadBalancer: { Policy: 'maglev', HashPolicies: [{ Field: 'header', SourceIP: true }] },
      }),
      [
        'service-resolver/web: LoadBalancer.HashPolicies[0].SourceIP: expected either Field or SourceIP, got both',
        'service-resolver/web: LoadBalancer.HashPolicies[0].FieldValue: expected a header name, got nothing',
      ],
    ],
    [
      'splitter weights sum to 100',
      {
        Kind: 'service-splitter',
        Name: 'web',
        Splits: [{ Weight: 90 }, { Weight: 9.5, ServiceSubset: 'v2' }],
      },
      ['service-splitter/web: Splits: expected weights summing to 100, got 99.5'],
    ],
    [
      'header edits leave :pseudo-headers and host alone (Envoy NACKs the routes otherwise)',
      destination({
        RequestHeaders: { Set: { ':authority': 'x', 'x-ok': '1' }, Remove: ['Host'] },
        ResponseHeaders: { Add: { ':status': '200' } },
      }),
      [
        'service-router/web: Routes[0].Destination.RequestHeaders.Set[":authority"]: expected a header Envoy lets a route change (not a :pseudo-header or host), got ":authority"',
        'service-router/web: Routes[0].Destination.RequestHeaders.Remove[0]: expected a header Envoy lets a route change (not a :pseudo-header or host), got "Host"',
        'service-router/web: Routes[0].Destination.ResponseHeaders.Add[":status"]: expected a header Envoy lets a route change (not a :pseudo-header or host), got ":status"',
      ],
    ],
    [
      'what Envoy would refuse or wrap: a 0 s fault delay, counts past uint32, ring sizes past 8M',
      {
        Kind: 'service-router',
        Name: 'web',
        Routes: [
          { Destination: { NumRetries: 5_000_000_000, Fault: { Delay: { Duration: '0s' } } } },
        ],
      },
      [
        "service-router/web: Routes[0].Destination.NumRetries: expected integer ≤ 4294967295 (Envoy's uint32), got 5000000000",
        'service-router/web: Routes[0].Destination.Fault.Delay.Duration: expected a duration > 0, got 0 ms',
      ],
    ],
    [
      'limits are Envoy’s uint32',
      {
        Kind: 'service-defaults',
        Name: 'web',
        UpstreamConfig: { Defaults: { Limits: { MaxConnections: 5_000_000_000 } } },
      },
      [
        "service-defaults/web: UpstreamConfig.Defaults.Limits.MaxConnections: expected integer ≤ 4294967295 (Envoy's uint32), got 5000000000",
      ],
    ],
    [
      'a prefix rewrite is a path',
      router([{ Match: { HTTP: { PathPrefix: '/a' } }, Destination: { PrefixRewrite: 'b/' } }]),
      [
        'service-router/web: Routes[0].Destination.PrefixRewrite: expected a path starting with "/", got "b/"',
      ],
    ],
    [
      'splitter weights count with two decimals, as in Consul',
      {
        Kind: 'service-splitter',
        Name: 'web',
        Splits: [
          { Weight: 33.333 },
          { Weight: 33.333, Service: 'api' },
          { Weight: 33.334, Service: 'db' },
        ],
      },
      [
        'service-splitter/web: Splits: expected weights summing to 100, got 100 (99.99 with two decimals each)',
      ],
    ],
    [
      'splitter weight 0-100',
      { Kind: 'service-splitter', Name: 'web', Splits: [{ Weight: 120 }, { Weight: -20 }] },
      [
        'service-splitter/web: Splits[0].Weight: expected a number 0-100, got 120',
        'service-splitter/web: Splits[1].Weight: expected a number 0-100, got -20',
      ],
    ],
    [
      'splitter needs Splits',
      { Kind: 'service-splitter', Name: 'web' },
      ['service-splitter/web: Splits: expected a list of splits, got nothing'],
    ],
    [
      'proxy-defaults is global',
      { Kind: 'proxy-defaults', Name: 'default', Config: {} },
      [
        'proxy-defaults/default: Name: expected "global" (there is one proxy-defaults entry, named global), got "default"',
      ],
    ],
    [
      'protocols',
      { Kind: 'service-defaults', Name: 'web', Protocol: 'mongo' },
      ['service-defaults/web: Protocol: expected one of http | http2 | grpc | tcp, got "mongo"'],
    ],
    [
      'Config.protocol',
      { Kind: 'proxy-defaults', Name: 'global', Config: { protocol: 'HTTP' } },
      [
        'proxy-defaults/global: Config.protocol: expected one of http | http2 | grpc | tcp, got "HTTP"',
      ],
    ],
    [
      'limits',
      {
        Kind: 'service-defaults',
        Name: 'web',
        UpstreamConfig: { Defaults: { Limits: { MaxConnections: -1 } } },
      },
      [
        'service-defaults/web: UpstreamConfig.Defaults.Limits.MaxConnections: expected integer ≥ 0, got -1',
      ],
    ],
    [
      'passive health check percent',
      {
        Kind: 'service-defaults',
        Name: 'web',
        UpstreamConfig: { Defaults: { PassiveHealthCheck: { MaxEjectionPercent: 150 } } },
      },
      [
        'service-defaults/web: UpstreamConfig.Defaults.PassiveHealthCheck.MaxEjectionPercent: expected integer 0-100, got 150',
      ],
    ],
    [
      'intention source: Action or Permissions',
      { Kind: 'service-intentions', Name: 'api', Sources: [{ Name: 'web' }] },
      [
        'service-intentions/api: Sources[0]: expected exactly one of Action and Permissions, got neither',
      ],
    ],
    [
      'intention source: not both',
      {
        Kind: 'service-intentions',
        Name: 'api',
        Sources: [
          {
            Name: 'web',
            Action: 'allow',
            Permissions: [{ Action: 'deny', HTTP: { PathExact: '/' } }],
          },
        ],
      },
      [
        'service-intentions/api: Sources[0]: expected exactly one of Action and Permissions, got both',
      ],
    ],
    [
      'intention action',
      { Kind: 'service-intentions', Name: 'api', Sources: [{ Name: 'web', Action: 'permit' }] },
      ['service-intentions/api: Sources[0].Action: expected one of allow | deny, got "permit"'],
    ],
    [
      'intention source name',
      { Kind: 'service-intentions', Name: 'api', Sources: [{ Name: 'web*', Action: 'allow' }] },
      [
        'service-intentions/api: Sources[0].Name: expected a service name (a DNS label: a-z, 0-9, -) or "*", got "web*"',
      ],
    ],
    [
      'duplicate intention sources',
      {
        Kind: 'service-intentions',
        Name: 'api',
        Sources: [
          { Name: 'web', Action: 'allow' },
          { Name: 'web', Action: 'deny' },
        ],
      },
      ['service-intentions/api: Sources[1].Name: duplicate source "web" (also Sources[0])'],
    ],
    [
      'permission HTTP is not empty',
      {
        Kind: 'service-intentions',
        Name: 'api',
        Sources: [{ Name: 'web', Permissions: [{ Action: 'allow', HTTP: {} }] }],
      },
      [
        'service-intentions/api: Sources[0].Permissions[0].HTTP: expected at least one of PathExact, PathPrefix, PathRegex, Methods, Header, got none',
      ],
    ],
    [
      'snake_case keys name the Consul spelling',
      destination({ num_retries: 3, retry_on: ['5xx'] }),
      [
        "service-router/web: Routes[0].Destination: unknown field num_retries (Consul's JSON spells it NumRetries)",
        "service-router/web: Routes[0].Destination: unknown field retry_on (Consul's JSON spells it RetryOn)",
      ],
    ],
    [
      'snake_case at the top',
      { Kind: 'service-resolver', Name: 'web', default_subset: 'v1' },
      [
        "service-resolver/web: unknown field default_subset (Consul's JSON spells it DefaultSubset)",
      ],
    ],
    [
      'unknown fields that are not Consul’s',
      { Kind: 'service-splitter', Name: 'web', Splits: [{ Weight: 100, Percent: 100 }] },
      [
        'service-splitter/web: Splits[0]: unknown field Percent (expected Weight, Service, ServiceSubset, RequestHeaders, ResponseHeaders, Namespace, Partition)',
      ],
    ],
    [
      'unknown kind',
      { Kind: 'service-routr', Name: 'web' },
      [
        '(entry): Kind: expected one of proxy-defaults | service-defaults | service-router | service-splitter | service-resolver | service-intentions (or another Consul kind), got "service-routr"',
      ],
    ],
    [
      'no Kind',
      { Name: 'web' },
      [
        '(entry): Kind: expected one of proxy-defaults | service-defaults | service-router | service-splitter | service-resolver | service-intentions (or another Consul kind), got nothing',
      ],
    ],
    [
      'lower-case kind',
      { kind: 'service-defaults', Name: 'web' },
      ["(entry): unknown field kind (Consul's JSON spells it Kind)"],
    ],
    [
      'not an object',
      ['service-router'],
      ['(entry): expected a config entry (an object with Kind and Name), got ["service-router"]'],
    ],
    [
      'wrong types',
      destination({ RetryOnConnectFailure: 'yes', RetryOn: '5xx' }),
      [
        'service-router/web: Routes[0].Destination.RetryOnConnectFailure: expected true or false, got "yes"',
        'service-router/web: Routes[0].Destination.RetryOn: expected a list of retry conditions, got "5xx"',
      ],
    ],
  ])('%s', (_rule, raw, expected) => {
    expect(problems(raw)).toEqual(expected);
  });

  it('the error carries kind, name and the issues without the label', () => {
    try {
      parseEntry(destination({ NumRetries: -1 }));
      expect.unreachable();
    } catch (err) {
      const e = err as TrafficEntryError;
      expect(e).toBeInstanceOf(TrafficEntryError);
      expect([e.kind, e.name]).toEqual(['service-router', 'web']);
      expect(e.issues).toEqual(['Routes[0].Destination.NumRetries: expected integer ≥ 0, got -1']);
      expect(e.message).toBe(
        'service-router/web: Routes[0].Destination.NumRetries: expected integer ≥ 0, got -1',
      );
    }
  });

  it('long values are cut short in messages', () => {
    const [line] = problems(destination({ Service: 'x'.repeat(500) }));
    expect(line?.length).toBeLessThan(200);
    expect(line).toMatch(/got "x+\.\.\.$/);
  });
});

describe('parseEntry: unsupported Consul fields are listed, not errors', () => {
  it('lists fields in use with their paths; zero values and default tenancy are not listed', () => {
    const { entry, unsupported } = parseEntry({
      ...consul.serviceDefaults,
      Mode: 'transparent',
      TransparentProxy: { OutboundListenerPort: 15001 },
      MaxInboundConnections: 0,
      LocalConnectTimeoutMs: 2000,
      BalanceInboundConnections: 'exact_balance',
      EnvoyExtensions: [{ Name: 'builtin/lua' }],
      UpstreamConfig: {
        Defaults: { MeshGateway: { Mode: 'local' } },
        Overrides: [{ Name: 'api', Peer: 'dc2-peer', Protocol: 'grpc' }],
      },
    });
    expect(entry?.Kind).toBe('service-defaults');
    expect(unsupported.map((u) => u.field)).toEqual([
      'BalanceInboundConnections',
      'EnvoyExtensions',
      'LocalConnectTimeoutMs',
      'Mode',
      'TransparentProxy',
      'UpstreamConfig.Defaults.MeshGateway',
      'UpstreamConfig.Overrides[0].Peer',
      'UpstreamConfig.Overrides[0].Protocol',
    ]);
    expect(unsupported.every((u) => u.kind === 'service-defaults' && u.name === 'web')).toBe(true);
  });

  it('proxy-defaults: Config keys other than protocol and connect_timeout_ms', () => {
    const { entry, unsupported } = parseEntry({
      ...consul.proxyDefaults,
      Config: {
        protocol: 'grpc',
        connect_timeout_ms: '2500',
        envoy_prometheus_bind_addr: '0.0.0.0:9102',
      },
      AccessLogs: { Enabled: true, DisableListenerLogs: true },
    });
    expect(entry).toMatchObject({ Config: { protocol: 'grpc', connect_timeout_ms: 2500 } });
    expect(unsupported.map((u) => u.field)).toEqual([
      'AccessLogs.DisableListenerLogs',
      'Config.envoy_prometheus_bind_addr',
    ]);
  });

  it('router, resolver and intentions fields', () => {
    const fields = (raw: unknown) => parseEntry(raw).unsupported.map((u) => u.field);
    expect(
      fields(
        router([
          {
            Match: { HTTP: { PathPrefix: '/a', CaseInsensitive: true } },
            Destination: { Namespace: 'other' },
          },
        ]),
      ),
    ).toEqual(['Routes[0].Destination.Namespace']);
    expect(
      fields(
        resolver({
          Subsets: { v1: {} },
          Failover: {
            v1: {
              Targets: [{ Peer: 'dc2', Service: 'web' }],
              Policy: { Mode: 'order-by-locality' },
            },
          },
          Redirect: undefined,
          PrioritizeByLocality: { Mode: 'failover' },
        }),
      ),
    ).toEqual(['Failover.v1.Policy', 'Failover.v1.Targets[0].Peer', 'PrioritizeByLocality']);
    expect(
      fields({
        Kind: 'service-intentions',
        Name: 'api',
        JWT: { Providers: [{ Name: 'okta' }] },
        Sources: [
          { Name: 'web', Peer: 'other-cluster', Action: 'allow' },
          { Name: 'db', SamenessGroup: 'sg', Partition: 'p2', Action: 'deny' },
          {
            Name: 'ui',
            Permissions: [
              {
                Action: 'allow',
                HTTP: { PathPrefix: '/' },
                JWT: { Providers: [{ Name: 'okta' }] },
              },
            ],
          },
        ],
      }),
    ).toEqual([
      'JWT',
      'Sources[0].Peer',
      'Sources[1].Partition',
      'Sources[1].SamenessGroup',
      'Sources[2].Permissions[0].JWT',
    ]);
  });

  it('a Consul kind lucid-mesh does not implement is listed whole', () => {
    expect(
      parseEntry({ Kind: 'mesh', Name: 'mesh', TransparentProxy: { MeshDestinationsOnly: true } }),
    ).toEqual({
      unsupported: [{ kind: 'mesh', name: 'mesh', field: '' }],
    });
  });
});

describe('parseTrafficDocument', () => {
  const all = [
    consul.proxyDefaults,
    consul.serviceDefaults,
    consul.serviceRouter,
    consul.serviceSplitter,
    consul.serviceResolver,
    consul.serviceIntentions,
    { Kind: 'ingress-gateway', Name: 'ingress', Listeners: [] },
  ];

  it('builds the configuration: maps by name, sorted; unsupported sorted', () => {
    const config = parseTrafficDocument([
      { Kind: 'service-defaults', Name: 'zeta', MaxInboundConnections: 5 },
      ...all,
    ]);
    expect(config.proxyDefaults?.Name).toBe('global');
    expect([...config.serviceDefaults.keys()]).toEqual(['web', 'zeta']);
    expect([...config.routers.keys()]).toEqual(['web']);
    expect([...config.splitters.keys()]).toEqual(['web']);
    expect([...config.resolvers.keys()]).toEqual(['web']);
    expect([...config.intentions.keys()]).toEqual(['api']);
    expect(config.unsupported).toEqual([
      { kind: 'ingress-gateway', name: 'ingress', field: '' },
      { kind: 'service-defaults', name: 'zeta', field: 'MaxInboundConnections' },
    ]);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.unsupported)).toBe(true);
  });

  it('accepts a single entry and an empty list', () => {
    expect([...parseTrafficDocument(consul.serviceRouter).routers.keys()]).toEqual(['web']);
    const empty = parseTrafficDocument([]);
    expect(empty.routers.size + empty.serviceDefaults.size).toBe(0);
    expect(empty.proxyDefaults).toBeUndefined();
  });

  it('collects every problem of every entry, and duplicates', () => {
    let error: unknown;
    try {
      parseTrafficDocument(
        [
          consul.serviceRouter,
          destination({ NumRetries: -1 }),
          7,
          { Kind: 'service-splitter', Name: 'api', Splits: [{ Weight: 50 }] },
          consul.serviceRouter,
        ],
        { source: 'traffic.yaml' },
      );
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(TrafficDocumentError);
    expect((error as TrafficDocumentError).problems).toEqual([
      'service-router/web: Routes[0].Destination.NumRetries: expected integer ≥ 0, got -1',
      'entries[2]: expected a config entry (an object with Kind and Name), got 7',
      'service-splitter/api: Splits: expected weights summing to 100, got 50',
      'service-router/web: duplicate entry (entries[0] and entries[4])',
    ]);
    expect((error as Error).message.startsWith('traffic.yaml: service-router/web: ')).toBe(true);
  });

  it('rejects a document that is neither a list nor an entry', () => {
    expect(() => parseTrafficDocument('routes')).toThrow(
      'traffic configuration: (root): expected a list of config entries (or one entry), got "routes"',
    );
  });
});
