// The seeds' data-plane alerts on real data: a real Prometheus (Debian's, the same package as
// promtool) scrapes a real Envoy sidecar's /stats/prometheus through its bootstrap
// --prometheus-bind listener (as in compose) with the scrape job of
// compose/prometheus/prometheus.yml and evaluates compose/prometheus/alerts.yml. A circuit
// breaker held open by slow requests makes circuit_breaker_state{state="open"} 1 and
// CircuitBreakerOpen pending; callers without a mesh certificate refused by the sidecar's
// inbound listener make mtls_authentication_failures_total rise and MTLSAuthenticationFailures
// pending. (Pending, not firing: both wait 2 minutes; alert-rules.test.ts covers `for`.)
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import type { RunningControlPlane } from '../../src/app.js';
import { openCa, type OpenedCa } from '../../src/ca/index.js';
import { httpGet } from '../support/http-app.js';
import { CatalogFile, startSidecar, startTestControlPlane, type Sidecar } from '../support/mesh.js';
import { freePort } from '../support/ports.js';
import { killWithTestProcess } from '../support/reaper.js';
import { toolPath } from '../support/tools.js';
import {
  callMany,
  envoyCluster,
  startTrafficApp,
  type TrafficApp,
} from '../support/traffic-app.js';
import { waitFor } from '../support/wait.js';

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

