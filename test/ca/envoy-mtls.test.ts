// Real Envoy as the oracle for what the CA issues: an inbound listener that requires a client
// certificate chained to our bundle with a SPIFFE ID in the trust domain accepts our leaves,
// refuses another CA's and a missing one, and /certs shows the serial we recorded.
import { request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertificateAuthority } from '../../src/ca/authority.js';
import { MemoryCaStore } from '../../src/ca/store.js';
import type { IssuedLeaf } from '../../src/ca/types.js';
import { startEnvoy, type EnvoyHandle } from '../support/envoy.js';
import { freePorts } from '../support/ports.js';

function bootstrap(adminPort: number, port: number, server: IssuedLeaf, bundle: string): string {
  const config = {
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: adminPort } } },
    static_resources: {
      listeners: [
        {
          name: 'inbound',
          address: { socket_address: { address: '127.0.0.1', port_value: port } },
          filter_chains: [
            {
              transport_socket: {
                name: 'envoy.transport_sockets.tls',
                typed_config: {
                  '@type':
                    'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
                  require_client_certificate: true,
                  common_tls_context: {
                    tls_certificates: [
                      {
                        certificate_chain: { inline_string: server.certChainPem },
                        private_key: { inline_string: server.privateKeyPem },
                      },
                    ],
                    validation_context: {
                      trusted_ca: { inline_string: bundle },
                      match_typed_subject_alt_names: [
                        { san_type: 'URI', matcher: { prefix: 'spiffe://lucid.internal/' } },
                      ],
                    },
                  },
                },
              },
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type':
                      'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                    stat_prefix: 'inbound',
                    route_config: {
                      virtual_hosts: [
                        {
                          name: 'all',
                          domains: ['*'],
                          routes: [
                            {
                              match: { prefix: '/' },
                              direct_response: {
                                status: 200,
                                body: { inline_string: 'hello over mTLS' },
                              },
                            },
                          ],
                        },
                      ],
                    },
                    http_filters: [
                      {
                        name: 'envoy.filters.http.router',
                        typed_config: {
                          '@type':
                            'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
                        },
                      },
                    ],
                  },
                },
              ],
            },
          ],
        },
      ],
    },
  };
  return JSON.stringify(config, null, 2);
}

function get(
  port: number,
  bundle: string,
  client?: IssuedLeaf,
): Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/',
        ca: bundle,
        ...(client ? { cert: client.certChainPem, key: client.privateKeyPem } : {}),
        checkServerIdentity: () => undefined, // Envoy checks SANs; here we only test the CA
        agent: false,
        timeout: 5000,
      },
      (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', (err) => resolve({ error: err.message }));
    req.end();
  });
}

describe('Envoy accepts what the CA issues', () => {
  let envoy: EnvoyHandle;
  let port: number;
  let ca: CertificateAuthority;
  let server: IssuedLeaf;

  beforeAll(async () => {
    ca = await CertificateAuthority.open({ store: new MemoryCaStore() });
    server = await ca.issueLeaf('api');
    const [adminPort, listenPort] = await freePorts(2);
    port = listenPort!;
    envoy = await startEnvoy({
      name: 'ca-mtls',
      adminPort: adminPort!,
      bootstrapYaml: bootstrap(adminPort!, port, server, ca.trustBundlePem()),
    });
    await envoy.waitFor(
      async () => (await envoy.admin('/listeners')).includes('inbound'),
      'listener',
    );
  });
  afterAll(async () => {
    await envoy?.stop();
  });

  it('a client with a leaf from our CA gets through', async () => {
    const res = await get(port, ca.trustBundlePem(), await ca.issueLeaf('web'));
    expect(res).toEqual({ status: 200, body: 'hello over mTLS' });
  });

  it('no client certificate, or one from another CA: refused', async () => {
    expect(await get(port, ca.trustBundlePem())).toHaveProperty('error');
    const rogue = await CertificateAuthority.open({ store: new MemoryCaStore() });
    expect(await get(port, ca.trustBundlePem(), await rogue.issueLeaf('web'))).toHaveProperty(
      'error',
    );
  });

  it("/certs shows the leaf's serial and SPIFFE ID as we recorded them", async () => {
    const certs = JSON.parse(await envoy.admin('/certs'));
    const chain = certs.certificates[0].cert_chain[0];
    expect(chain.serial_number).toBe(server.serial);
    expect(chain.subject_alt_names).toContainEqual({ uri: server.spiffeId });
  });
});
