// The operator surface against real Envoy: /v1/proxies sync states (SYNCED, NACKED with Envoy's
// own error, back to SYNCED), `lucid-mesh tail` showing an added endpoint, snapshot dumps,
// `lucid-mesh status`, and /metrics as valid Prometheus text.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProxyRow } from '../../src/admin/proxies.js';
import type { RunningControlPlane } from '../../src/app.js';
import { httpGet, startHttpApp, type HttpApp } from '../support/http-app.js';
import { CatalogFile, startSidecar, startTestControlPlane, type Sidecar } from '../support/mesh.js';
import { freePort } from '../support/ports.js';
import { parsePrometheusText } from '../support/prometheus.js';
import { cliEntry } from '../support/tools.js';
import { waitFor } from '../support/wait.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

function cli(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) =>
    execFile(
      process.execPath,
      ['--import', 'tsx', cliEntry, ...args],
      { cwd: repoRoot, timeout: 30_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? Number(err.code ?? 1) : 0, out: stdout + stderr }),
    ),
  );
}

describe('operator surface with real Envoy', () => {
  const catalog = new CatalogFile();
  let cp: RunningControlPlane;
  let server: string;
  let hello: HttpApp, world: HttpApp, world2: HttpApp;
  let a: Sidecar, b: Sidecar;
  let ports: { hello: number; world: number };
  const tails: ChildProcess[] = [];

  const doc = (opts: { world2?: boolean; clashOn?: number } = {}) => ({
    services: [
      {
        name: 'hello',
        instances: [
          { id: 'hello-1', address: '127.0.0.1', port: hello.port, sidecarPort: ports.hello },
        ],
      },
      {
        name: 'world',
        instances: [
          { id: 'world-1', address: '127.0.0.1', port: world.port, sidecarPort: ports.world },
          ...(opts.world2 ? [{ id: 'world-2', address: '127.0.0.1', port: world2.port }] : []),
        ],
      },
      // A tcp service whose local port is A's outbound HTTP port: A cannot have both listeners.
      ...(opts.clashOn
        ? [{ name: 'db', protocol: 'tcp', outboundPort: opts.clashOn, instances: [] }]
        : []),
    ],
  });

  const proxies = async () =>
    JSON.parse((await httpGet(`${server}/v1/proxies`)).body).proxies as ProxyRow[];
  const allSynced = (rows: ProxyRow[], node: string) => {
    const row = rows.find((r) => r.nodeId === node);
    const types = Object.values(row?.types ?? {});
    return types.length >= 4 && types.every((t) => t.status === 'SYNCED');
  };

  beforeAll(async () => {
    [hello, world, world2] = await Promise.all([
      startHttpApp('hello'),
      startHttpApp('world'),
      startHttpApp('world-2'),
    ]);
    ports = { hello: await freePort(), world: await freePort() };
    catalog.write(doc());
    cp = await startTestControlPlane(catalog);
    server = `http://127.0.0.1:${cp.adminPort}`;
    [a, b] = await Promise.all([
      startSidecar({ nodeId: 'hello-1', service: 'hello', xdsPort: cp.xdsPort, mode: 'sotw' }),
      startSidecar({ nodeId: 'world-1', service: 'world', xdsPort: cp.xdsPort, mode: 'delta' }),
    ]);
  });

  afterAll(async () => {
    tails.forEach((t) => t.kill('SIGKILL'));
    await Promise.all([a?.envoy.stop(), b?.envoy.stop()]);
    await cp?.stop();
    await Promise.all([hello?.close(), world?.close(), world2?.close()]);
    catalog.remove();
  });

  it('shows both proxies SYNCED for every type', async () => {
    const rows = await waitFor(
      async () => {
        const r = await proxies();
        return allSynced(r, 'hello-1') && allSynced(r, 'world-1') ? r : undefined;
      },
      { what: 'both proxies SYNCED', timeoutMs: 20_000 },
    );
    expect(rows.map((r) => [r.nodeId, r.service, r.mode])).toEqual([
      ['hello-1', 'hello', 'sotw'],
      ['world-1', 'world', 'delta'],
    ]);
    expect(Object.keys(rows[0]!.types).sort()).toEqual([
      'clusters',
      'endpoints',
      'listeners',
      'routes',
    ]);
    for (const t of Object.values(rows[0]!.types)) expect(t.ackedVersion).toBe(t.sentVersion);
    const status = await cli(['status', '--server', server]);
    expect(status.code).toBe(0);
    expect(status.out).toMatch(/hello-1\s+hello\s+sotw\s+SYNCED\s+SYNCED\s+SYNCED\s+SYNCED\s+-/);
  });

  it('tail shows an added endpoint as one event naming the cluster and the new address', async () => {
    const tail = spawn(
      process.execPath,
      ['--import', 'tsx', cliEntry, 'tail', '--server', server, '--type', 'endpoints'],
      {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    tails.push(tail);
    let out = '';
    tail.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    tail.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    await waitFor(() => cp.events.subscriberCount > 0, {
      what: 'tail connected',
      timeoutMs: 15_000,
      details: () => out,
    });
    catalog.write(doc({ world2: true }));
    const event = await waitFor(
      () => out.split(/\n(?=\d\d:\d\d:\d\d\.\d{3} )/).find((block) => block.includes(' snapshot ')),
      { what: 'a snapshot event in tail', details: () => out },
    );
    expect(event).toContain('~ endpoints/world changed');
    expect(event).toMatch(
      new RegExp(
        `lbEndpoints\\[1\\]: \\(none\\) → .*"address":"127\\.0\\.0\\.1","portValue":${world2.port}`,
      ),
    );
    expect(event).not.toContain('endpoints/hello');
    await waitFor(() => /ACK\s+hello-1 endpoints/.test(out), {
      what: 'tail shows the ACK',
      details: () => out,
    });
  });

  it("shows a NACK with Envoy's error text, counts it, and returns to SYNCED after a fix", async () => {
    catalog.write(doc({ world2: true, clashOn: a.outboundPort }));
    const row = await waitFor(
      async () => {
        const r = (await proxies()).find((p) => p.nodeId === 'hello-1');
        return r?.types.listeners?.status === 'NACKED' ? r : undefined;
      },
      { what: 'hello-1 listeners NACKED', timeoutMs: 15_000 },
    );
    expect(row.types.listeners!.nackError).toMatch(
      /duplicate|address|outbound\|tcp\|db|outbound\|http/i,
    );
    const metrics = parsePrometheusText((await httpGet(`${server}/metrics`)).body);
    expect(metrics.get('lucid_mesh_xds_nacks_total{type="listeners"}')).toBeGreaterThanOrEqual(1);
    const status = await cli(['status', '--server', server]);
    expect(status.out).toContain('hello-1 listeners NACKED');

    catalog.write(doc({ world2: true }));
    await waitFor(async () => allSynced(await proxies(), 'hello-1'), {
      what: 'hello-1 SYNCED again',
      timeoutMs: 15_000,
    });
    expect(
      (await proxies()).find((p) => p.nodeId === 'hello-1')!.types.listeners!.nackError,
    ).toBeUndefined();
  });

  it('dumps the resources a node is served, as Envoy JSON', async () => {
    const dump = JSON.parse(
      (await httpGet(`${server}/v1/snapshot?node=hello-1&type=listeners`)).body,
    );
    expect(dump.connected).toBe(true);
    const names = dump.resources.listeners.map((l: { name: string }) => l.name);
    expect(names).toEqual(
      expect.arrayContaining(['inbound|hello-1', `outbound|http|${a.outboundPort}`]),
    );
    const inbound = dump.resources.listeners.find(
      (l: { name: string }) => l.name === 'inbound|hello-1',
    ).resource;
    expect(inbound['@type']).toBe('type.googleapis.com/envoy.config.listener.v3.Listener');
    expect(inbound.filterChains[0].filters[0].typedConfig['@type']).toContain(
      'HttpConnectionManager',
    );
    const bad = await httpGet(`${server}/v1/snapshot?node=hello-1&type=bogus`);
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).error).toContain(
      'type: expected one of clusters | endpoints | listeners | routes | virtualHosts | secrets, got "bogus"',
    );
    const yaml = await cli(['snapshot', 'hello-1', '--server', server, '--type', 'clusters']);
    expect(yaml.code).toBe(0);
    expect(yaml.out).toContain('name: local_app|hello-1');
  });

  it('serves /metrics as valid Prometheus text with the documented names', async () => {
    const metrics = parsePrometheusText((await httpGet(`${server}/metrics`)).body);
    const names = new Set([...metrics.keys()].map((k) => k.replace(/\{.*$/, '')));
    for (const name of [
      'lucid_mesh_connected_proxies',
      'lucid_mesh_xds_responses_total',
      'lucid_mesh_xds_push_duration_seconds_bucket',
      'lucid_mesh_resources_encoded_total',
      'lucid_mesh_xds_nacks_total',
      'lucid_mesh_convergence_seconds_bucket',
      'lucid_mesh_source_last_success_timestamp_seconds',
      'service_discovery_latency_seconds_bucket',
      'lucid_mesh_process_resident_memory_bytes',
    ]) {
      expect(names, name).toContain(name);
    }
    expect(metrics.get('lucid_mesh_connected_proxies{mode="sotw"}')).toBe(1);
    expect(metrics.get('lucid_mesh_connected_proxies{mode="delta"}')).toBe(1);
    expect(metrics.get('lucid_mesh_convergence_seconds_count')).toBeGreaterThanOrEqual(1);
  });

  it('operator commands fail with one clear line when the server is unreachable', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    for (const args of [['status'], ['snapshot', 'hello-1'], ['tail']]) {
      const r = await cli([...args, '--server', dead]);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.out.trim().split('\n')).toHaveLength(1);
      expect(r.out).toContain(
        `lucid-mesh ${args[0]}: cannot reach the control plane at ${dead} (ECONNREFUSED)`,
      );
    }
  });
});
