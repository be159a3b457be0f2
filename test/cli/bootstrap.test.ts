// `lucid-mesh bootstrap` and the real-Envoy harness. Real Envoy is the oracle: every
// bootstrap we generate must pass `envoy --mode validate`.
import { execFile, spawn } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  BootstrapOptionError,
  fillTemplate,
  packageRoot,
  renderBootstrap,
  resolveBootstrapOptions,
  templatePath,
  type BootstrapOptions,
} from '../../src/bootstrap/render.js';
import { consulDevAgentArgs } from '../../bench/consul-dev-agent.js';
import { bootstrapCommand } from '../../src/cli/bootstrap-command.js';
import { CONSUL_SETUP_TIMEOUT_MS } from '../support/consul.js';
import { startControlPlane, twoServices } from '../support/control-plane.js';
import { startEnvoy, validateBootstrap } from '../support/envoy.js';
import { httpGet, startHttpApp } from '../support/http-app.js';
import { freePort, freePorts } from '../support/ports.js';
import { killWithTestProcess } from '../support/reaper.js';
import { runCommand } from '../support/run-command.js';
import { cliEntry, toolPath } from '../support/tools.js';
import { waitFor } from '../support/wait.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const tmpDirs: string[] = [];
const tempDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'lucid-bootstrap-test-'));
  tmpDirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of tmpDirs) rmSync(dir, { recursive: true, force: true });
});

/** Runs the command in-process, capturing output and the exit code. */
const run = (args: string[]) => runCommand(bootstrapCommand, args);

