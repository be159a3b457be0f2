// The README's commands as a user runs them: `lucid-mesh serve` as a process, and the demo.
import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeAdminTls } from '../support/admin-tls.js';
import { repoRoot, runCli as cli, spawnCli } from '../support/cli-process.js';
import { httpGet } from '../support/http-app.js';
import { freePort, freePortBase, freePorts } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

const running: ChildProcess[] = [];
afterEach(() => {
  for (const p of running.splice(0)) p.kill('SIGKILL');
});

// Each serve gets its own CA state directory, never the user's.
function serve(args: string[], env: Record<string, string> = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'lucid-serve-data-'));
  const p = spawnCli(['serve', ...args], { LUCID_DATA_DIR: dataDir, ...env });
  running.push(p.child);
  return { ...p, dataDir };
}

describe('lucid-mesh serve', () => {
  it('serves the example catalog: ready, metrics, clean shutdown on SIGTERM', async () => {
    const [admin, xds] = await freePorts(2);
    const p = serve(['--catalog', 'examples/catalog.yaml', '--host', '127.0.0.1'], {
      ADMIN_PORT: String(admin),
      XDS_PORT: String(xds),
    });
    const ready = await waitFor(
      async () => {
        const r = await httpGet(`http://127.0.0.1:${admin}/ready`).catch(() => undefined);
        return r?.status === 200 ? r : undefined;
      },
      { what: 'serve /ready', timeoutMs: 20_000, details: p.output },
    );
    expect(JSON.parse(ready.body)).toEqual({ status: 'ready' });
    const metrics = await httpGet(`http://127.0.0.1:${admin}/metrics`);
    expect(metrics.body).toContain('lucid_mesh_snapshots_built_total 1');
    expect(metrics.body).toContain('lucid_mesh_connected_proxies{mode="sotw"} 0');
    expect(metrics.body).toContain('service_discovery_latency_seconds_count 1');
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
  });

  it('SIGTERM while it is still starting: exit 0, not death by the signal', async () => {
    // A 1,000-service catalog keeps it starting (catalog read, first snapshot) well after the
    // CA line, so the signal lands in start-up.
    const dir = mkdtempSync(join(tmpdir(), 'lucid-serve-'));
    const catalog = join(dir, 'catalog.json');
    const services = Array.from({ length: 1000 }, (_, s) => ({
      name: `svc-${s}`,
      instances: Array.from({ length: 5 }, (_, i) => ({
        id: `svc-${s}-${i}`,
        address: `127.0.${s % 250}.${i + 1}`,
        port: 8000 + (s % 1000),
      })),
    }));
    writeFileSync(catalog, JSON.stringify({ services }));
    const [admin, xds] = await freePorts(2);
    const p = serve(['--catalog', catalog, '--host', '127.0.0.1'], {
      ADMIN_PORT: String(admin),
      XDS_PORT: String(xds),
    });
    await waitFor(() => p.output().includes('certificate authority ready') || undefined, {
      what: 'the CA line of a starting serve',
      timeoutMs: 20_000,
      intervalMs: 1,
      details: p.output,
    });
    p.child.kill('SIGTERM');
    expect(await p.exited, p.output()).toBe(0);
    expect(p.output()).toContain('stopped while starting');
    expect(p.output()).not.toContain('control plane started');
    rmSync(dir, { recursive: true, force: true });
  });

  it('stays not ready on an invalid catalog, saying why', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lucid-serve-'));
    const file = join(dir, 'catalog.yaml');
    writeFileSync(
      file,
      'services:\n  - name: web\n    instances:\n      - { id: w1, address: 127.0.0.1, port: "80a" }\n',
    );
    const admin = await freePort();
    const p = serve([
      '--catalog',
      file,
      '--host',
      '127.0.0.1',
      '--admin-port',
      String(admin),
      '--xds-port',
      '0',
    ]);
    // The first answers may predate the first read of the file; wait for the verdict.
    const res = await waitFor(
      async () => {
        const r = await httpGet(`http://127.0.0.1:${admin}/ready`).catch(() => undefined);
        return r?.body.includes('last error') ? r : undefined;
      },
      { what: 'serve /ready reports the catalog error', timeoutMs: 20_000, details: p.output },
    );
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body).reason).toContain(
      'services[0].instances[0].port: expected integer 1-65535, got "80a"',
    );
    // Logs are written asynchronously: the line may follow /ready's answer by a moment.
    await waitFor(
      () =>
        p
          .output()
          .includes('services[0].instances[0].port: expected integer 1-65535, got \\"80a\\"'),
      { what: 'the rejection logged', timeoutMs: 10_000, details: p.output },
    );
  });

  it('rejects bad flags with exit code 2 and a message naming the flag', async () => {
    const p = serve(['--catalog', 'examples/catalog.yaml', '--xds-port', '80a']);
    expect(await p.exited).toBe(2);
    expect(p.output()).toContain('--xds-port: expected integer 0-65535, got "80a"');
    const r = serve([
      '--catalog',
      'examples/catalog.yaml',
      '--policy-consul-key',
      'k',
      '--mtls',
      'off',
    ]);
    expect(await r.exited).toBe(2);
    expect(r.output()).toContain(
      'lucid-mesh serve: --policy-consul-key: needs --mtls on (callers are identified by their certificates)',
    );
    const q = serve(['--catalog', 'does/not/exist.yaml']);
    expect(await q.exited).toBe(2);
    expect(q.output()).toContain('--catalog: no such file "does/not/exist.yaml"');
  });
});

