// `lucid-mesh bootstrap --prometheus-bind`: a real Envoy serves /stats/prometheus on the scrape
// port while its admin stays on 127.0.0.1, and nothing else of the admin is reachable there.
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { renderBootstrap, resolveBootstrapOptions } from '../../src/bootstrap/render.js';
import { bootstrapCommand } from '../../src/cli/bootstrap-command.js';
import { startControlPlane, twoServices, type TestControlPlane } from '../support/control-plane.js';
import { startEnvoy, validateBootstrap, type EnvoyHandle } from '../support/envoy.js';
import { httpGet } from '../support/http-app.js';
import { freePorts } from '../support/ports.js';
import { runCommand } from '../support/run-command.js';

const run = (args: string[]) => runCommand(bootstrapCommand, args);
const base = ['--node-id', 'hello-1', '--service', 'hello', '--xds', '127.0.0.1:18000'];

/** Any method, a fresh connection; resolves with the status (and body). */
function send(method: string, url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent: false, timeout: 5_000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer in 5 s`)));
    req.on('error', reject);
    req.end();
  });
}

describe('a real Envoy bootstrapped with --prometheus-bind', () => {
  let cp: TestControlPlane;
  let envoy: EnvoyHandle;
  let scrape: string;

  beforeAll(async () => {
    cp = await startControlPlane({ catalog: twoServices() });
    const [adminPort, outboundPort, scrapePort] = (await freePorts(3)) as [number, number, number];
    scrape = `http://127.0.0.1:${scrapePort}`;
    envoy = await startEnvoy({
      name: 'prometheus-bind',
      adminPort,
      bootstrapYaml: renderBootstrap({
        nodeId: 'hello-1',
        service: 'hello',
        xds: `127.0.0.1:${cp.port}`,
        adminPort,
        outboundPort,
        dnsPort: 0,
        prometheusBind: `0.0.0.0:${scrapePort}`,
      }),
    });
    // Listeners open once the first ADS answers arrived (Envoy's init), so wait for the port.
    await envoy.waitFor(
      async () =>
        (await httpGet(`${scrape}/stats/prometheus`).catch(() => undefined))?.status === 200,
      'the scrape listener answering',
    );
  }, 60_000);

  afterAll(async () => {
    await envoy?.stop();
    await cp?.close();
  });

  it('serves the sidecar stats in Prometheus format, also with query parameters', async () => {
    const all = await httpGet(`${scrape}/stats/prometheus`);
    expect(all.status).toBe(200);
    expect(all.body).toMatch(/^# TYPE envoy_server_live gauge$/m);
    expect(all.body).toMatch(
      /^envoy_cluster_upstream_cx_total\{envoy_cluster_name="xds_cluster"\} \d+$/m,
    );
    const used = await httpGet(`${scrape}/stats/prometheus?usedonly`);
    expect(used.status).toBe(200);
    expect(used.body).toContain('envoy_server_live');
    // The sidecar's own listener stats show the scrapes went through it.
    expect(await envoy.stat('http.lucid_prometheus.downstream_rq_2xx')).toBeGreaterThanOrEqual(2);
  });

  it('answers 404 for every other admin path; the admin endpoints still work on 127.0.0.1', async () => {
    for (const path of ['/config_dump', '/stats', '/clusters', '/', '/stats/prometheus/x']) {
      const r = await httpGet(`${scrape}${path}`);
      expect(r.status, path).toBe(404);
      expect(r.body, path).not.toContain('xds_cluster');
    }
    // Write endpoints are not reachable either: Envoy keeps running.
    expect((await send('POST', `${scrape}/quitquitquit`)).status).toBe(404);
    expect((await send('POST', `${scrape}/logging?level=trace`)).status).toBe(404);
    expect(envoy.running()).toBe(true);
    expect(JSON.parse(await envoy.admin('/config_dump')).configs.length).toBeGreaterThan(0);
  });
});

describe('--prometheus-bind option', () => {
  it('is off by default: no listener in the bootstrap', () => {
    const doc = parse(renderBootstrap({ nodeId: 'n', service: 'hello', xds: '127.0.0.1:1' }));
    expect(doc.static_resources.listeners).toBeUndefined();
    expect(doc.static_resources.clusters).toHaveLength(1);
  });

  it('the bootstrap with it passes envoy --mode validate (IPv4 and IPv6)', async () => {
    for (const bind of ['0.0.0.0:20200', '[::]:20200']) {
      const yaml = renderBootstrap({
        nodeId: 'n',
        service: 'hello',
        xds: '127.0.0.1:18000',
        prometheusBind: bind,
      });
      const doc = parse(yaml);
      expect(doc.static_resources.listeners[0].address.socket_address.port_value).toBe(20200);
      const result = await validateBootstrap(yaml);
      expect(result.ok, result.output).toBe(true);
    }
  }, 60_000);

  it('rejects what is not IP:PORT, naming the flag and the value', () => {
    const opts = { nodeId: 'n', service: 'hello', xds: '127.0.0.1:1' };
    for (const bad of [
      '20200',
      'localhost:20200',
      '0.0.0.0:',
      '0.0.0.0:70000',
      '::1:20200',
      '[1.2.3.4]:1',
    ]) {
      expect(() => resolveBootstrapOptions({ ...opts, prometheusBind: bad }), bad).toThrow(
        `--prometheus-bind: expected`,
      );
    }
    expect(() =>
      resolveBootstrapOptions({ ...opts, adminPort: 20200, prometheusBind: '0.0.0.0:20200' }),
    ).toThrow(
      '--prometheus-bind: expected a port different from --admin-port (20200), got "0.0.0.0:20200"',
    );
  });

  it('CLI: flag and LUCID_PROMETHEUS_BIND, documented in --help; bad value exit 2', async () => {
    const help = await run(['--help']);
    expect(help.stdout).toContain('--prometheus-bind <ip:port>');
    expect(help.stdout).toContain('env: LUCID_PROMETHEUS_BIND');
    const flag = await run([...base, '--prometheus-bind', '0.0.0.0:20200']);
    expect(flag.code).toBe(0);
    expect(parse(flag.stdout).static_resources.listeners[0].name).toBe('lucid_prometheus');
    process.env.LUCID_PROMETHEUS_BIND = '127.0.0.1:20201';
    try {
      const env = await run(base);
      expect(parse(env.stdout).static_resources.listeners[0].address.socket_address).toEqual({
        address: '127.0.0.1',
        port_value: 20201,
      });
    } finally {
      delete process.env.LUCID_PROMETHEUS_BIND;
    }
    const bad = await run([...base, '--prometheus-bind', 'prometheus:9090']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe(
      'lucid-mesh bootstrap: --prometheus-bind: expected IP:PORT (e.g. 0.0.0.0:20200; IPv6 as [ADDR]:PORT), got "prometheus:9090"\n',
    );
  });
});