/** Runs the real CLI (src/cli/main.ts) as a process. */
function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const entry = cliEntry;
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', entry, 'bootstrap', ...args],
      { cwd: repoRoot, timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const base = ['--node-id', 'web-1', '--service', 'web', '--xds', '127.0.0.1:18000'];

describe('renderBootstrap passes envoy --mode validate', () => {
  const cases: Array<{ title: string; opts: BootstrapOptions; clusterType: string }> = [
    {
      title: 'sotw, IPv4 control plane, defaults',
      opts: { nodeId: 'web-1', service: 'web', xds: '127.0.0.1:18000' },
      clusterType: 'STATIC',
    },
    {
      title: 'delta, IPv4 control plane',
      opts: { nodeId: 'web-1', service: 'web', xds: '10.0.0.7:18000', mode: 'delta' },
      clusterType: 'STATIC',
    },
    {
      title: 'sotw, hostname control plane, custom ports',
      opts: {
        nodeId: 'sidecar~10.0.0.1~orders-7d9f.default~svc.cluster.local',
        service: 'orders',
        xds: 'lucid-mesh.mesh-system.svc:18000',
        adminPort: 9901,
        outboundPort: 10001,
      },
      clusterType: 'STRICT_DNS',
    },
    {
      title: 'delta, hostname control plane',
      opts: { nodeId: 'n', service: 'a', xds: 'control-plane:443', mode: 'delta' },
      clusterType: 'STRICT_DNS',
    },
    {
      title: 'delta, IPv6 control plane',
      opts: { nodeId: 'n6', service: 'v6-svc', xds: '[::1]:18000', mode: 'delta' },
      clusterType: 'STATIC',
    },
  ];

  it.each(cases)('$title', async ({ opts, clusterType }) => {
    const yaml = renderBootstrap(opts);
    const result = await validateBootstrap(yaml);
    expect(result.output).toContain('OK');
    expect(result.ok).toBe(true);

    const doc = parse(yaml);
    expect(doc.node).toEqual({
      id: opts.nodeId,
      cluster: opts.service,
      metadata: {
        service: opts.service,
        outbound_port: opts.outboundPort ?? 15001,
        dns_port: 15053,
        exclusive_ports: true,
        // Delta sidecars take their outbound virtual hosts over VHDS (translate/vhds.ts).
        ...(opts.mode === 'delta' ? { vhds: true } : {}),
      },
    });
    expect(doc.admin.address.socket_address).toEqual({
      address: '127.0.0.1',
      port_value: opts.adminPort ?? 15000,
    });
    const ads = doc.dynamic_resources.ads_config;
    expect(ads.api_type).toBe(opts.mode === 'delta' ? 'DELTA_GRPC' : 'GRPC');
    expect(ads.transport_api_version).toBe('V3');
    expect(ads.set_node_on_first_message_only).toBe(true);
    expect(ads.grpc_services).toHaveLength(1);
    expect(ads.grpc_services[0].envoy_grpc.cluster_name).toBe('xds_cluster');
    expect(ads.grpc_services[0].envoy_grpc.retry_policy.retry_back_off).toBeDefined();
    expect(doc.dynamic_resources.cds_config).toEqual({ ads: {}, resource_api_version: 'V3' });
    expect(doc.dynamic_resources.lds_config).toEqual({ ads: {}, resource_api_version: 'V3' });
    // Nothing else is static: no listeners, exactly one cluster (the control plane).
    expect(Object.keys(doc).sort()).toEqual(
      ['admin', 'dynamic_resources', 'layered_runtime', 'node', 'static_resources'].sort(),
    );
    // RE2 programs up to 32768 instructions (Envoy's default refuses over 100), and the admin
    // layer that keeps /runtime_modify (test/e2e/regex-program-size).
    expect(doc.layered_runtime.layers).toEqual([
      {
        name: 'static',
        static_layer: {
          're2.max_program_size.error_level': 32768,
          're2.max_program_size.warn_level': 1000,
        },
      },
      { name: 'admin', admin_layer: {} },
    ]);
    expect(Object.keys(doc.static_resources)).toEqual(['clusters']);
    expect(doc.static_resources.clusters).toHaveLength(1);
    const cluster = doc.static_resources.clusters[0];
    expect(cluster.name).toBe('xds_cluster');
    expect(cluster.type).toBe(clusterType);
    if (clusterType === 'STATIC') expect(cluster.dns_lookup_family).toBeUndefined();
    else expect(cluster.dns_lookup_family).toBe('V4_PREFERRED');
    const address =
      cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address;
    const m = /^\[?(.*?)\]?:(\d+)$/.exec(opts.xds as string);
    expect(address).toEqual({ address: m?.[1], port_value: Number(m?.[2]) });
    expect(yaml).not.toContain('{{');
  });

  it('sotw and delta differ only in api_type and node.metadata.vhds (and the header comment)', () => {
    const opts = { nodeId: 'n', service: 's', xds: '127.0.0.1:1' };
    const sotw = parse(renderBootstrap({ ...opts, mode: 'sotw' }));
    const delta = parse(renderBootstrap({ ...opts, mode: 'delta' }));
    expect(sotw.dynamic_resources.ads_config.api_type).toBe('GRPC');
    expect(delta.dynamic_resources.ads_config.api_type).toBe('DELTA_GRPC');
    expect(sotw.node.metadata.vhds).toBeUndefined();
    expect(delta.node.metadata.vhds).toBe(true);
    delta.dynamic_resources.ads_config.api_type = 'GRPC';
    delete delta.node.metadata.vhds;
    expect(delta).toEqual(sotw);
  });

  // yaml-cpp (Envoy) reads plain y/n/on/off/yes/no as booleans and 0x1F as a number.
  const tricky = [
    'n',
    'y',
    'N',
    'on',
    'Off',
    'yes',
    'NO',
    'true',
    'null',
    '~',
    '123',
    '0x1F',
    '0o17',
    '1_000',
    '.inf',
    '1e3',
    'a:b',
    '#x',
    '-x',
    '{{nodeId}}',
    '"q"',
    "it's",
  ];
  it('node ids and services that YAML could misread stay strings (for Envoy too)', async () => {
    const services = ['n', 'y', 'on', 'off', 'yes', 'no', 'true', 'null', '123', '1e3'];
    const results = await Promise.all(
      tricky.map(async (nodeId, i) => {
        const service = services[i % services.length]!;
        const yaml = renderBootstrap({ nodeId, service, xds: '127.0.0.1:1' });
        const doc = parse(yaml);
        expect(doc.node.id).toBe(nodeId);
        expect(doc.node.cluster).toBe(service);
        expect(doc.node.metadata.service).toBe(service);
        return { nodeId, service, ...(await validateBootstrap(yaml)) };
      }),
    );
    for (const r of results)
      expect(r, `${r.nodeId} / ${r.service}: ${r.output}`).toMatchObject({ ok: true });
  });
});

describe('option validation', () => {
  const ok = { nodeId: 'n', service: 's', xds: '127.0.0.1:18000' };
  const messageFor = (input: Record<string, unknown>): string => {
    try {
      resolveBootstrapOptions({ ...ok, ...input });
    } catch (err) {
      expect(err).toBeInstanceOf(BootstrapOptionError);
      return (err as Error).message;
    }
    throw new Error(`accepted ${JSON.stringify(input)}`);
  };

  it('applies defaults', () => {
    expect(resolveBootstrapOptions(ok)).toEqual({
      nodeId: 'n',
      service: 's',
      xdsHost: '127.0.0.1',
      xdsPort: 18000,
      xdsIsIp: true,
      xdsAddresses: [{ host: '127.0.0.1', port: 18000, isIp: true }],
      mode: 'sotw',
      adminPort: 15000,
      outboundPort: 15001,
      dnsPort: 15053,
      dnsForward: true,
    });
  });

  it('takes --dns-port, 0 for none', () => {
    expect(resolveBootstrapOptions({ ...ok, dnsPort: '0' }).dnsPort).toBe(0);
    expect(resolveBootstrapOptions({ ...ok, dnsPort: 5353 }).dnsPort).toBe(5353);
    const yaml = renderBootstrap({ ...ok, dnsPort: 0 });
    expect(parse(yaml).node.metadata.dns_port).toBe(0);
  });

  it('takes --dns-forward on|off: off writes metadata.dns_forward false (only with a DNS listener)', () => {
    expect(resolveBootstrapOptions(ok).dnsForward).toBe(true);
    expect(parse(renderBootstrap(ok)).node.metadata).not.toHaveProperty('dns_forward');
    expect(resolveBootstrapOptions({ ...ok, dnsForward: 'off' }).dnsForward).toBe(false);
    expect(parse(renderBootstrap({ ...ok, dnsForward: false })).node.metadata.dns_forward).toBe(
      false,
    );
    const noDns = parse(renderBootstrap({ ...ok, dnsForward: false, dnsPort: 0 }));
    expect(noDns.node.metadata).not.toHaveProperty('dns_forward');
  });

  it.each([
    [{ dnsForward: 'maybe' }, '--dns-forward: expected on | off, got "maybe"'],
    [{ xds: 'localhost' }, '--xds: expected HOST:PORT (IPv6 as [ADDR]:PORT), got "localhost"'],
    [{ xds: ':80' }, '--xds: expected HOST:PORT (IPv6 as [ADDR]:PORT), got ":80"'],
    [{ xds: 'host:' }, '--xds: expected HOST:PORT (IPv6 as [ADDR]:PORT), got "host:"'],
    [{ xds: '::1:80' }, '--xds: expected HOST:PORT (IPv6 as [ADDR]:PORT), got "::1:80"'],
    [{ xds: 'host:0' }, '--xds: expected PORT 1-65535 in HOST:PORT, got "host:0"'],
    [{ xds: 'host:65536' }, '--xds: expected PORT 1-65535 in HOST:PORT, got "host:65536"'],
    [{ xds: 'host:http' }, '--xds: expected PORT 1-65535 in HOST:PORT, got "host:http"'],
    [{ xds: 'bad_host:80' }, '--xds: expected HOST to be an IP address or a DNS hostname'],
    [{ xds: '1.2.3:80' }, '--xds: expected HOST to be an IP address or a DNS hostname'],
    [{ xds: '[1.2.3.4]:80' }, '--xds: expected an IPv6 address inside [ ], got "[1.2.3.4]:80"'],
    [{ xds: undefined }, '--xds: required, got nothing'],
    [{ mode: 'x' }, '--mode: expected sotw | delta, got "x"'],
    [{ mode: 'SOTW' }, '--mode: expected sotw | delta, got "SOTW"'],
    [{ adminPort: '0' }, '--admin-port: expected a port 1-65535, got "0"'],
    [{ adminPort: 0 }, '--admin-port: expected a port 1-65535, got 0'],
    [{ adminPort: '65536' }, '--admin-port: expected a port 1-65535, got "65536"'],
    [{ adminPort: '15k' }, '--admin-port: expected a port 1-65535, got "15k"'],
    [{ outboundPort: '-1' }, '--outbound-port: expected a port 1-65535, got "-1"'],
    [{ outboundPort: 1.5 }, '--outbound-port: expected a port 1-65535, got 1.5'],
    [{ outboundPort: 15000 }, '--outbound-port: expected a port different from --admin-port'],
    [{ dnsPort: '-1' }, '--dns-port: expected a port 1-65535, or 0 for none, got "-1"'],
    [{ dnsPort: 'dns' }, '--dns-port: expected a port 1-65535, or 0 for none, got "dns"'],
    [{ nodeId: undefined }, '--node-id: required, got nothing'],
    [{ nodeId: '' }, '--node-id: expected a non-empty id without whitespace, got ""'],
    [{ nodeId: 'a b' }, '--node-id: expected a non-empty id without whitespace, got "a b"'],
    [{ service: '' }, '--service: expected a DNS label'],
    [{ service: 'Web' }, '--service: expected a DNS label'],
    [{ service: '-web' }, '--service: expected a DNS label'],
    [{ service: 'web-' }, '--service: expected a DNS label'],
    [{ service: 'a.b' }, '--service: expected a DNS label'],
    [{ service: 'a'.repeat(64) }, '--service: expected a DNS label'],
  ])('%j -> %s', (input, message) => {
    expect(messageFor(input)).toContain(message);
  });

  it('accepts hostnames, IPv4, bracketed IPv6 and 63-char service names', () => {
    expect(
      resolveBootstrapOptions({ ...ok, xds: 'cp.mesh.svc.cluster.local.:18000' }),
    ).toMatchObject({ xdsHost: 'cp.mesh.svc.cluster.local.', xdsIsIp: false });
    expect(resolveBootstrapOptions({ ...ok, xds: '[fd00::1]:443' })).toMatchObject({
      xdsHost: 'fd00::1',
      xdsPort: 443,
      xdsIsIp: true,
    });
    expect(resolveBootstrapOptions({ ...ok, service: 'a'.repeat(63) }).service).toHaveLength(63);
    expect(resolveBootstrapOptions({ ...ok, adminPort: '9901', mode: 'delta' })).toMatchObject({
      adminPort: 9901,
      mode: 'delta',
    });
  });
});

describe('template', () => {
  it('is found from src/ and from dist/ (package root)', () => {
    const root = packageRoot();
    expect(existsSync(join(root, 'package.json'))).toBe(true);
    expect(root.replace(/\/$/, '')).toBe(repoRoot.replace(/\/$/, ''));
    const fromDist = pathToFileURL(join(repoRoot, 'dist', 'bootstrap', 'render.js')).href;
    expect(packageRoot(fromDist)).toBe(root);
    expect(existsSync(templatePath())).toBe(true);
  });

  it('types values, drops keys whose placeholder has no value, keeps comments', () => {
    const out = fillTemplate(
      '# head\na: "{{num}}"\nb: "{{str}}" # why\nc: "{{gone}}"\nd: ["{{num}}"]\n',
      { num: 7, str: 'x', gone: undefined },
    );
    expect(parse(out)).toEqual({ a: 7, b: 'x', d: [7] });
    expect(out).toContain('# why');
    expect(out).toContain('# head');
  });

  it('rejects unknown and partial placeholders', () => {
    expect(() => fillTemplate('a: "{{nope}}"\n', {})).toThrow(/unknown \{\{nope\}\}/);
    expect(() => fillTemplate('a: "x-{{num}}"\n', { num: 1 })).toThrow(/partial placeholder/);
  });
});

describe('lucid-mesh bootstrap (in-process)', () => {
  it('prints the bootstrap on stdout', async () => {
    const r = await run([...base, '--mode', 'delta', '--admin-port', '9901']);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const doc = parse(r.stdout);
    expect(doc.dynamic_resources.ads_config.api_type).toBe('DELTA_GRPC');
    expect(doc.admin.address.socket_address.port_value).toBe(9901);
    expect(r.stdout).toBe(
      renderBootstrap({
        nodeId: 'web-1',
        service: 'web',
        xds: '127.0.0.1:18000',
        mode: 'delta',
        adminPort: 9901,
      }),
    );
  });

  it.each([
    [['--service', 'web', '--xds', '127.0.0.1:1'], '--node-id: required, got nothing'],
    [['--node-id', 'n', '--service', 'web', '--xds', 'localhost'], '--xds: expected HOST:PORT'],
    [[...base, '--mode', 'x'], '--mode: expected sotw | delta, got "x"'],
    [[...base, '--admin-port', '0'], '--admin-port: expected a port 1-65535, got "0"'],
    [[...base, '--outbound-port', 'http'], '--outbound-port: expected a port 1-65535, got "http"'],
    [[...base, '--service', 'Web_1'], '--service: expected a DNS label'],
    [[...base, '--bogus'], "unknown option '--bogus'"],
    [[...base, 'extra'], 'too many arguments'],
    [
      ['--node-id', 'n', '--service', 'web', '--xds'],
      "option '--xds <host:port>' argument missing",
    ],
  ])('%j -> exit 2: %s', async (args, message) => {
    const r = await run(args);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^lucid-mesh bootstrap: [^\n]+\n$/);
    expect(r.stderr).toContain(message);
  });

  it('-o FILE writes the file atomically and prints nothing', async () => {
    const dir = tempDir();
    const file = join(dir, 'envoy.yaml');
    writeFileSync(file, 'old content');
    const r = await run([...base, '-o', file]);
    expect(r).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(readFileSync(file, 'utf8')).toBe((await run(base)).stdout);
    expect(readdirSync(dir)).toEqual(['envoy.yaml']); // no temp file left behind
  });

  it('-o into a missing directory fails with exit 1 and leaves nothing', async () => {
    const dir = tempDir();
    const r = await run([...base, '-o', join(dir, 'missing', 'envoy.yaml')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^lucid-mesh bootstrap: -o: cannot write "[^"]+": .*\(ENOENT\)\n$/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('--help documents every flag and its default', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    for (const flag of [
      '--node-id',
      '--service',
      '--xds',
      '--mode',
      '--admin-port',
      '--outbound-port',
      '-o, --output',
    ]) {
      expect(r.stdout).toContain(flag);
    }
    expect(r.stdout).toContain('(default: "sotw")');
    expect(r.stdout).toContain('(default: 15000, env: ENVOY_ADMIN_PORT)');
    expect(r.stdout).toContain('(default: 15001)');
  });
});