describe('lucid-mesh serve: the admin API', () => {
  it('needs an operator token by default (also with --mtls off --auth none); HTTPS with --admin-tls-cert', async () => {
    const tls = makeAdminTls();
    const [admin, xds] = await freePorts(2);
    const p = serve(
      [
        '--catalog',
        'examples/catalog.yaml',
        '--host',
        '127.0.0.1',
        '--mtls',
        'off',
        '--auth',
        'none',
        '--admin-tls-cert',
        tls.certFile,
      ],
      { ADMIN_PORT: String(admin), XDS_PORT: String(xds), ADMIN_TLS_KEY: tls.keyFile },
    );
    const server = `https://127.0.0.1:${admin}`;
    const env = { LUCID_DATA_DIR: p.dataDir, LUCID_SERVER_CA: tls.certFile };
    await waitFor(
      async () =>
        (await cli(['status', '--server', server], env)).stderr.includes('needs an operator token'),
      {
        what: 'serve answers over HTTPS, asking for a token',
        timeoutMs: 20_000,
        details: p.output,
      },
    );
    const issued = await cli(['token', 'issue', '--operator', '--name', 'ops'], env);
    expect(issued.code, issued.stderr).toBe(0);
    const tokenFile = join(p.dataDir, 'operator.token');
    writeFileSync(tokenFile, issued.stdout);
    const status = await cli(['status', '--server', server, '--token-file', tokenFile], env);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain('no proxies connected');
    // The serve log says how the admin port runs.
    expect(p.output()).toMatch(/"adminAuth":"token","adminTls":true/);
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    rmSync(tls.dir, { recursive: true, force: true });
  });

  it('--admin-auth none: open, with a warning; bad admin flags are usage errors', async () => {
    const admin = await freePort();
    const p = serve([
      '--catalog',
      'examples/catalog.yaml',
      '--host',
      '127.0.0.1',
      '--admin-port',
      String(admin),
      '--xds-port',
      '0',
      '--admin-auth',
      'none',
    ]);
    const res = await waitFor(
      async () => {
        const r = await httpGet(`http://127.0.0.1:${admin}/v1/proxies`).catch(() => undefined);
        return r?.status === 200 ? r : undefined;
      },
      { what: '/v1/proxies without a token', timeoutMs: 20_000, details: p.output },
    );
    expect(JSON.parse(res.body)).toEqual({ proxies: [] });
    expect(p.output()).toContain(
      '--admin-auth none: any client that reaches the admin port can read the whole mesh',
    );
    const half = serve(['--catalog', 'examples/catalog.yaml', '--admin-tls-key', '/x.key']);
    expect(await half.exited).toBe(2);
    expect(half.output()).toContain(
      'lucid-mesh serve: --admin-tls-cert: required with --admin-tls-key',
    );
    const bad = serve(['--catalog', 'examples/catalog.yaml', '--admin-auth', 'maybe']);
    expect(await bad.exited).toBe(2);
    expect(bad.output()).toContain('--admin-auth: expected one of token | none, got "maybe"');
  });
});

