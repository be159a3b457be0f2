// mTLS between sidecars: TLS contexts that take certificates from SDS (so a rotation pushes
// only secrets), and the Secret resources themselves.
import {
  gatewayServerName,
  serviceSni,
  spiffeId,
  spiffeMatcher,
  trustDomainPrefix,
} from '../ca/spiffe.js';
import type { MeshIdentity } from '../mesh/types.js';
import {
  typedAny,
  type CommonTlsContext,
  type SdsSecretConfig,
  type Secret,
  type StringMatcher,
  type TransportSocket,
} from '../protos/envoy-types.js';
import { adsConfigSource, defined } from './envoy.js';
import { IDENTITY_SECRET_NAME, TRUST_BUNDLE_SECRET_NAME } from './names.js';

const TLS_SOCKET = 'envoy.transport_sockets.tls';

/** The SPIFFE ID certificates of `service` carry (one home: ca/spiffe.ts). */
export function spiffeIdOf(identity: MeshIdentity, service: string): string {
  return spiffeId(identity, service);
}

/** The SAN matcher for certificates of `service` (exact, or Consul's any-datacenter regex). */
export function spiffeMatcherOf(identity: MeshIdentity, service: string): StringMatcher {
  const m = spiffeMatcher(identity, service);
  return 'exact' in m ? { exact: m.exact } : { safeRegex: { regex: m.regex } };
}

function sds(name: string): SdsSecretConfig {
  return { name, sdsConfig: adsConfigSource() };
}

function commonTlsContext(sanMatcher: StringMatcher, alpn: string[]): CommonTlsContext {
  return defined({
    tlsCertificateSdsSecretConfigs: [sds(IDENTITY_SECRET_NAME)],
    combinedValidationContext: {
      defaultValidationContext: {
        matchTypedSubjectAltNames: [{ sanType: 'URI', matcher: sanMatcher }],
      },
      validationContextSdsSecretConfig: sds(TRUST_BUNDLE_SECRET_NAME),
    },
    alpnProtocols: alpn.length > 0 ? alpn : undefined,
  });
}

/** Inbound: a client certificate chained to the bundle, with a SPIFFE ID in our trust domain. */
export function downstreamMtls(identity: MeshIdentity, http: boolean): TransportSocket {
  return {
    name: TLS_SOCKET,
    typedConfig: typedAny('envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext', {
      commonTlsContext: commonTlsContext(
        { prefix: trustDomainPrefix(identity.trustDomain) },
        http ? ['h2', 'http/1.1'] : [],
      ),
      requireClientCertificate: { value: true }, // google.protobuf.BoolValue
    }),
  };
}

/** Outbound to `service`: present our certificate, accept only that service's SPIFFE ID. */
export function upstreamMtls(
  identity: MeshIdentity,
  service: string,
  dnsSuffix: string,
  alpn: string[],
  sni = serviceSni(identity, service, dnsSuffix),
): TransportSocket {
  return {
    name: TLS_SOCKET,
    typedConfig: typedAny('envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext', {
      commonTlsContext: commonTlsContext(spiffeMatcherOf(identity, service), alpn),
      sni,
    }),
  };
}

/**
 * The SNI a sidecar sends for `service` (or its `subset`) in datacenter `dc` through mesh
 * gateways, which route on it without terminating TLS (format: ca/spiffe.ts; a subset is a
 * leading label, as Consul's `<subset>.<service>.…`).
 */
export function gatewaySni(
  identity: MeshIdentity,
  service: string,
  dc: string,
  subset?: string,
): string {
  const name = gatewayServerName(identity, service, dc);
  return subset !== undefined ? `${subset}.${name}` : name;
}

/** What a gateway matches for every service of a datacenter (Envoy: a leading wildcard). */
export function gatewaySniWildcard(identity: MeshIdentity, dc: string): string {
  return gatewayServerName(identity, '*', dc);
}

export interface IdentityMaterial {
  readonly certChainPem: string;
  readonly privateKeyPem: string;
}

export function identitySecret(leaf: IdentityMaterial): Secret {
  return {
    name: IDENTITY_SECRET_NAME,
    tlsCertificate: {
      certificateChain: { inlineString: leaf.certChainPem },
      privateKey: { inlineString: leaf.privateKeyPem },
    },
  };
}

export function trustBundleSecret(bundlePem: string): Secret {
  return {
    name: TRUST_BUNDLE_SECRET_NAME,
    validationContext: { trustedCa: { inlineString: bundlePem } },
  };
}