describe('lucid-mesh bootstrap (process)', () => {
  it('bad input: exit code 2, one line on stderr, no stack trace', async () => {
    const r = await runCli(['--node-id', 'n', '--service', 'web', '--xds', 'localhost']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      'lucid-mesh bootstrap: --xds: expected HOST:PORT (IPv6 as [ADDR]:PORT), got "localhost"\n',
    );
  });

  it('-o FILE writes a valid bootstrap and prints nothing', async () => {
    const file = join(tempDir(), 'bootstrap.yaml');
    const r = await runCli([...base, '--mode', 'delta', '-o', file]);
    expect(r).toEqual({ code: 0, stdout: '', stderr: '' });
    const yaml = readFileSync(file, 'utf8');
    expect(parse(yaml).dynamic_resources.ads_config.api_type).toBe('DELTA_GRPC');
    expect((await validateBootstrap(yaml)).ok).toBe(true);
  });

  it('--help exits 0', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('--outbound-port');
  });
});

describe('test harness', () => {
  it('startEnvoy: admin answers, not connected to an absent control plane, stop() kills it', async () => {
    const [adminPort, xdsPort] = await freePorts(2);
    const envoy = await startEnvoy({
      name: 'smoke',
      adminPort: adminPort!,
      bootstrapYaml: renderBootstrap({
        nodeId: 'n', // yaml-cpp would read a plain n as false
        service: 'on',
        xds: `127.0.0.1:${xdsPort}`,
        adminPort,
      }),
    });
    try {
      const info = JSON.parse(await envoy.admin('/server_info'));
      expect(info.node).toMatchObject({ id: 'n', cluster: 'on' });
      expect(info.node.metadata).toEqual({
        service: 'on',
        outbound_port: 15001,
        dns_port: 15053,
        exclusive_ports: true,
      });
      expect(await envoy.stat('control_plane.connected_state')).toBe(0);
      expect(await envoy.stat('no.such.stat')).toBeUndefined();
      // It keeps trying the control plane (fast back-off).
      await envoy.waitFor(
        async () => ((await envoy.stat('cluster.xds_cluster.upstream_cx_connect_fail')) ?? 0) >= 2,
        'repeated ADS connection attempts',
      );
      const dump = await envoy.configDump();
      expect(JSON.stringify(dump)).toContain('xds_cluster');
      expect(await envoy.clusters()).toContain('xds_cluster::');
      await expect(
        envoy.waitFor(async () => false, 'something that never happens', 300),
      ).rejects.toThrow(/timed out after 300ms waiting for something that never happens/);
    } finally {
      await envoy.stop();
    }
    await envoy.stop(); // idempotent
    expect(envoy.running()).toBe(false);
    expect(() => process.kill(envoy.pid, 0)).toThrow();
    await expect(envoy.admin('/ready')).rejects.toThrow(/ECONNREFUSED/);
  });

  it('startEnvoy rejects fast with the log tail when Envoy cannot start', async () => {
    const adminPort = await freePort();
    const started = Date.now();
    await expect(
      startEnvoy({ name: 'broken', adminPort, bootstrapYaml: 'node: { id: x }\nbogus_field: 1\n' }),
    ).rejects.toThrow(/exited[\s\S]*bogus_field/);
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('validateBootstrap reports what Envoy rejects', async () => {
    const r = await validateBootstrap('node: { id: x }\nadmin: { address: 7 }\n');
    expect(r.ok).toBe(false);
    expect(r.output).toMatch(/admin|address/);
  });

  it('startHttpApp + httpGet', async () => {
    const app = await startHttpApp('echo');
    try {
      const r = await httpGet(`http://127.0.0.1:${app.port}/a/b?c=1`, { host: 'svc.example' });
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body)).toEqual({ app: 'echo', path: '/a/b?c=1', host: 'svc.example' });
      expect(app.hits).toBe(1);
    } finally {
      await app.close();
    }
    await expect(httpGet(`http://127.0.0.1:${app.port}/`)).rejects.toThrow(
      new RegExp(`GET http://127.0.0.1:${app.port}/: .*ECONNREFUSED`),
    );
  });

  it('waitFor returns the first truthy value and reports the last error on timeout', async () => {
    let n = 0;
    expect(
      await waitFor(() => (++n >= 3 ? `done after ${n}` : undefined), { what: 'n', intervalMs: 5 }),
    ).toBe('done after 3');
    await expect(
      waitFor(
        () => {
          throw new Error('boom');
        },
        { what: 'x', timeoutMs: 50, intervalMs: 10, details: () => 'DETAILS' },
      ),
    ).rejects.toThrow(/waiting for x\nlast error: boom\nDETAILS/);
  });
});