describe('sidecar alerts on a real Prometheus scraping a real Envoy', () => {
  const catalog = new CatalogFile();
  const traffic = new CatalogFile('traffic.yaml');
  const dir = mkdtempSync(join(tmpdir(), 'lucid-prometheus-'));
  let ca: OpenedCa;
  let cp: RunningControlPlane;
  let api: TrafficApp;
  let web: Sidecar;
  let webInbound: number;
  let prometheus: ReturnType<typeof spawn>;
  let prometheusLog = '';
  let promUrl: string;

  const query = async (q: string): Promise<Sample[]> => {
    const r = await httpGet(`${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`);
    const body = JSON.parse(r.body) as { status: string; data: { result: Sample[] } };
    if (body.status !== 'success') throw new Error(r.body);
    return body.data.result;
  };
  const alerts = async () =>
    (
      JSON.parse((await httpGet(`${promUrl}/api/v1/alerts`)).body) as {
        data: { alerts: Array<{ labels: Record<string, string>; state: string }> };
      }
    ).data.alerts;

  let scrapePort: number;

  beforeAll(async () => {
    api = await startTrafficApp('api-slow', { delayMs: 4000 });
    webInbound = await freePort();
    catalog.write({
      services: [
        { name: 'api', instances: [{ id: 'api-1', address: '127.0.0.1', port: api.port }] },
        // web's sidecar has an inbound listener: mTLS, callers must show a mesh certificate.
        {
          name: 'web',
          instances: [{ id: 'web-1', address: '127.0.0.1', port: 9, sidecarPort: webInbound }],
        },
      ],
    });
    // web's sidecar lets one request at a time through to api: the breaker opens at two.
    traffic.write([
      {
        Kind: 'service-defaults',
        Name: 'web',
        UpstreamConfig: { Overrides: [{ Name: 'api', Limits: { MaxConcurrentRequests: 1 } }] },
      },
    ]);
    ca = await openCa({ dataDir: join(dir, 'ca'), env: {} });
    cp = await startTestControlPlane(
      catalog,
      {},
      { traffic, security: { ca, mtls: true, auth: 'none', adminAuth: 'none' } },
    );
    // Scraped as compose does: through bootstrap --prometheus-bind, not the admin port.
    scrapePort = await freePort();
    web = await startSidecar({
      nodeId: 'web-1',
      service: 'web',
      xdsPort: cp.xdsPort,
      mode: 'sotw',
      prometheusBind: `127.0.0.1:${scrapePort}`,
    });
    await web.envoy.waitFor(
      async () =>
        JSON.stringify((await envoyCluster(web.envoy, 'api'))?.circuit_breakers).includes(
          '"max_requests":1',
        ) && (await web.envoy.admin('/listeners')).includes(`${webInbound}`),
      'web has max_requests 1 on api and its inbound listener',
      30_000,
    );

    // The shipped scrape job and rules, at test speed: 1 s scrapes and evaluations.
    const shipped = parse(readFileSync('compose/prometheus/prometheus.yml', 'utf8')) as {
      scrape_configs: Array<{ job_name: string; static_configs: unknown[] }>;
    };
    const job = shipped.scrape_configs.find((j) => j.job_name === 'lucid-mesh-sidecars')!;
    writeFileSync(
      join(dir, 'alerts.yml'),
      readFileSync('compose/prometheus/alerts.yml', 'utf8').replaceAll(
        'interval: 30s',
        'interval: 1s',
      ),
    );
    writeFileSync(
      join(dir, 'prometheus.yml'),
      stringify({
        global: { scrape_interval: '1s', evaluation_interval: '1s' },
        rule_files: [join(dir, 'alerts.yml')],
        scrape_configs: [
          {
            ...job,
            static_configs: [{ targets: [`127.0.0.1:${scrapePort}`], labels: { proxy: 'web' } }],
          },
        ],
      }),
    );
    const port = await freePort();
    promUrl = `http://127.0.0.1:${port}`;
    prometheus = spawn(
      toolPath('prometheus'),
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    killWithTestProcess(prometheus, 'prometheus');
    prometheus.stdout!.on('data', (c: Buffer) => (prometheusLog += c.toString()));
    prometheus.stderr!.on('data', (c: Buffer) => (prometheusLog += c.toString()));
    await waitFor(async () => (await query('up{job="lucid-mesh-sidecars"}'))[0]?.value[1] === '1', {
      what: 'Prometheus scraping the sidecar',
      timeoutMs: 30_000,
      details: () => prometheusLog.slice(-3000),
      failIf: () =>
        prometheus.exitCode !== null ? `prometheus exited: ${prometheusLog}` : undefined,
    });
  }, 120_000);

  afterAll(async () => {
    prometheus?.kill('SIGKILL');
    await web?.envoy.stop();
    await cp?.stop();
    await api?.close();
    catalog.remove();
    traffic.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  it('circuit_breaker_state{state="open"} is 0 while closed, 1 while open, and CircuitBreakerOpen goes pending', async () => {
    const closed = await waitFor(
      async () => (await query('circuit_breaker_state{state="open",service="api"}'))[0],
      { what: 'the recorded circuit_breaker_state for api', timeoutMs: 15_000 },
    );
    expect(closed.metric).toMatchObject({ state: 'open', service: 'api', proxy: 'web' });
    expect(closed.value[1]).toBe('0');

    // Six concurrent requests to an app that takes 4 s: one goes through, the breaker opens.
    const calls = callMany(web, 'api', 6, { concurrency: 6, timeoutMs: 10_000 });
    await waitFor(
      async () => (await query('circuit_breaker_state{state="open",service="api"} > 0')).length > 0,
      { what: 'circuit_breaker_state open for api', timeoutMs: 8_000 },
    );
    const pending = await waitFor(
      async () =>
        (await alerts()).find(
          (a) => a.labels.alertname === 'CircuitBreakerOpen' && a.labels.service === 'api',
        ),
      { what: 'CircuitBreakerOpen pending', timeoutMs: 8_000 },
    );
    expect(pending).toMatchObject({
      state: 'pending',
      labels: { proxy: 'web', severity: 'warning' },
    });
    const tally = await calls;
    expect(tally.statuses[503]).toBeGreaterThan(0);
  });

  it('callers without a mesh certificate raise mtls_authentication_failures_total and MTLSAuthenticationFailures', async () => {
    expect(await query('mtls_authentication_failures_total{proxy="web"} > 0')).toEqual([]);
    // 80 TLS handshakes to web's inbound listener without a client certificate: the alert is
    // over 10 a minute averaged over 5 minutes, so it needs more than 50 within the window.
    for (let i = 0; i < 80; i++) {
      await new Promise<void>((resolve) => {
        const s = connect({ host: '127.0.0.1', port: webInbound, rejectUnauthorized: false });
        s.on('error', () => resolve());
        s.on('close', () => resolve());
        s.on('secureConnect', () => s.write('GET / HTTP/1.1\r\nhost: web\r\n\r\n'));
      });
    }
    const failures = await waitFor(
      async () => (await query('mtls_authentication_failures_total{proxy="web"} >= 80'))[0],
      { what: 'mtls_authentication_failures_total ≥ 80', timeoutMs: 10_000 },
    );
    // One series per sidecar (its scrape target), so a restart of another is no counter reset.
    expect(failures.metric).toEqual({
      __name__: 'mtls_authentication_failures_total',
      proxy: 'web',
      instance: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
    });
    // Envoy counted them on web's inbound listener as callers without a certificate.
    const byStat = await query(
      'sum by (__name__) ({__name__=~"envoy_(listener|cluster)_ssl_fail_verify_.+",proxy="web"}) > 0',
    );
    expect(byStat.map((s) => s.metric.__name__)).toEqual([
      'envoy_listener_ssl_fail_verify_no_cert',
    ]);
    const pending = await waitFor(
      async () =>
        (await alerts()).find(
          (a) => a.labels.alertname === 'MTLSAuthenticationFailures' && a.labels.proxy === 'web',
        ),
      { what: 'MTLSAuthenticationFailures pending', timeoutMs: 10_000 },
    );
    expect(pending).toMatchObject({ state: 'pending', labels: { severity: 'critical' } });
  });
});
