// Clusters (CDS): one EDS cluster per catalog service, plus a node's STATIC local app cluster.
import type { Protocol, Service } from '../catalog/model.js';
import { socketAddress } from './endpoints.js';
import { localAppClusterName, serviceClusterName } from './names.js';
import { MTLS_MATCH, upstreamMtls } from './tls.js';
import type { ResourceMessage, TranslateOptions } from './types.js';

const HTTP_PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

/** Fetch the referenced resource over the node's ADS stream. */
export function adsConfigSource(): ResourceMessage {
  return { ads: {}, resourceApiVersion: 'V3' };
}

/**
 * An Envoy duration string ('5s', '0.25s') as a google.protobuf.Duration object.
 * Not left as a string: protobufjs's generated fromObject rejects a non-object in a message
 * field before the Duration wrapper (src/protos/wrappers.ts) is consulted, so a nested '5s'
 * cannot be encoded. Decoded resources (goldens, config_dump) still read '5s'.
 */
export function duration(value: string): ResourceMessage {
  const match = /^(\d+)(?:\.(\d{1,9}))?s$/.exec(value);
  if (!match) throw new Error(`invalid duration "${value}": expected e.g. "5s" or "0.25s"`);
  const seconds = Number(match[1]);
  const nanos = match[2] ? Number(match[2].padEnd(9, '0')) : 0;
  return nanos ? { seconds, nanos } : { seconds };
}

const isHttp2 = (protocol: Protocol): boolean => protocol === 'http2' || protocol === 'grpc';

/** gRPC needs HTTP/2 to the upstream; http2 apps may speak only h2c. */
function upstreamProtocolOptions(protocol: Protocol): ResourceMessage {
  if (!isHttp2(protocol)) return {};
  return {
    typedExtensionProtocolOptions: {
      [HTTP_PROTOCOL_OPTIONS]: {
        '@type': `type.googleapis.com/${HTTP_PROTOCOL_OPTIONS}`,
        explicitHttpConfig: { http2ProtocolOptions: {} },
      },
    },
  };
}

export function serviceCluster(service: Service, opts: TranslateOptions): ResourceMessage {
  const name = serviceClusterName(service.name);
  return {
    name,
    type: 'EDS',
    edsClusterConfig: { edsConfig: adsConfigSource(), serviceName: name },
    connectTimeout: duration(opts.connectTimeout),
    ...upstreamProtocolOptions(service.protocol),
    ...meshTransport(service, opts),
  };
}

/**
 * With mTLS, meshed endpoints (marked by their metadata) are reached over TLS with the
 * target's SPIFFE ID verified; endpoints without a sidecar stay plaintext.
 */
function meshTransport(service: Service, opts: TranslateOptions): ResourceMessage {
  const identity = opts.security?.mtls;
  if (!identity) return {};
  const alpn = service.protocol === 'tcp' ? [] : isHttp2(service.protocol) ? ['h2'] : ['http/1.1'];
  return {
    transportSocketMatches: [
      {
        name: 'mtls',
        match: MTLS_MATCH,
        transportSocket: upstreamMtls(identity, service.name, opts.domainSuffix, alpn),
      },
    ],
  };
}

/** Where a sidecar's inbound listener hands traffic to its own app (same host, app port). */
export function localAppCluster(
  nodeId: string,
  protocol: Protocol,
  appPort: number,
  opts: TranslateOptions,
): ResourceMessage {
  const name = localAppClusterName(nodeId);
  return {
    name,
    type: 'STATIC',
    connectTimeout: duration(opts.connectTimeout),
    loadAssignment: {
      clusterName: name,
      endpoints: [
        { lbEndpoints: [{ endpoint: { address: socketAddress('127.0.0.1', appPort) } }] },
      ],
    },
    ...upstreamProtocolOptions(protocol),
  };
}