describe('locality: --datacenter, --region, --zone', () => {
  const opts = { nodeId: 'web-1', service: 'web', xds: '127.0.0.1:18000' };

  it.each([
    {
      title: 'all three',
      locality: { datacenter: 'dc1', region: 'eu-west', zone: 'eu-west-1a' },
    },
    { title: 'zone only', locality: { zone: 'z.1_b-2' } },
    { title: 'datacenter only (no node.locality)', locality: { datacenter: 'DC-East' } },
    // yaml-cpp would read these plain as booleans and numbers.
    { title: 'names YAML could misread', locality: { datacenter: 'on', region: 'y', zone: '123' } },
    { title: 'more such names', locality: { datacenter: '1e3', region: 'null', zone: 'NO' } },
  ])(
    '$title: node.locality and metadata.datacenter; envoy --mode validate',
    async ({ locality }) => {
      const { datacenter, region, zone } = locality as Record<string, string | undefined>;
      for (const mode of ['sotw', 'delta'] as const) {
        const yaml = renderBootstrap({ ...opts, mode, ...locality });
        const result = await validateBootstrap(yaml);
        expect(result, result.output).toMatchObject({ ok: true });
        const doc = parse(yaml);
        expect(doc.node.metadata).toEqual({
          service: 'web',
          outbound_port: 15001,
          dns_port: 15053,
          exclusive_ports: true,
          ...(mode === 'delta' ? { vhds: true } : {}),
          ...(datacenter !== undefined ? { datacenter } : {}),
        });
        if (region === undefined && zone === undefined)
          expect(doc.node).not.toHaveProperty('locality');
        else {
          expect(doc.node.locality).toEqual({
            ...(region !== undefined ? { region } : {}),
            ...(zone !== undefined ? { zone } : {}),
          });
        }
      }
    },
  );

  it('without them the bootstrap is exactly as before: no locality, no datacenter', () => {
    const yaml = renderBootstrap(opts);
    expect(yaml).not.toContain('locality');
    expect(yaml).not.toContain('datacenter');
    expect(renderBootstrap({ ...opts, datacenter: '', region: '', zone: '' })).toBe(yaml);
    expect(resolveBootstrapOptions(opts)).not.toHaveProperty('locality');
  });

  it('resolves only the parts given', () => {
    expect(resolveBootstrapOptions({ ...opts, region: 'r', zone: 'z' }).locality).toEqual({
      region: 'r',
      zone: 'z',
    });
    expect(resolveBootstrapOptions({ ...opts, datacenter: 'dc2' }).locality).toEqual({
      datacenter: 'dc2',
    });
  });

  it.each([
    [{ datacenter: 'dc 1' }, '--datacenter: expected a name (letters, digits, . _ -', '"dc 1"'],
    [{ region: '-west' }, '--region: expected a name', '"-west"'],
    [{ zone: 'a/b' }, '--zone: expected a name', '"a/b"'],
    [{ zone: 'z'.repeat(64) }, '--zone: expected a name', 'zzzz'],
    [{ zone: 'zone-ä' }, '--zone: expected a name', '"zone-ä"'],
    [{ region: 7 }, '--region: expected a string, got 7', ''],
  ])('%j -> %s', (input, message, value) => {
    let error: unknown;
    try {
      resolveBootstrapOptions({ ...opts, ...input });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(BootstrapOptionError);
    expect((error as Error).message).toContain(message);
    expect((error as Error).message).toContain(value);
  });
  it('accepts a 63-character name', () => {
    expect(resolveBootstrapOptions({ ...opts, zone: 'z'.repeat(63) }).locality).toEqual({
      zone: 'z'.repeat(63),
    });
  });

  it('the command takes the flags, and LUCID_DATACENTER / LUCID_REGION / LUCID_ZONE', async () => {
    const flags = await run([...base, '--datacenter', 'dc1', '--region', 'r1', '--zone', 'z1']);
    expect(flags).toMatchObject({ code: 0, stderr: '' });
    expect(flags.stdout).toBe(
      renderBootstrap({ ...opts, datacenter: 'dc1', region: 'r1', zone: 'z1' }),
    );
    const saved = { ...process.env };
    try {
      Object.assign(process.env, { LUCID_DATACENTER: 'dc2', LUCID_REGION: 'r2', LUCID_ZONE: 'z2' });
      const env = await run([...base, '--zone', 'z3']); // a flag wins over its env
      expect(env).toMatchObject({ code: 0, stderr: '' });
      expect(parse(env.stdout).node).toMatchObject({
        metadata: { datacenter: 'dc2' },
        locality: { region: 'r2', zone: 'z3' },
      });
      process.env.LUCID_ZONE = 'bad zone';
      const bad = await run(base);
      expect(bad).toEqual({
        code: 2,
        stdout: '',
        stderr:
          'lucid-mesh bootstrap: --zone: expected a name (letters, digits, . _ -; up to 63, a letter or digit first), got "bad zone"\n',
      });
    } finally {
      for (const key of ['LUCID_DATACENTER', 'LUCID_REGION', 'LUCID_ZONE']) {
        if (saved[key] === undefined) delete process.env[key];
        else process.env[key] = saved[key];
      }
    }
  });

  it('--help lists them with their env', async () => {
    const r = await run(['--help']);
    expect(r.stdout).toContain('env: LUCID_DATACENTER');
    expect(r.stdout).toContain('env: LUCID_REGION');
    expect(r.stdout).toContain('env: LUCID_ZONE');
  });

  it('a real Envoy sends its locality and the control plane reads it', async () => {
    const cp = await startControlPlane({ catalog: twoServices() });
    const [adminPort, outboundPort] = (await freePorts(2)) as [number, number];
    const envoy = await startEnvoy({
      name: 'located',
      adminPort,
      bootstrapYaml: renderBootstrap({
        nodeId: 'located-1',
        service: 'hello',
        xds: `127.0.0.1:${cp.port}`,
        adminPort,
        outboundPort,
        mode: 'delta',
        datacenter: 'dc2',
        region: 'on', // stays a string all the way
        zone: 'z-1',
      }),
    });
    try {
      const info = JSON.parse(await envoy.admin('/server_info'));
      expect(info.node.locality).toMatchObject({ region: 'on', zone: 'z-1' });
      expect(info.node.metadata).toMatchObject({ datacenter: 'dc2' });
      const proxy = await waitFor(
        () => [...cp.server.connected.values()].find((s) => s.proxy?.nodeId === 'located-1')?.proxy,
        { what: 'located-1 connected', details: () => envoy.logs() },
      );
      expect(proxy).toEqual({
        nodeId: 'located-1',
        service: 'hello',
        outboundPort,
        locality: { datacenter: 'dc2', region: 'on', zone: 'z-1' },
        dnsPort: 15053,
        exclusivePorts: true,
        vhds: true,
      });
    } finally {
      await envoy.stop();
      await cp.close();
    }
  });
});

/**
 * A Consul dev agent in datacenter "dc-east" whose node has meta region/zone: test/support's
 * startConsul has no way to pass -datacenter or -node-meta.
 */
async function startLocatedConsul(extraArgs: string[] = []): Promise<{
  address: string;
  /** Any HTTP API call as the management token (when ACLs are on); throws unless 200. */
  api(method: string, path: string, body?: unknown): Promise<unknown>;
  register(service: Record<string, unknown>): Promise<void>;
  stop(): Promise<void>;
}> {
  const [http, serfLan, serfWan, server] = (await freePorts(4)) as [number, number, number, number];
  const base = `http://127.0.0.1:${http}`;
  const proc = spawn(
    toolPath('consul'),
    [
      ...consulDevAgentArgs('located', { http, serfLan, serfWan, server }),
      '-datacenter',
      'dc-east',
      '-node-meta',
      'region:eu-central',
      '-node-meta',
      'zone:eu-central-1b',
      ...extraArgs,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  killWithTestProcess(proc, 'consul');
  let output = '';
  proc.stdout?.on('data', (c: Buffer) => void (output += c.toString('utf8')));
  proc.stderr?.on('data', (c: Buffer) => void (output += c.toString('utf8')));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };
  const api = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = httpRequest(
        `${base}${path}`,
        { method, agent: false, headers: { 'x-consul-token': MANAGEMENT_TOKEN } },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => void (text += c.toString('utf8')));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
    if (r.status !== 200) throw new Error(`consul ${method} ${path}: HTTP ${r.status}: ${r.body}`);
    return r.body ? (JSON.parse(r.body) as unknown) : undefined;
  };
  try {
    await waitFor(async () => (await api('GET', '/v1/catalog/node/located')) !== undefined, {
      what: 'consul node "located" in the catalog',
      timeoutMs: 30_000,
      details: () => output,
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    address: `127.0.0.1:${http}`,
    api,
    register: async (service) => {
      await api('PUT', '/v1/agent/service/register', service);
    },
    stop,
  };
}

const MANAGEMENT_TOKEN = '3f9a2b1c-0d4e-4f5a-8b6c-7d8e9f0a1b2c';

describe('locality from the Consul registration (--consul-service-id)', () => {
  let consul: Awaited<ReturnType<typeof startLocatedConsul>>;
  const xds = ['--xds', '127.0.0.1:18000'];
  const fromConsul = (id: string, ...more: string[]) =>
    run(['--consul-service-id', id, '--consul', consul.address, ...xds, ...more]);
  /** stderr but the warnings that these sidecars, all on one agent at the default ports, share them. */
  const errorsOf = (stderr: string): string[] =>
    stderr.split('\n').filter((line) => line !== '' && !line.includes(': warning: '));

  beforeAll(async () => {
    consul = await startLocatedConsul();
    // region and zone in the app's Meta (Consul copies it to the sidecar).
    await consul.register({
      Name: 'web',
      ID: 'web-1',
      Port: 9090,
      Meta: { region: 'eu-west', zone: 'eu-west-1a' },
      Connect: { SidecarService: {} },
    });
    // Nothing in Meta: the node's meta.
    await consul.register({
      Name: 'api',
      ID: 'api-1',
      Port: 8080,
      Connect: { SidecarService: {} },
    });
    // The app's zone wins over a sidecar's own; the region from the node.
    await consul.register({
      Name: 'db',
      ID: 'db-1',
      Port: 5432,
      Meta: { zone: 'app-zone' },
      Connect: { SidecarService: { Meta: { zone: 'sidecar-zone' } } },
    });
    // A sidecar with its own Meta and an app without.
    await consul.register({
      Name: 'cache',
      ID: 'cache-1',
      Port: 6379,
      Connect: { SidecarService: { Meta: { region: 'sidecar-region' } } },
    });
    await consul.register({
      Name: 'bad',
      ID: 'bad-1',
      Port: 8081,
      Meta: { zone: 'us east 1' },
      Connect: { SidecarService: {} },
    });
  }, CONSUL_SETUP_TIMEOUT_MS);
  afterAll(async () => {
    await consul?.stop();
  });

  it.each([
    ['web-1', 'web', { region: 'eu-west', zone: 'eu-west-1a' }],
    ['api-1', 'api', { region: 'eu-central', zone: 'eu-central-1b' }],
    ['db-1-sidecar-proxy', 'db', { region: 'eu-central', zone: 'app-zone' }],
    ['cache-1', 'cache', { region: 'sidecar-region', zone: 'eu-central-1b' }],
  ])('%s: datacenter from the agent, %j', async (id, service, locality) => {
    const r = await fromConsul(id);
    expect(errorsOf(r.stderr)).toEqual([]);
    expect(r.code).toBe(0);
    const nodeId = id.endsWith('-sidecar-proxy') ? id : `${id}-sidecar-proxy`;
    expect(r.stdout).toBe(
      renderBootstrap({
        nodeId,
        service,
        xds: '127.0.0.1:18000',
        datacenter: 'dc-east',
        ...locality,
      }),
    );
    const result = await validateBootstrap(r.stdout);
    expect(result, result.output).toMatchObject({ ok: true });
  });

  it('flags and env win over the registration, part by part', async () => {
    const r = await fromConsul('web-1', '--zone', 'z-flag', '--datacenter', 'dc-flag');
    expect(r.code).toBe(0);
    expect(errorsOf(r.stderr)).toEqual([]);
    expect(parse(r.stdout).node).toMatchObject({
      metadata: { datacenter: 'dc-flag' },
      locality: { region: 'eu-west', zone: 'z-flag' },
    });
    process.env.LUCID_REGION = 'r-env';
    try {
      const env = await fromConsul('api-1');
      expect(parse(env.stdout).node).toMatchObject({
        metadata: { datacenter: 'dc-east' },
        locality: { region: 'r-env', zone: 'eu-central-1b' },
      });
    } finally {
      delete process.env.LUCID_REGION;
    }
  });

  it('a registration value the catalog would refuse: exit 2, naming where it came from', async () => {
    const r = await fromConsul('bad-1');
    expect(r).toEqual({
      code: 2,
      stdout: '',
      stderr:
        'lucid-mesh bootstrap: --zone: expected a name (letters, digits, . _ -; up to 63, a letter or digit first), got "us east 1" (from Meta.zone of the Consul registration "bad-1")\n',
    });
    // --zone fixes it.
    expect((await fromConsul('bad-1', '--zone', 'us-east-1')).code).toBe(0);
  });
});

describe('locality from Consul when the token may not read the agent (ACLs)', () => {
  let consul: Awaited<ReturnType<typeof startLocatedConsul>>;
  let sidecarToken: string;

  beforeAll(async () => {
    consul = await startLocatedConsul([
      '-hcl',
      `acl { enabled = true, default_policy = "deny", tokens { initial_management = "${MANAGEMENT_TOKEN}", agent = "${MANAGEMENT_TOKEN}" } }`,
    ]);
    await consul.register({
      Name: 'api',
      ID: 'api-1',
      Port: 8080,
      Connect: { SidecarService: {} },
    });
    // What a sidecar's token typically may do: read services, not the agent.
    await consul.api('PUT', '/v1/acl/policy', {
      Name: 'sidecar',
      Rules: 'service_prefix "" { policy = "read" }',
    });
    const token = (await consul.api('PUT', '/v1/acl/token', {
      Policies: [{ Name: 'sidecar' }],
    })) as { SecretID: string };
    sidecarToken = token.SecretID;
  }, CONSUL_SETUP_TIMEOUT_MS);
  afterAll(async () => {
    await consul?.stop();
  });

  it('without agent:read: the datacenter from the registration, no node meta, no failure', async () => {
    const args = ['--consul-service-id', 'api-1', '--consul', consul.address];
    const r = await run([...args, '--consul-token', sidecarToken, '--xds', '127.0.0.1:18000']);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(parse(r.stdout).node.metadata).toMatchObject({ datacenter: 'dc-east' });
    expect(parse(r.stdout).node).not.toHaveProperty('locality');
    // With agent:read (the management token), the node's meta too.
    const full = await run([...args, '--consul-token', MANAGEMENT_TOKEN, '--xds', '127.0.0.1:1']);
    expect(parse(full.stdout).node.locality).toEqual({
      region: 'eu-central',
      zone: 'eu-central-1b',
    });
  });
});
