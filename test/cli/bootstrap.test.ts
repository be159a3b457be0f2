// `lucid-mesh bootstrap` and the real-Envoy harness. Real Envoy is the oracle: every
// bootstrap we generate must pass `envoy --mode validate`.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
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
import { bootstrapCommand } from '../../src/cli/bootstrap-command.js';
import { startEnvoy, validateBootstrap } from '../support/envoy.js';
import { httpGet, startHttpApp } from '../support/http-app.js';
import { freePort, freePorts } from '../support/ports.js';
import { runCommand } from '../support/run-command.js';
import { cliEntry } from '../support/tools.js';
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
      metadata: { service: opts.service, outbound_port: opts.outboundPort ?? 15001 },
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
      ['admin', 'dynamic_resources', 'node', 'static_resources'].sort(),
    );
    expect(Object.keys(doc.static_resources)).toEqual(['clusters']);
    expect(doc.static_resources.clusters).toHaveLength(1);
    const cluster = doc.static_resources.clusters[0];
    expect(cluster.name).toBe('xds_cluster');
    expect(cluster.type).toBe(clusterType);
    if (clusterType === 'STATIC') expect(cluster.dns_lookup_family).toBeUndefined();
    else expect(cluster.dns_lookup_family).toBe('V4_PREFERRED');
    const address =
      cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address;
    const m = /^\[?(.*?)\]?:(\d+)$/.exec(opts.xds);
    expect(address).toEqual({ address: m?.[1], port_value: Number(m?.[2]) });
    expect(yaml).not.toContain('{{');
  });

  it('sotw and delta differ only in api_type (and the header comment)', () => {
    const opts = { nodeId: 'n', service: 's', xds: '127.0.0.1:1' };
    const sotw = parse(renderBootstrap({ ...opts, mode: 'sotw' }));
    const delta = parse(renderBootstrap({ ...opts, mode: 'delta' }));
    expect(sotw.dynamic_resources.ads_config.api_type).toBe('GRPC');
    expect(delta.dynamic_resources.ads_config.api_type).toBe('DELTA_GRPC');
    delta.dynamic_resources.ads_config.api_type = 'GRPC';
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
      mode: 'sotw',
      adminPort: 15000,
      outboundPort: 15001,
    });
  });

  it.each([
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
      expect(info.node.metadata).toEqual({ service: 'on', outbound_port: 15001 });
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
