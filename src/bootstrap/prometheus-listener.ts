// The optional scrape listener of a sidecar (--prometheus-bind), as Consul's
// `envoy_prometheus_bind_addr`: Envoy's admin stays on 127.0.0.1 (it has write endpoints such
// as /quitquitquit), and a static listener on the given address forwards exactly
// `/stats/prometheus` to it; every other path gets a 404 from the listener itself.
import { isIP } from 'node:net';
import { isMap, isSeq, type Document } from 'yaml';

/** Where the scrape listener binds: an IP literal (0.0.0.0 for every interface) and a port. */
export interface PrometheusBind {
  readonly host: string;
  readonly port: number;
}

export const PROMETHEUS_LISTENER = 'lucid_prometheus';
export const ADMIN_CLUSTER = 'lucid_self_admin';
export const PROMETHEUS_PATH = '/stats/prometheus';

/** Parses IP:PORT ([IPv6]:PORT); undefined when not given. Throws `problem(expected)` otherwise. */
export function parsePrometheusBind(
  value: unknown,
  problem: (expected: string) => never,
): PrometheusBind | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const expected = 'IP:PORT (e.g. 0.0.0.0:20200; IPv6 as [ADDR]:PORT)';
  if (typeof value !== 'string') return problem(expected);
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(value) ?? /^([^:[\]]+):(\d{1,5})$/.exec(value);
  if (!m) return problem(expected);
  const host = m[1]!;
  const port = Number(m[2]);
  const version = isIP(host);
  // Envoy binds listeners to addresses, not names.
  if (version === 0 || (version === 6) !== value.startsWith('[')) return problem(expected);
  if (port < 1 || port > 65535) return problem('PORT 1-65535 in IP:PORT');
  return { host, port };
}

/** Adds the listener and the cluster pointing at the local admin to a filled bootstrap. */
export function addPrometheusListener(
  doc: Document,
  bind: PrometheusBind | undefined,
  adminPort: number,
): void {
  if (!bind) return;
  const resources = doc.get('static_resources', true);
  const clusters = isMap(resources) ? resources.get('clusters', true) : undefined;
  if (!isMap(resources) || !isSeq(clusters)) {
    throw new Error('bootstrap template: no static_resources.clusters');
  }
  clusters.add(
    doc.createNode({
      name: ADMIN_CLUSTER,
      type: 'STATIC',
      connect_timeout: '1s',
      load_assignment: {
        cluster_name: ADMIN_CLUSTER,
        endpoints: [
          {
            lb_endpoints: [
              {
                endpoint: {
                  address: { socket_address: { address: '127.0.0.1', port_value: adminPort } },
                },
              },
            ],
          },
        ],
      },
    }),
  );
  const listeners = doc.createNode([
    {
      name: PROMETHEUS_LISTENER,
      address: { socket_address: { address: bind.host, port_value: bind.port } },
      filter_chains: [
        {
          filters: [
            {
              name: 'envoy.filters.network.http_connection_manager',
              typed_config: {
                '@type':
                  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                stat_prefix: PROMETHEUS_LISTENER,
                route_config: {
                  name: PROMETHEUS_LISTENER,
                  virtual_hosts: [
                    {
                      name: PROMETHEUS_LISTENER,
                      domains: ['*'],
                      routes: [
                        // `path` ignores the query string: ?usedonly etc. still match.
                        { match: { path: PROMETHEUS_PATH }, route: { cluster: ADMIN_CLUSTER } },
                        { match: { prefix: '/' }, direct_response: { status: 404 } },
                      ],
                    },
                  ],
                },
                http_filters: [
                  {
                    name: 'envoy.filters.http.router',
                    typed_config: {
                      '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
                    },
                  },
                ],
              },
            },
          ],
        },
      ],
    },
  ]);
  const key = doc.createNode('listeners');
  key.commentBefore =
    ` --prometheus-bind: ${PROMETHEUS_PATH} of the admin above on ${bind.host}:${bind.port}` +
    ' for Prometheus;\n every other path answers 404 (the admin itself stays on 127.0.0.1).';
  resources.add(doc.createPair(key, listeners));
}
