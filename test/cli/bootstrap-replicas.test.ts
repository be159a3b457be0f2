// `lucid-mesh bootstrap --xds A --xds B --xds C`: one xds_cluster endpoint per control plane
// replica. Real Envoy checks the bootstraps (`--mode validate`) and, with the first replica
// absent, shows the sidecar still reaches one that is there.
import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { renderBootstrap, resolveBootstrapOptions } from '../../src/bootstrap/render.js';
import { bootstrapCommand } from '../../src/cli/bootstrap-command.js';
import { startControlPlane, twoServices, type TestControlPlane } from '../support/control-plane.js';
import { startEnvoy, validateBootstrap, type EnvoyHandle } from '../support/envoy.js';
import { makeAdminTls } from '../support/admin-tls.js';
import { freePorts } from '../support/ports.js';
import { runCommand } from '../support/run-command.js';

// A real CA certificate: Envoy's validation loads it.
const tls = makeAdminTls();
const PEM = tls.cert;
afterAll(() => rmSync(tls.dir, { recursive: true, force: true }));
const base = { nodeId: 'web-1', service: 'web' };

/** socket_address of every xds_cluster endpoint. */
function endpoints(yaml: string): Array<{ address: string; port_value: number }> {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const cluster = (parse(yaml) as any).static_resources.clusters[0];
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return cluster.load_assignment.endpoints[0].lb_endpoints.map((e: any) => ({
    ...e.endpoint.address.socket_address,
  }));
}

describe('several --xds: one endpoint per replica', () => {
  it('three IP literals: a STATIC cluster with three endpoints, accepted by Envoy', async () => {
    const yaml = renderBootstrap({
      ...base,
      xds: ['10.0.0.1:18000', '10.0.0.2:18000', '[fd00::3]:18000'],
    });
    expect((await validateBootstrap(yaml)).ok).toBe(true);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const cluster = (parse(yaml) as any).static_resources.clusters[0];
    expect(cluster.type).toBe('STATIC');
    expect(cluster.dns_lookup_family).toBeUndefined();
    expect(endpoints(yaml)).toEqual([
      { address: '10.0.0.1', port_value: 18000 },
      { address: '10.0.0.2', port_value: 18000 },
      { address: 'fd00::3', port_value: 18000 },
    ]);
    expect(yaml).toContain('ADS via 10.0.0.1:18000, 10.0.0.2:18000, [fd00::3]:18000');
  });

  it('hostnames (a StatefulSet): STRICT_DNS; over TLS each connection names its replica', async () => {
    const xds = ['cp-0.cp.mesh:18000', 'cp-1.cp.mesh:18000', 'cp-2.cp.mesh:18000'];
    const yaml = renderBootstrap({ ...base, xds, xdsCaPem: PEM, mode: 'delta' });
    const check = await validateBootstrap(yaml);
    expect(check.output).toContain('OK');
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const cluster = (parse(yaml) as any).static_resources.clusters[0];
    expect(cluster.type).toBe('STRICT_DNS');
    expect(cluster.dns_lookup_family).toBe('V4_PREFERRED');
    const tls = cluster.transport_socket.typed_config;
    expect(tls.auto_host_sni).toBe(true);
    expect(tls.sni).toBeUndefined();
    expect(endpoints(yaml).map((e) => e.address)).toEqual(xds.map((x) => x.split(':')[0]));
  });

  it('one hostname keeps its plain sni', () => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const doc = parse(renderBootstrap({ ...base, xds: ['cp:18000'], xdsCaPem: PEM })) as any;
    expect(doc.static_resources.clusters[0].transport_socket.typed_config.sni).toBe('cp');
  });

  it('an address given twice, or a bad one among good ones, is named', () => {
    expect(() => resolveBootstrapOptions({ ...base, xds: ['a:1', 'A:1'] })).toThrow(
      '--xds: expected each address once, got "A:1"',
    );
    expect(() => resolveBootstrapOptions({ ...base, xds: ['a:1', 'b:0'] })).toThrow(
      '--xds: expected PORT 1-65535 in HOST:PORT, got "b:0"',
    );
    expect(() => resolveBootstrapOptions({ ...base, xds: [] })).toThrow('--xds: required');
  });

  it('the command takes --xds repeatedly; --help says so', async () => {
    const out = await runCommand(bootstrapCommand, [
      '--node-id',
      'web-1',
      '--service',
      'web',
      '--xds',
      '127.0.0.1:1',
      '--xds',
      '127.0.0.2:1',
    ]);
    expect(out.code).toBe(0);
    expect(endpoints(out.stdout).map((e) => e.address)).toEqual(['127.0.0.1', '127.0.0.2']);
    const twice = await runCommand(bootstrapCommand, [
      ...['--node-id', 'w', '--service', 'web', '--xds', 'x:1', '--xds', 'x:1'],
    ]);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toBe(
      'lucid-mesh bootstrap: --xds: expected each address once, got "x:1"\n',
    );
    const help = await runCommand(bootstrapCommand, ['--help']);
    expect(help.stdout).toMatch(/repeat it once\s+per\s+replica/);
  });
});

describe('a sidecar whose first replica is down', () => {
  let cp: TestControlPlane | undefined;
  let envoy: EnvoyHandle | undefined;
  afterAll(async () => {
    await envoy?.stop();
    await cp?.close();
  });

  it('connects to the next one and gets its config', async () => {
    const [adminPort, absent] = await freePorts(2);
    cp = await startControlPlane({ catalog: twoServices() });
    envoy = await startEnvoy({
      name: 'replicas',
      adminPort: adminPort!,
      bootstrapYaml: renderBootstrap({
        nodeId: 'hello-1',
        service: 'hello',
        adminPort,
        xds: [`127.0.0.1:${absent}`, `127.0.0.1:${cp.port}`],
      }),
    });
    const e = envoy;
    await e.waitFor(
      async () => (await e.stat('control_plane.connected_state')) === 1,
      'connected to the replica that is there',
    );
    await e.waitFor(async () => (await e.clusters()).includes('world::'), 'the world cluster');
  });
});
