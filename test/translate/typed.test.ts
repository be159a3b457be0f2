// The translators' Envoy resources are typed (src/protos/envoy-types.ts): a misspelt field or
// enum value in a translator-style object literal is a compile error, where protobufjs's
// fromObject would drop it silently. The checks are the `@ts-expect-error` lines below:
// `npm run typecheck` (tsconfig.json includes test/) fails if one of them stops being an error.
import { describe, expect, it } from 'vitest';
import { DEFAULT_MESH_SETTINGS } from '../../src/mesh/index.js';
import type { Backend } from '../../src/mesh/types.js';
import {
  typedAny,
  type Cluster,
  type OutlierDetection,
  type RouteAction,
} from '../../src/protos/envoy-types.js';
import { unknownFields } from '../../src/protos/known-fields.js';
import { backendCluster } from '../../src/translate/clusters.js';
import { defined, durationMs } from '../../src/translate/envoy.js';

/** Literals as translators write them, each with one misspelling the compiler must reject. */
function misspelt() {
  const outlier: OutlierDetection = {
    // @ts-expect-error: protobufjs keeps the underscore before a digit: consecutive_5xx
    consecutive5xx: { value: 5 },
  };
  const action: RouteAction = defined({
    cluster: 'api',
    timeout: durationMs(1000),
    // @ts-expect-error: the field is retryPolicy; defined() checks against where its result goes
    retryPolicies: { retryOn: '5xx' },
  });
  const cluster: Cluster = {
    name: 'api',
    // @ts-expect-error: not an LbPolicy value
    lbPolicy: 'LEAST_REQUESTS',
  };
  const tcpProxy = typedAny('envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', {
    // @ts-expect-error: an Any payload is checked against its message: statPrefix
    statPrefx: 'outbound_tcp_db',
    cluster: 'db',
  });
  return { outlier, action, cluster, tcpProxy };
}

const backend: Backend = {
  name: 'api',
  service: 'api',
  protocol: 'http',
  connectTimeoutMs: 5000,
  loadBalancing: { policy: 'round_robin' },
  outlierDetection: { consecutive5xx: 5, intervalMs: 10_000 },
  localities: [],
};

describe('typed Envoy resources', () => {
  it('a translator writes the field names the descriptor knows', () => {
    const cluster = backendCluster(backend, DEFAULT_MESH_SETTINGS);
    expect(cluster.outlierDetection?.consecutive_5xx).toEqual({ value: 5 });
    expect(unknownFields('envoy.config.cluster.v3.Cluster', cluster)).toEqual([]);
  });

  it('what the compiler rejects is what protobufjs would drop', () => {
    const { outlier, action, tcpProxy } = misspelt();
    expect(unknownFields('envoy.config.cluster.v3.OutlierDetection', outlier)).toEqual([
      'consecutive5xx',
    ]);
    expect(unknownFields('envoy.config.route.v3.RouteAction', action)).toEqual(['retryPolicies']);
    expect(unknownFields('google.protobuf.Any', tcpProxy)).toEqual(['statPrefx']);
  });
});
