// unknownFields/assertKnownFields: what protobufjs fromObject would drop silently is found,
// at any depth, inside Any payloads and map values; real resources pass.
import { describe, expect, it } from 'vitest';
import { TYPE_URLS, decodeMessage, encodeMessage } from '../../src/protos/envoy.js';
import type { Cluster, Listener } from '../../src/protos/envoy-types.js';
import { assertKnownFields, unknownFields } from '../../src/protos/known-fields.js';

const HPO = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const T = 'type.googleapis.com/';

const ads = { ads: {}, resourceApiVersion: 'V3' } as const;

/** A cluster as the translators write one: EDS, HTTP/2 upstream, mTLS to meshed endpoints. */
function realCluster(): Cluster {
  return {
    name: 'outbound|api',
    type: 'EDS',
    edsClusterConfig: { edsConfig: ads, serviceName: 'outbound|api' },
    connectTimeout: { seconds: 5 },
    lbPolicy: 'LEAST_REQUEST',
    circuitBreakers: { thresholds: [{ priority: 'DEFAULT', maxConnections: { value: 100 } }] },
    outlierDetection: { consecutive_5xx: { value: 5 }, baseEjectionTime: { seconds: 30 } },
    typedExtensionProtocolOptions: {
      [HPO]: { '@type': `${T}${HPO}`, explicitHttpConfig: { http2ProtocolOptions: {} } },
    },
    transportSocketMatches: [
      {
        name: 'mtls',
        match: { mtls: true },
        transportSocket: {
          name: 'envoy.transport_sockets.tls',
          typedConfig: {
            '@type': `${T}envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext`,
            commonTlsContext: {
              tlsCertificateSdsSecretConfigs: [{ name: 'identity', sdsConfig: ads }],
              combinedValidationContext: {
                defaultValidationContext: {
                  matchTypedSubjectAltNames: [
                    {
                      sanType: 'URI',
                      matcher: { exact: 'spiffe://mesh.local/ns/default/svc/api' },
                    },
                  ],
                },
                validationContextSdsSecretConfig: { name: 'trust-bundle', sdsConfig: ads },
              },
              alpnProtocols: ['h2'],
            },
            sni: 'api.lucid.internal',
          },
        },
      },
    ],
    metadata: { filterMetadata: { lucid: { anyKeyAtAll: [1, 'two'] } } },
  };
}

function listener(httpFilters: unknown[]): Listener {
  return {
    name: 'outbound_http_15001',
    address: { socketAddress: { address: '127.0.0.1', portValue: 15001 } },
    trafficDirection: 'OUTBOUND',
    filterChains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typedConfig: {
              '@type': `${T}envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`,
              statPrefix: 'outbound_http',
              rds: { routeConfigName: 'outbound', configSource: ads },
              httpFilters,
            },
          },
        ],
      },
    ],
  };
}

const router = {
  name: 'envoy.filters.http.router',
  typedConfig: { '@type': `${T}envoy.extensions.filters.http.router.v3.Router` },
};

describe('unknownFields', () => {
  it('passes a real cluster, and what encoding it and decoding it gives back', () => {
    const cluster = realCluster();
    expect(unknownFields(TYPE_URLS.clusters, cluster)).toEqual([]);
    const decoded = decodeMessage(TYPE_URLS.clusters, encodeMessage(TYPE_URLS.clusters, cluster));
    expect(decoded.lbPolicy).toBe('LEAST_REQUEST');
    expect(unknownFields('envoy.config.cluster.v3.Cluster', decoded)).toEqual([]);
  });

  it('passes a real listener', () => {
    expect(unknownFields(TYPE_URLS.listeners, listener([router]))).toEqual([]);
  });

  it('finds a misspelt field at the top and deep down', () => {
    const cluster = { ...realCluster(), conectTimeout: { seconds: 1 } };
    cluster.transportSocketMatches![0]!.transportSocket!.typedConfig!.commonTlsContext = {
      tlsCertificateSdsSecretConfig: [],
    };
    expect(unknownFields(TYPE_URLS.clusters, cluster)).toEqual([
      'transportSocketMatches[0].transportSocket.typedConfig.commonTlsContext.tlsCertificateSdsSecretConfig',
      'conectTimeout',
    ]);
  });

  it('finds a misspelt field inside an Any payload', () => {
    const l = listener([router]);
    const typedConfig = l.filterChains![0]!.filters![0]!.typedConfig!;
    const broken = {
      ...l,
      filterChains: [
        { filters: [{ name: 'hcm', typedConfig: { ...typedConfig, httpFilterz: [] } }] },
      ],
    };
    expect(unknownFields(TYPE_URLS.listeners, broken)).toEqual([
      'filterChains[0].filters[0].typedConfig.httpFilterz',
    ]);
    // An Any nested in an Any's payload.
    const inner = listener([
      { ...router, typedConfig: { ...router.typedConfig, dynamicStatz: {} } },
    ]);
    expect(unknownFields(TYPE_URLS.listeners, inner)).toEqual([
      'filterChains[0].filters[0].typedConfig.httpFilters[0].typedConfig.dynamicStatz',
    ]);
  });

  it('finds a misspelt field inside a map value', () => {
    const cluster = realCluster();
    cluster.typedExtensionProtocolOptions![HPO] = {
      '@type': `${T}${HPO}`,
      explicitHttpConfig: { http2ProtocolOption: {} },
    };
    expect(unknownFields(TYPE_URLS.clusters, cluster)).toEqual([
      `typedExtensionProtocolOptions["${HPO}"].explicitHttpConfig.http2ProtocolOption`,
    ]);
  });

  it('finds snake_case keys, unknown enum names and Any types it cannot resolve', () => {
    const cluster = {
      name: 'c',
      lb_policy: 'RANDOM',
      type: 'EDSS',
      constructor: {},
      dnsLookupFamily: 'toString',
      transportSocket: { name: 't', typedConfig: { '@type': `${T}envoy.nope.v3.Tls`, sni: 'x' } },
    };
    expect(unknownFields(TYPE_URLS.clusters, cluster)).toEqual([
      'lb_policy',
      'type: unknown envoy.config.cluster.v3.Cluster.DiscoveryType value "EDSS"',
      'constructor',
      'dnsLookupFamily: unknown envoy.config.cluster.v3.Cluster.DnsLookupFamily value "toString"',
      `transportSocket.typedConfig.@type: unknown type "${T}envoy.nope.v3.Tls"`,
    ]);
  });

  it('leaves Struct contents and wrong-kind values alone', () => {
    const cluster = {
      metadata: { filterMetadata: { anything: { nested: { deeply: true } } } },
      connectTimeout: '5s',
      healthChecks: 'not a list',
    };
    expect(unknownFields(TYPE_URLS.clusters, cluster)).toEqual([]);
  });
});

describe('assertKnownFields', () => {
  it('throws listing every unknown path', () => {
    const cluster = { name: 'c', conectTimeout: {}, loadAssignment: { endpointz: [] } };
    expect(() => assertKnownFields(TYPE_URLS.clusters, cluster, 'outbound|api')).toThrow(
      /^envoy\.config\.cluster\.v3\.Cluster outbound\|api has fields .*: conectTimeout, loadAssignment\.endpointz$/,
    );
  });

  it('returns quietly for a known resource', () => {
    expect(() => assertKnownFields(TYPE_URLS.clusters, realCluster())).not.toThrow();
  });
});
