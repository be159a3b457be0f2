// The arguments of a throwaway Consul dev agent on loopback: HTTP API only (DNS and gRPC off),
// every port given, so several can run side by side. Shared by the benchmark's Consul run and
// the tests' Consul support (test/support/consul.ts).

export interface ConsulDevPorts {
  readonly http: number;
  readonly serfLan: number;
  readonly serfWan: number;
  readonly server: number;
}

export function consulDevAgentArgs(
  node: string,
  ports: ConsulDevPorts,
  logLevel = 'warn',
): string[] {
  return [
    'agent',
    '-dev',
    '-node',
    node,
    '-bind',
    '127.0.0.1',
    '-client',
    '127.0.0.1',
    '-http-port',
    String(ports.http),
    '-dns-port',
    '-1',
    '-grpc-port',
    '-1',
    '-grpc-tls-port',
    '-1',
    '-serf-lan-port',
    String(ports.serfLan),
    '-serf-wan-port',
    String(ports.serfWan),
    '-server-port',
    String(ports.server),
    '-log-level',
    logLevel,
  ];
}
