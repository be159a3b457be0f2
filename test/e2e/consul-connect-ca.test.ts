// `serve --ca consul-connect` against a real Consul 1.16 (-dev, Connect on, its own xDS on a
// gRPC port) and real Envoy: hello's sidecar is Consul's own (`consul connect envoy
// -bootstrap`, run with our Envoy), world's is a lucid-mesh sidecar (`lucid-mesh serve --source
// consul --ca consul-connect` as a process, `lucid-mesh bootstrap --consul-service-id`). They
// call each other over mTLS in both directions with certificates from Consul's CA, and a Consul
// intention decides on either end: Consul's sidecar enforces it for hello, lucid-mesh's RBAC for
// world.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSUL_SETUP_TIMEOUT_MS, startConsul, type ConsulAgent } from '../support/consul.js';
import { startEnvoy, type EnvoyHandle } from '../support/envoy.js';
import { httpGet, startHttpApp, type HttpApp, type HttpResult } from '../support/http-app.js';
import { freePorts } from '../support/ports.js';
import { killWithTestProcess } from '../support/reaper.js';
import { cliEntry, toolPath } from '../support/tools.js';
import { waitFor } from '../support/wait.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

function run(
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const opts = { cwd: repoRoot, timeout: 60_000, env: { ...process.env, ...env } };
    execFile(file, args, opts, (err, stdout, stderr) =>
      resolve({
        code: err ? (typeof err.code === 'number' ? err.code : -1) : 0,
        stdout,
        stderr,
      }),
    );
  });
}

