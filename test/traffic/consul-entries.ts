// Config entries as `consul config read -format json` prints them (Consul 1.16): bookkeeping
// (CreateIndex, ModifyIndex, Hash), default tenancy, Go zero values such as "MeshGateway": {}
// and null limits, durations as strings or integer nanoseconds.

export const serviceDefaults = {
  Kind: 'service-defaults',
  Name: 'web',
  Partition: 'default',
  Namespace: 'default',
  Protocol: 'http',
  MeshGateway: {},
  Expose: {},
  TransparentProxy: {},
  UpstreamConfig: {
    Defaults: {
      ConnectTimeoutMs: 5000,
      Limits: { MaxConnections: 100, MaxPendingRequests: null, MaxConcurrentRequests: 50 },
      PassiveHealthCheck: {
        Interval: 10_000_000_000,
        MaxFailures: 5,
        EnforcingConsecutive5xx: 100,
        MaxEjectionPercent: 50,
        BaseEjectionTime: 30_000_000_000,
      },
      MeshGateway: {},
    },
    Overrides: [{ Name: 'api', Namespace: 'default', ConnectTimeoutMs: 1000, MeshGateway: {} }],
  },
  Meta: { owner: 'team-a' },
  CreateIndex: 12,
  ModifyIndex: 17,
  Hash: 1234567,
};

export const proxyDefaults = {
  Kind: 'proxy-defaults',
  Name: 'global',
  Config: { protocol: 'http', connect_timeout_ms: 3000 },
  MeshGateway: {},
  Expose: {},
  CreateIndex: 8,
  ModifyIndex: 8,
};

export const serviceRouter = {
  Kind: 'service-router',
  Name: 'web',
  Routes: [
    {
      Match: { HTTP: { PathPrefix: '/admin' } },
      Destination: { ServiceSubset: 'v2', RequestTimeout: '500ms', IdleTimeout: '1m0s' },
    },
    {
      Match: {
        HTTP: {
          Header: [{ Name: 'x-canary', Exact: '1' }],
          QueryParam: [{ Name: 'debug', Present: true }],
          Methods: ['GET', 'head'],
        },
      },
      Destination: {
        Service: 'web',
        ServiceSubset: 'v2',
        NumRetries: 3,
        RetryOnConnectFailure: true,
        RetryOn: ['5xx', 'reset'],
        RetryOnStatusCodes: [503],
        RequestHeaders: { Set: { 'x-route': 'canary' }, Remove: ['x-debug'] },
      },
    },
    {
      Match: { HTTP: { PathExact: '/old' } },
      Destination: { PrefixRewrite: '/new' },
    },
  ],
  CreateIndex: 20,
  ModifyIndex: 21,
};

export const serviceSplitter = {
  Kind: 'service-splitter',
  Name: 'web',
  Splits: [
    { Weight: 90, ServiceSubset: 'v1' },
    { Weight: 10, ServiceSubset: 'v2', ResponseHeaders: { Add: { 'x-split': 'v2' } } },
  ],
  CreateIndex: 22,
  ModifyIndex: 22,
};

export const serviceResolver = {
  Kind: 'service-resolver',
  Name: 'web',
  DefaultSubset: 'v1',
  Subsets: {
    v2: { Filter: 'Service.Meta.version == v2', OnlyPassing: true },
    v1: { Filter: 'Service.Meta.version == v1' },
  },
  ConnectTimeout: '15s',
  RequestTimeout: '30s',
  LoadBalancer: {
    Policy: 'ring_hash',
    RingHashConfig: { MinimumRingSize: 1024, MaximumRingSize: 8192 },
    HashPolicies: [
      { Field: 'header', FieldValue: 'x-user' },
      { SourceIP: true, Terminal: true },
    ],
  },
  Failover: { '*': { Datacenters: ['dc2'] } },
  CreateIndex: 23,
  ModifyIndex: 25,
};

export const serviceIntentions = {
  Kind: 'service-intentions',
  Name: 'api',
  Sources: [
    { Name: 'web', Action: 'deny', Precedence: 9, Type: 'consul' },
    {
      Name: '*',
      Permissions: [
        { Action: 'allow', HTTP: { PathPrefix: '/public', Methods: ['GET'] } },
        { Action: 'deny', HTTP: { PathRegex: '/admin/.*' } },
      ],
      Precedence: 8,
      Type: 'consul',
      Description: 'public read',
    },
  ],
  CreateIndex: 30,
  ModifyIndex: 31,
};
