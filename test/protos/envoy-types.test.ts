// The generated Envoy types bite. The `@ts-expect-error` lines are checked by `npm run
// typecheck` (tsconfig.json includes test/): if one of those mistakes stopped being an error,
// the directive would be unused and tsc would fail. At run time: objects written against the
// types are what the descriptor knows, and the generated file compiles on its own (the
// project's skipLibCheck would hide an error in a .d.ts).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { beforeAll, describe, expect, it } from 'vitest';
import { TYPE_URLS, encodeMessage } from '../../src/protos/envoy.js';
import {
  typedAny,
  type Cluster,
  type HttpConnectionManager,
  type Listener,
  type RouteAction,
  type RouteConfiguration,
  type Secret,
} from '../../src/protos/envoy-types.js';
import { assertKnownFields } from '../../src/protos/known-fields.js';

const ads = { ads: {}, resourceApiVersion: 'V3' } as const;

const cluster: Cluster = {
  name: 'outbound|api',
  type: 'EDS',
  edsClusterConfig: { edsConfig: ads, serviceName: 'outbound|api' },
  connectTimeout: { seconds: 1, nanos: 500_000_000 },
  lbPolicy: 'RING_HASH',
  ringHashLbConfig: { minimumRingSize: { value: 1024 } },
  circuitBreakers: {
    thresholds: [{ maxConnections: { value: 64 }, maxPendingRequests: { value: 32 } }],
  },
  outlierDetection: { consecutive_5xx: { value: 3 }, maxEjectionPercent: { value: 50 } },
  typedExtensionProtocolOptions: {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': typedAny(
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
      { explicitHttpConfig: { http2ProtocolOptions: {} } },
    ),
  },
};

const retryOn5xx: RouteAction = {
  weightedClusters: {
    clusters: [
      { name: 'outbound|api|v1', weight: { value: 90 } },
      { name: 'outbound|api|v2', weight: { value: 10 } },
    ],
  },
  timeout: { seconds: 15 },
  retryPolicy: {
    retryOn: '5xx,connect-failure',
    numRetries: { value: 2 },
    retryBackOff: { baseInterval: { nanos: 25_000_000 } },
  },
};

const routes: RouteConfiguration = {
  name: 'outbound',
  virtualHosts: [
    {
      name: 'api',
      domains: ['api.lucid.internal', 'api'],
      routes: [
        {
          match: { prefix: '/', headers: [{ name: 'x-canary', presentMatch: true }] },
          route: retryOn5xx,
          requestHeadersToAdd: [
            { header: { key: 'x-mesh', value: '1' }, append: { value: false } },
          ],
        },
      ],
    },
  ],
};

const hcm: HttpConnectionManager = {
  statPrefix: 'outbound_http',
  rds: { routeConfigName: 'outbound', configSource: ads },
  httpFilters: [
    {
      name: 'envoy.filters.http.router',
      typedConfig: typedAny('envoy.extensions.filters.http.router.v3.Router', {}),
    },
  ],
};

const listener: Listener = {
  name: 'outbound_http_15001',
  address: { socketAddress: { address: '127.0.0.1', portValue: 15001 } },
  trafficDirection: 'OUTBOUND',
  filterChains: [
    {
      filters: [
        {
          name: 'envoy.filters.network.http_connection_manager',
          typedConfig: typedAny(
            'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
            hcm,
          ),
        },
      ],
    },
  ],
};

const secret: Secret = {
  name: 'trust-bundle',
  validationContext: { trustedCa: { inlineString: '-----BEGIN CERTIFICATE-----' } },
};

// Mistakes the compiler must refuse.
export const mistakes: Cluster[] = [
  {
    name: 'a',
    // @ts-expect-error: misspelt field
    conectTimeout: { seconds: 1 },
  },
  {
    // @ts-expect-error: misspelt field two levels down
    loadAssignment: { clusterName: 'a', endpoints: [{ lbEndpointz: [] }] },
  },
  // @ts-expect-error: not a value of Cluster.LbPolicy
  { lbPolicy: 'ROUND_ROBINN' },
  {
    // @ts-expect-error: Envoy's docs say consecutive5xx; protobufjs knows it as consecutive_5xx
    outlierDetection: { consecutive5xx: { value: 3 } },
  },
  // @ts-expect-error: a wrapper without its value
  { perConnectionBufferLimitBytes: {} },
  // @ts-expect-error: a Duration is { seconds, nanos }, not Envoy's '5s' string
  { connectTimeout: '5s' },
  {
    typedExtensionProtocolOptions: {
      x: typedAny('envoy.extensions.upstreams.http.v3.HttpProtocolOptions', {
        // @ts-expect-error: misspelt field inside an Any built with typedAny
        explicitHttpConfigs: {},
      }),
    },
  },
];
// @ts-expect-error: typedAny only takes a type lucid-mesh has types for
typedAny('envoy.extensions.filters.http.nope.v3.Nope', {});

const generated = fileURLToPath(new URL('../../gen/envoy-types.d.ts', import.meta.url));

describe('generated Envoy types', () => {
  beforeAll(() => {
    if (!existsSync(generated)) {
      execFileSync(process.execPath, ['scripts/gen-envoy-types.mjs'], { stdio: 'inherit' });
    }
  });

  it('describe objects the descriptor knows field by field', () => {
    const resources: [string, object][] = [
      [TYPE_URLS.clusters, cluster],
      [TYPE_URLS.routes, routes],
      [TYPE_URLS.listeners, listener],
      [TYPE_URLS.secrets, secret],
    ];
    for (const [typeUrl, resource] of resources) {
      expect(() => assertKnownFields(typeUrl, resource)).not.toThrow();
      expect(encodeMessage(typeUrl, resource).length).toBeGreaterThan(0);
    }
  });

  it('typedAny puts the type URL beside the payload', () => {
    expect(
      typedAny('envoy.extensions.filters.http.router.v3.Router', {
        dynamicStats: { value: false },
      }),
    ).toEqual({
      '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
      dynamicStats: { value: false },
    });
  });

  it('compile on their own, without skipLibCheck', () => {
    const program = ts.createProgram([generated], {
      strict: true,
      noEmit: true,
      skipLibCheck: false,
      types: [],
      lib: ['lib.es2023.d.ts'],
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
    });
    const errors = ts
      .getPreEmitDiagnostics(program)
      .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    expect(errors).toEqual([]);
  });
});