describe('serve --ca consul-connect: a Consul sidecar and a lucid-mesh sidecar', () => {
  let consul: ConsulAgent;
  let helloApp: HttpApp, worldApp: HttpApp;
  let serve: ChildProcess | undefined;
  let serveExited: Promise<void> = Promise.resolve();
  let serveOutput = '';
  let helloEnvoy: EnvoyHandle | undefined;
  let worldEnvoy: EnvoyHandle | undefined;
  let helloSidecarPort: number, helloAdminPort: number, helloUpstreamPort: number;
  let worldSidecarPort: number, worldAdminPort: number, worldOutboundPort: number;
  let xdsPort: number, adminPort: number;
  let trustDomain: string;

  /** hello → world: hello's app calls its Consul sidecar's upstream listener for world. */
  const helloToWorld = (): Promise<HttpResult | undefined> =>
    httpGet(`http://127.0.0.1:${helloUpstreamPort}/from-hello`, {}, 3000).catch(() => undefined);
  /** world → hello: world's app calls its lucid-mesh sidecar's outbound listener. */
  const worldToHello = (): Promise<HttpResult | undefined> =>
    httpGet(`http://127.0.0.1:${worldOutboundPort}/from-world`, { host: 'hello' }, 3000).catch(
      () => undefined,
    );

  const intention = async (source: string, destination: string, action: 'allow' | 'deny') => {
    const res = await consul.api('PUT', '/v1/config', {
      Kind: 'service-intentions',
      Name: destination,
      Sources: [{ Name: source, Action: action }],
    });
    expect(res.status, res.body).toBe(200);
  };

  beforeAll(async () => {
    [helloApp, worldApp] = await Promise.all([startHttpApp('hello'), startHttpApp('world')]);
    [
      helloSidecarPort,
      helloAdminPort,
      helloUpstreamPort,
      worldSidecarPort,
      worldAdminPort,
      worldOutboundPort,
      xdsPort,
      adminPort,
    ] = (await freePorts(8)) as [number, number, number, number, number, number, number, number];
    consul = await startConsul({ grpc: true });
    trustDomain = (
      JSON.parse((await consul.api('GET', '/v1/agent/connect/ca/roots')).body) as {
        TrustDomain: string;
      }
    ).TrustDomain;
    await consul.register({
      Name: 'hello',
      ID: 'hello-1',
      Address: '127.0.0.1',
      Port: helloApp.port,
      Connect: {
        SidecarService: {
          Port: helloSidecarPort,
          Proxy: { Upstreams: [{ DestinationName: 'world', LocalBindPort: helloUpstreamPort }] },
        },
      },
    });
    await consul.register({
      Name: 'world',
      ID: 'world-1',
      Address: '127.0.0.1',
      Port: worldApp.port,
      Connect: {
        SidecarService: {
          Port: worldSidecarPort,
          Proxy: {
            Config: { lucid_admin_port: worldAdminPort, lucid_outbound_port: worldOutboundPort },
          },
        },
      },
    });

    // The control plane as a user runs it.
    const child = spawn(
      process.execPath,
      [
        ...['--import', 'tsx', cliEntry, 'serve', '--source', 'consul'],
        ...['--consul', consul.address, '--ca', 'consul-connect'],
        ...['--host', '127.0.0.1', '--xds-port', String(xdsPort)],
        ...['--admin-port', String(adminPort), '--auth', 'none', '--admin-auth', 'none'],
        ...['--data-dir', mkdtempSync(join(tmpdir(), 'lucid-consul-connect-'))],
      ],
      { cwd: repoRoot, stdio: 'pipe' },
    );
    serve = child;
    killWithTestProcess(child, 'lucid-mesh serve');
    child.stdout!.on('data', (c: Buffer) => (serveOutput += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (serveOutput += c.toString()));
    serveExited = new Promise((resolve) => child.once('exit', () => resolve()));
    await waitFor(
      async () =>
        (await httpGet(`http://127.0.0.1:${adminPort}/ready`).catch(() => undefined))?.status ===
        200,
      {
        what: 'lucid-mesh serve ready',
        timeoutMs: 60_000,
        details: () => serveOutput.slice(-4000),
        failIf: () => (child.exitCode !== null ? `serve exited ${child.exitCode}` : undefined),
      },
    );

    // world: a lucid-mesh sidecar bootstrapped from its Consul registration.
    const worldBoot = await run(process.execPath, [
      ...['--import', 'tsx', cliEntry, 'bootstrap', '--consul-service-id', 'world-1'],
      ...['--consul', consul.address, '--xds', `127.0.0.1:${xdsPort}`],
    ]);
    expect(worldBoot.code, worldBoot.stderr).toBe(0);
    // hello: Consul's own sidecar, Consul's bootstrap, Consul's xDS.
    const helloBoot = await run(toolPath('consul'), [
      ...['connect', 'envoy', '-sidecar-for', 'hello-1', '-bootstrap'],
      ...['-http-addr', consul.address, '-grpc-addr', consul.grpcAddress!],
      ...['-admin-bind', `127.0.0.1:${helloAdminPort}`, '-ignore-envoy-compatibility'],
    ]);
    expect(helloBoot.code, helloBoot.stderr).toBe(0);
    [worldEnvoy, helloEnvoy] = await Promise.all([
      startEnvoy({
        name: 'world-1-sidecar-proxy',
        adminPort: worldAdminPort,
        bootstrapYaml: worldBoot.stdout,
      }),
      startEnvoy({
        name: 'hello-1-sidecar-proxy',
        adminPort: helloAdminPort,
        bootstrapYaml: helloBoot.stdout,
      }),
    ]);
  }, CONSUL_SETUP_TIMEOUT_MS);

  afterAll(async () => {
    await Promise.all([helloEnvoy?.stop(), worldEnvoy?.stop()]);
    serve?.kill('SIGTERM');
    await serveExited;
    await consul?.stop();
    await Promise.all([helloApp?.close(), worldApp?.close()]);
  });

  it("world's lucid-mesh sidecar holds a Consul leaf with Consul's SPIFFE ID", async () => {
    const worldId = `spiffe://${trustDomain}/ns/default/dc/dc1/svc/world`;
    const certs = await worldEnvoy!.waitFor(async () => {
      const body = JSON.parse(await worldEnvoy!.admin('/certs')) as {
        certificates: Array<{
          cert_chain: Array<{ serial_number: string; subject_alt_names: Array<{ uri?: string }> }>;
          ca_cert: Array<{ serial_number: string }>;
        }>;
      };
      return body.certificates.find((c) =>
        c.cert_chain.some((l) => l.subject_alt_names.some((s) => s.uri === worldId)),
      );
    }, `a certificate for ${worldId} in world's /certs`);
    // Its trust bundle is Consul's root.
    const roots = JSON.parse((await consul.api('GET', '/v1/agent/connect/ca/roots')).body) as {
      Roots: Array<{ RootCert: string }>;
    };
    const rootSerial = new X509Certificate(roots.Roots[0]!.RootCert).serialNumber.toLowerCase();
    // Its expiry is exported like the built-in CA's leaves.
    const leafSerial = certs.cert_chain[0]!.serial_number.replace(/^0+/, '');
    const metrics = (await httpGet(`http://127.0.0.1:${adminPort}/metrics`)).body;
    const gauge = metrics
      .split('\n')
      .find((l) =>
        l.startsWith(
          `lucid_mesh_certificate_expiry_seconds{kind="leaf",service="world",serial="${leafSerial}"}`,
        ),
      );
    expect(gauge, metrics.slice(0, 2000)).toBeDefined();
    expect(Number(gauge!.split(' ').pop())).toBeGreaterThan(3600);
    expect(certs.ca_cert.map((c) => c.serial_number.replace(/^0+/, ''))).toContain(
      rootSerial.replace(/^0+/, ''),
    );
  });

  it('hello (Consul sidecar) → world (lucid-mesh sidecar) and back, over mTLS', async () => {
    // Consul lists a sidecar once its TCP check sees the listener (every 10 s).
    const toWorld = await waitFor(async () => (await helloToWorld())?.status === 200 && 1, {
      what: 'hello → world = 200',
      timeoutMs: 45_000,
      details: () => `${serveOutput.slice(-2000)}\n${helloEnvoy!.logs().slice(-2000)}`,
    });
    expect(toWorld).toBe(1);
    const res = (await helloToWorld())!;
    expect(JSON.parse(res.body)).toMatchObject({ app: 'world', path: '/from-hello' });
    await waitFor(async () => (await worldToHello())?.status === 200, {
      what: 'world → hello = 200',
      timeoutMs: 45_000,
      details: () => `${serveOutput.slice(-2000)}\n${worldEnvoy!.logs().slice(-2000)}`,
    });
    const back = (await worldToHello())!;
    expect(JSON.parse(back.body)).toMatchObject({ app: 'hello', path: '/from-world' });
    // Both hops were TLS: the lucid-mesh sidecar's inbound and outbound handshakes succeeded.
    const stats = await worldEnvoy!.stats();
    const handshakes = [...stats].filter(([k]) => k.endsWith('ssl.handshake'));
    expect(handshakes.some(([k, v]) => k.startsWith('listener.') && Number(v) > 0)).toBe(true);
    expect(handshakes.some(([k, v]) => k.startsWith('cluster.hello') && Number(v) > 0)).toBe(true);
  });

  it('an intention denying hello → world: lucid-mesh RBAC answers 403; world → hello still works', async () => {
    await intention('hello', 'world', 'deny');
    await waitFor(async () => (await helloToWorld())?.status === 403, {
      what: 'hello → world = 403',
      timeoutMs: 15_000,
    });
    const before = worldApp.hits;
    for (let i = 0; i < 5; i++) expect((await helloToWorld())?.status).toBe(403);
    expect(worldApp.hits).toBe(before);
    expect((await worldToHello())?.status).toBe(200);
    await intention('hello', 'world', 'allow');
    await waitFor(async () => (await helloToWorld())?.status === 200, {
      what: 'hello → world = 200 again',
      timeoutMs: 15_000,
    });
  });

  it("an intention denying world → hello: Consul's sidecar refuses the lucid-mesh caller", async () => {
    await intention('world', 'hello', 'deny');
    // Consul's tcp public listener closes the connection: world's sidecar answers 503.
    await waitFor(async () => (await worldToHello())?.status === 503, {
      what: 'world → hello refused',
      timeoutMs: 15_000,
    });
    const before = helloApp.hits;
    for (let i = 0; i < 5; i++) expect((await worldToHello())?.status).toBe(503);
    expect(helloApp.hits).toBe(before);
    const denied = [...(await helloEnvoy!.stats())].filter(
      ([k, v]) => k.endsWith('rbac.denied') && Number(v) > 0,
    );
    expect(denied.length).toBeGreaterThan(0);
    expect((await helloToWorld())?.status).toBe(200);
    await intention('world', 'hello', 'allow');
    await waitFor(async () => (await worldToHello())?.status === 200, {
      what: 'world → hello = 200 again',
      timeoutMs: 15_000,
    });
  });

  it('a Consul CA root rotation reaches the lucid-mesh sidecar: new trust bundle and leaf, calls keep working', async () => {
    const leafSerial = async (): Promise<string | undefined> => {
      const body = JSON.parse(await worldEnvoy!.admin('/certs')) as {
        certificates: Array<{ cert_chain: Array<{ serial_number: string }> }>;
      };
      return body.certificates.find((c) => c.cert_chain.length > 0)?.cert_chain[0]?.serial_number;
    };
    const caSerials = async (): Promise<string[]> => {
      const body = JSON.parse(await worldEnvoy!.admin('/certs')) as {
        certificates: Array<{ ca_cert: Array<{ serial_number: string }> }>;
      };
      return body.certificates.flatMap((c) => c.ca_cert.map((a) => a.serial_number));
    };
    const oldLeaf = await leafSerial();
    expect(oldLeaf).toBeDefined();
    // A new key type makes Consul generate a new root (cross-signed by the old one).
    const t0 = Date.now();
    const res = await consul.api('PUT', '/v1/connect/ca/configuration', {
      Provider: 'consul',
      Config: { PrivateKeyType: 'rsa', PrivateKeyBits: 2048 },
    });
    expect(res.status, res.body).toBe(200);
    const roots = JSON.parse((await consul.api('GET', '/v1/agent/connect/ca/roots')).body) as {
      Roots: Array<{ RootCert: string; Active: boolean }>;
    };
    const serialOf = (pem: string) =>
      new X509Certificate(pem).serialNumber.toLowerCase().replace(/^0+/, '');
    const active = roots.Roots.find((r) => r.Active)!;
    await worldEnvoy!.waitFor(
      async () =>
        (await caSerials()).map((s) => s.replace(/^0+/, '')).includes(serialOf(active.RootCert)),
      "Consul's new root in world's trust bundle",
      15_000,
    );
    const bundleMs = Date.now() - t0;
    await worldEnvoy!.waitFor(
      async () => ((await leafSerial()) ?? oldLeaf) !== oldLeaf,
      "a new Consul leaf in world's sidecar",
      // The agent re-issues leaves at a random point within 30 s of a root change.
      45_000,
    );
    console.info(
      `Consul root rotation → lucid-mesh sidecar: new bundle after ${bundleMs} ms, new leaf after ${Date.now() - t0} ms`,
    );
    await waitFor(async () => (await helloToWorld())?.status === 200, {
      what: 'hello → world = 200 after the rotation',
      timeoutMs: 15_000,
    });
    await waitFor(async () => (await worldToHello())?.status === 200, {
      what: 'world → hello = 200 after the rotation',
      timeoutMs: 15_000,
    });
  });

  it('usage errors name the flag: an unknown --ca, --mtls off, an unreachable Consul (LUCID_CA), --trust-domain', async () => {
    const [closed] = (await freePorts(1)) as [number];
    const catalog = join(mkdtempSync(join(tmpdir(), 'lucid-consul-connect-catalog-')), 'c.yaml');
    writeFileSync(catalog, 'services: []\n');
    const serveArgs = (more: string[]) => [
      ...['--import', 'tsx', cliEntry, 'serve', '--catalog', catalog],
      ...['--auth', 'none', '--admin-auth', 'none', '--xds-port', '0', '--admin-port', '0'],
      ...['--data-dir', mkdtempSync(join(tmpdir(), 'lucid-consul-connect-flags-'))],
      ...more,
    ];
    const [unknown, noMtls, unreachable, trustDomainFlag] = await Promise.all([
      run(process.execPath, serveArgs(['--ca', 'vault'])),
      run(process.execPath, serveArgs(['--ca', 'consul-connect', '--mtls', 'off'])),
      run(process.execPath, serveArgs(['--consul', `127.0.0.1:${closed}`]), {
        LUCID_CA: 'consul-connect',
      }),
      run(process.execPath, serveArgs(['--ca', 'consul-connect', '--trust-domain', 'x.example'])),
    ]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/--ca.*vault/);
    expect(unknown.stderr).toContain('consul-connect');
    expect(noMtls.code).toBe(2);
    expect(noMtls.stderr).toContain('--ca consul-connect: needs --mtls on');
    expect(unreachable.code).toBe(2);
    expect(unreachable.stderr).toContain('--ca consul-connect');
    expect(unreachable.stderr).toContain(`127.0.0.1:${closed}`);
    expect(trustDomainFlag.code).toBe(2);
    expect(trustDomainFlag.stderr).toContain('--trust-domain: "x.example" does not apply');
  });
});
