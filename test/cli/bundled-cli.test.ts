// The CLI as `npm run build` ships it: scripts/bundle-cli.mjs bundles src/cli/main.ts into one
// minified module graph (dist/cli/main.js + dist/cli/bundle/, issue 16: idle RSS). Built here
// into a temp package (package.json, gen/, node_modules linked), then used as a user would:
// `bootstrap` renders a sidecar's bootstrap, `serve` comes ready (secure defaults off) and a
// real Envoy gets the example catalog's clusters from it, over both xDS transports (grpc-js is
// kept outside the bundle and loaded from node_modules).
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, runCli } from '../support/cli-process.js';
import { startEnvoy, type EnvoyHandle } from '../support/envoy.js';
import { httpGet } from '../support/http-app.js';
import { freePorts } from '../support/ports.js';
import { killWithTestProcess } from '../support/reaper.js';
import { waitFor } from '../support/wait.js';

const pkg = mkdtempSync(join(tmpdir(), 'lucid-bundled-'));
const bin = join(pkg, 'dist', 'cli', 'main.js');

function startServe(args: string[]): { child: ChildProcess; stderr: () => string } {
  const child = spawn(process.execPath, [bin, 'serve', ...args], {
    cwd: pkg,
    env: { ...process.env, LUCID_DATA_DIR: join(pkg, 'state') },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  killWithTestProcess(child, 'bundled serve');
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  return { child, stderr: () => err };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await gone;
}

async function ready(adminPort: number, stderr: () => string): Promise<void> {
  await waitFor(
    async () =>
      (await httpGet(`http://127.0.0.1:${adminPort}/ready`).catch(() => undefined))?.status === 200,
    { what: 'bundled serve /ready', timeoutMs: 60_000, details: stderr },
  );
}

describe('the bundled CLI (dist/cli/main.js)', () => {
  const children: ChildProcess[] = [];
  const envoys: EnvoyHandle[] = [];

  beforeAll(() => {
    for (const f of ['package.json', 'gen', 'node_modules', 'sidecar-bootstrap']) {
      symlinkSync(join(repoRoot, f), join(pkg, f));
    }
    execFileSync(process.execPath, [
      join(repoRoot, 'scripts', 'bundle-cli.mjs'),
      join(pkg, 'dist', 'cli'),
    ]);
  }, 120_000);
  afterAll(async () => {
    await Promise.all(envoys.map((e) => e.stop()));
    await Promise.all(children.map(stop));
    rmSync(pkg, { recursive: true, force: true });
  });

  it('is one entry file and its chunks, none of them the source files', () => {
    expect(readdirSync(join(pkg, 'dist', 'cli')).filter((f) => f.endsWith('.js'))).toEqual([
      'main.js',
    ]);
    expect(readdirSync(join(pkg, 'dist', 'cli', 'bundle')).length).toBeGreaterThan(1);
  });

  it('says what the CLI from source says: --help, and a bad traffic file (zod, English only)', async () => {
    const bad = join(pkg, 'bad-traffic.json');
    const entry = {
      Kind: 'service-router',
      Name: 'web',
      Routes: [{ Destination: { NumRetries: -1 } }],
    };
    writeFileSync(bad, JSON.stringify([entry, { Kind: 'service-splitter', Name: 'web' }]));
    const bundled = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        const child = execFile(
          process.execPath,
          [bin, ...args],
          { cwd: pkg, timeout: 30_000 },
          (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stdout, stderr }),
        );
        killWithTestProcess(child, 'bundled cli');
      });
    const check = ['config', 'check', bad];
    const [fromBundle, fromSource] = await Promise.all([bundled(check), runCli(check)]);
    expect(fromSource.stderr + fromSource.stdout).toMatch(/NumRetries/);
    expect(fromSource.code).not.toBe(0);
    expect(fromBundle).toEqual(fromSource);
    const [helpBundle, helpSource] = await Promise.all([bundled(['--help']), runCli(['--help'])]);
    expect(helpBundle.stdout).toBe(helpSource.stdout);
  });

  it.each(['http2', 'grpc-js'])(
    'serves the example catalog to a real Envoy over --xds-transport %s, with a bootstrap it rendered',
    async (transport) => {
      const [admin, xds, envoyAdmin] = (await freePorts(3)) as [number, number, number];
      const serve = startServe([
        ...['--catalog', join(repoRoot, 'examples', 'catalog.yaml'), '--host', '127.0.0.1'],
        ...['--mtls', 'off', '--auth', 'none', '--xds-transport', transport],
        ...['--admin-port', String(admin), '--xds-port', String(xds)],
      ]);
      children.push(serve.child);
      await ready(admin, serve.stderr);
      const bootstrap = execFileSync(
        process.execPath,
        [
          ...[bin, 'bootstrap', '--node-id', 'hello-1', '--service', 'hello'],
          ...['--xds', `127.0.0.1:${xds}`, '--admin-port', String(envoyAdmin)],
        ],
        { cwd: pkg, encoding: 'utf8' },
      );
      const envoy = await startEnvoy({
        name: `bundled-cli-${transport}`,
        bootstrapYaml: bootstrap,
        adminPort: envoyAdmin,
      });
      envoys.push(envoy);
      const clusters = await envoy.waitFor(async () => {
        const text = await envoy.clusters();
        return /^world::/m.test(text) && text;
      }, "the catalog's world cluster in Envoy");
      expect(clusters).toMatch(/^hello::/m);
    },
  );

  it('with the secure defaults (token auth, mTLS): a token it issued admits a real Envoy', async () => {
    const [admin, xds, envoyAdmin] = (await freePorts(3)) as [number, number, number];
    const serve = startServe([
      ...['--catalog', join(repoRoot, 'examples', 'catalog.yaml'), '--host', '127.0.0.1'],
      ...['--admin-port', String(admin), '--xds-port', String(xds)],
    ]);
    children.push(serve.child);
    await ready(admin, serve.stderr);
    const cli = (args: string[]) =>
      execFileSync(process.execPath, [bin, ...args], {
        cwd: pkg,
        encoding: 'utf8',
        env: { ...process.env, LUCID_DATA_DIR: join(pkg, 'state') },
      });
    const token = cli(['token', 'issue', '--service', 'hello']).trim();
    const bootstrap = cli([
      ...['bootstrap', '--node-id', 'hello-1', '--service', 'hello', '--token', token],
      ...['--xds', `127.0.0.1:${xds}`, '--admin-port', String(envoyAdmin)],
    ]);
    const envoy = await startEnvoy({
      name: 'bundled-cli-secure',
      bootstrapYaml: bootstrap,
      adminPort: envoyAdmin,
    });
    envoys.push(envoy);
    // mTLS config (SPIFFE identities) and the catalog's clusters reach the sidecar.
    await envoy.waitFor(async () => {
      const dump = JSON.stringify(await envoy.configDump());
      return dump.includes('spiffe://') && /"name":"world"/.test(dump);
    }, 'mTLS config and the world cluster in Envoy');
    // Its own certificate, issued by the bundle's CA (@peculiar/x509, minified without
    // keepNames: scripts/bundle-cli.mjs), delivered over SDS.
    const certs = await envoy.waitFor(async () => {
      const r = await httpGet(`http://127.0.0.1:${envoyAdmin}/certs`);
      return r.body.includes('spiffe://lucid.internal/ns/default/svc/hello') && r.body;
    }, "hello's SPIFFE certificate in Envoy's /certs");
    expect(certs).toContain('"days_until_expiration"');
  });
});