describe('npm run demo', () => {
  it('brings up two real Envoy sidecars and sends a request across the mesh', async () => {
    // Envoy i gets base+100i (admin), base+100i+1 (outbound) and UDP base+100i+2 (DNS);
    // everything else base+10…15.
    const base = await freePortBase([0, 1, 100, 101, 10, 11, 12, 13, 14, 15]);
    const [xds, admin, app1, app2, side1, side2] = [10, 11, 12, 13, 14, 15].map((o) => base + o);
    const dir = mkdtempSync(join(tmpdir(), 'lucid-demo-'));
    const catalog = join(dir, 'catalog.yaml');
    writeFileSync(
      catalog,
      `services:
  - name: hello
    instances: [{ id: hello-1, address: 127.0.0.1, port: ${app1}, sidecarPort: ${side1} }]
  - name: world
    instances: [{ id: world-1, address: 127.0.0.1, port: ${app2}, sidecarPort: ${side2} }]
`,
    );
    const args = [
      '--import',
      'tsx',
      'src/demo/main.ts',
      '--once',
      '--catalog',
      catalog,
      '--mode',
      'delta',
    ];
    args.push(
      '--xds-port',
      String(xds),
      '--admin-port',
      String(admin),
      '--envoy-port-base',
      String(base),
    );
    const { stdout, code } = await new Promise<{ stdout: string; code: number }>((resolve) => {
      execFile(process.execPath, args, { cwd: repoRoot, timeout: 60_000 }, (err, stdout, stderr) =>
        resolve({ stdout: stdout + stderr, code: err ? Number(err.code ?? 1) : 0 }),
      );
    });
    expect(code, stdout).toBe(0);
    expect(stdout).toContain(`curl -H 'Host: world' http://127.0.0.1:${base + 1}/`);
    expect(stdout).toContain('"instance":"world-1"');
    expect(stdout).toContain(`dig +short @127.0.0.1 -p ${base + 2} world.lucid.internal`);
  });

  it('--multi-dc --once: web (dc1) reaches api in dc1, fails over to dc2 through both gateways and back', async () => {
    // Five Envoys (web's sidecar first, api-dc1, api-dc2, gw-dc1, gw-dc2) at base+100i and
    // base+100i+1; the control plane at base+10, 11; the copied catalog's 8 ports (3 apps,
    // 3 sidecars, 2 gateways, in file order) from base+20 on (--catalog-port-base).
    const envoyOffsets = [0, 100, 200, 300, 400].flatMap((o) => [o, o + 1]);
    const catalogOffsets = [20, 21, 22, 23, 24, 25, 26, 27];
    const base = await freePortBase([...envoyOffsets, 10, 11, ...catalogOffsets]);
    const example = join(repoRoot, 'examples/multi-dc/catalog.yaml');
    const exampleBefore = readFileSync(example, 'utf8');
    const args = [
      '--import',
      'tsx',
      'src/demo/main.ts',
      '--multi-dc',
      '--once',
      '--mode',
      'delta',
      '--xds-port',
      String(base + 10),
      '--admin-port',
      String(base + 11),
      '--envoy-port-base',
      String(base),
      '--catalog-port-base',
      String(base + 20),
    ];
    const { stdout, code } = await new Promise<{ stdout: string; code: number }>((resolve) => {
      execFile(process.execPath, args, { cwd: repoRoot, timeout: 80_000 }, (err, stdout, stderr) =>
        resolve({ stdout: stdout + stderr, code: err ? Number(err.code ?? 1) : 0 }),
      );
    });
    expect(code, stdout).toBe(0);
    // The gateways listen where the copied catalog says, not on the example's ports.
    expect(stdout).toContain(`mesh gateway gw-dc1 (dc1): listens on 127.0.0.1:${base + 26}`);
    expect(stdout).toContain(`mesh gateway gw-dc2 (dc2): listens on 127.0.0.1:${base + 27}`);
    // Normal: web's request is answered in its own datacenter.
    expect(stdout).toContain(`curl -H 'Host: api' http://127.0.0.1:${base + 1}/`);
    expect(stdout).toMatch(/^ {2}→ \{"service":"api","instance":"api-dc1"/m);
    // api-dc1 critical in the catalog → answered by api-dc2, and both gateways carried it.
    expect(stdout).toMatch(/api-dc1 marked critical → answered by api-dc2 \(dc2\) after \d+ ms/);
    expect(stdout).toMatch(/^ {2}→ \{"service":"api","instance":"api-dc2"/m);
    expect(stdout).toMatch(
      /through both gateways: gw-dc1 tcp\.mesh_gateway_dc_dc2\.downstream_cx_rx_bytes_total \d+ → [1-9]\d*, gw-dc2 tcp\.mesh_gateway_api\.downstream_cx_rx_bytes_total \d+ → [1-9]/,
    );
    // api-dc1 passing again → back in dc1.
    expect(stdout).toMatch(/api-dc1 passing again → answered by api-dc1 \(dc1\)/);
    expect(stdout).toContain('Failover check passed.');
    // It edited a copy: the example is as it was.
    expect(readFileSync(example, 'utf8')).toBe(exampleBefore);
    // Every Envoy it started is gone (their admin ports no longer answer).
    for (const o of [0, 100, 200, 300, 400]) {
      await expect(httpGet(`http://127.0.0.1:${base + o}/ready`)).rejects.toThrow();
    }
  }, 90_000);
});
