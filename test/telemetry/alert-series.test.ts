// The shipped alerts against the series a real control plane exports (not hand-written ones):
// /metrics is scraped from a running control plane before and after a proxy NACKs, the two
// scrapes become promtool's input series, and the real promtool evaluates alerts.yml on them.
// A counter whose series first appears at 1 has no increase() in Prometheus, so the first NACK
// of a type after a start went unalerted until every type's series started at 0. And a source
// that reports a failure once (the file source, a refused edit) never fired ServiceDiscoveryDown
// while it counted errors; it reads lucid_mesh_source_failing now.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { RunningControlPlane } from '../../src/app.js';
import { openCa } from '../../src/ca/index.js';
import { parseCatalog } from '../../src/catalog/schema.js';
import { node, sotwClient, typeUrl } from '../support/ads-client.js';
import { SettableSource, adminGet, startLoopbackControlPlane } from '../support/settable-source.js';
import { toolPath } from '../support/tools.js';
import { waitFor } from '../support/wait.js';

const promtool = toolPath('promtool');
const alertsFile = resolve('compose/prometheus/alerts.yml');
const scratch = mkdtempSync(join(tmpdir(), 'lucid-alert-series-'));

const catalog = parseCatalog({
  services: [
    {
      name: 'hello',
      instances: [{ id: 'hello-1', address: '127.0.0.1', port: 9101, sidecarPort: 19101 }],
    },
  ],
});

// Named as the file source is: a catalog, then (fail) one rejected edit, reported once.
const source = new SettableSource(catalog, 'file');
let cp: RunningControlPlane;
beforeAll(async () => {
  cp = await startLoopbackControlPlane(source);
});
afterAll(async () => {
  await cp?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

async function scrape(): Promise<string> {
  return (await adminGet(cp, '/metrics')).text();
}

/** `{labels}` → value of every sample of `name` in an exposition. */
function samples(exposition: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of exposition.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m && m[1] === name) out.set(m[2] ?? '{}', Number(m[3]));
  }
  return out;
}

/**
 * promtool input series for `name`: each scrape's value (`_`: no sample) for `steps` scrape
 * intervals, in order, with the labels Prometheus adds (job, instance). A timestamp (unix
 * seconds) is moved onto promtool's clock, where the first scrape is at 0: `firstScrapeAt`.
 */
function inputSeries(scrapes: string[], name: string, steps: number | number[], firstScrapeAt = 0) {
  const keys = new Set(scrapes.flatMap((s) => [...samples(s, name).keys()]));
  return [...keys].map((key) => {
    const labels = key === '{}' ? '' : `${key.slice(1, -1)},`;
    const values = scrapes.flatMap((s, i) => {
      const v = samples(s, name).get(key);
      const value = name.endsWith('_timestamp_seconds') && v !== undefined ? v - firstScrapeAt : v;
      const n = typeof steps === 'number' ? steps : steps[i]!;
      return Array<string>(n).fill(value === undefined ? '_' : String(value));
    });
    return {
      series: `${name}{${labels}job="lucid-mesh",instance="cp:8080"}`,
      values: values.join(' '),
    };
  });
}

function promtoolTest(tests: unknown): { code: number; out: string } {
  const file = join(scratch, 'test.yml');
  writeFileSync(file, stringify({ rule_files: [alertsFile], evaluation_interval: '30s', tests }));
  const r = spawnSync(promtool, ['test', 'rules', file], { encoding: 'utf8' });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

describe('alerts on the series a running control plane exports (real promtool)', () => {
  it('a fresh control plane exports the NACK and source error counters at 0', async () => {
    const before = await scrape();
    expect([...samples(before, 'lucid_mesh_xds_nacks_total')]).toEqual(
      ['clusters', 'endpoints', 'listeners', 'routes', 'virtualHosts', 'secrets'].map((t) => [
        `{type="${t}"}`,
        0,
      ]),
    );
    expect(samples(before, 'lucid_mesh_source_errors_total')).toEqual(
      new Map([['{source="file"}', 0]]),
    );
  });

  it('ProxyConfigRejected fires on the first NACK after a start; ProxyConfigStillRejected while the proxy stays on it', async () => {
    const before = await scrape();
    const client = sotwClient(cp.xdsPort);
    let after: string;
    try {
      client.send({ node: node('hello-1', 'hello'), typeUrl: typeUrl('clusters') });
      const res = await client.next();
      // Envoy's NACK: the version it had (none), the nonce of the response, an error.
      client.send({
        node: node('hello-1', 'hello'),
        typeUrl: typeUrl('clusters'),
        responseNonce: res.nonce,
        errorDetail: { code: 3, message: 'cluster hello: bad config' },
      });
      await waitFor(
        async () =>
          samples(await scrape(), 'lucid_mesh_xds_nacks_total').get('{type="clusters"}') === 1,
        { what: 'the NACK counted on /metrics' },
      );
      // The proxy is still connected, on no accepted config (NACKED in lucid-mesh status).
      after = await scrape();
    } finally {
      client.close();
    }
    expect(samples(after, 'lucid_mesh_nacked_proxies').get('{type="clusters"}')).toBe(1);
    // Scraped every 30 s: 3 min before the NACK, 13 min after it.
    const series = ['lucid_mesh_xds_nacks_total', 'lucid_mesh_nacked_proxies'].flatMap((name) =>
      inputSeries([before, after], name, [6, 26]),
    );
    const fired = {
      exp_labels: {
        severity: 'warning',
        type: 'clusters',
        job: 'lucid-mesh',
        instance: 'cp:8080',
      },
      exp_annotations: {
        summary: 'A proxy rejected clusters config (NACK)',
        description: "Run `lucid-mesh status` to see which proxy and Envoy's error text.",
      },
    };
    const stillRejected = {
      exp_labels: { severity: 'warning', type: 'clusters' },
      exp_annotations: {
        summary: 'Proxies still reject their clusters config: 1',
        description:
          "For 10 minutes they have run on their last accepted config. Run `lucid-mesh status` to see which, and Envoy's error text.",
      },
    };
    const r = promtoolTest([
      {
        interval: '30s',
        input_series: series,
        alert_rule_test: [
          { eval_time: '2m', alertname: 'ProxyConfigRejected', exp_alerts: [] },
          { eval_time: '4m', alertname: 'ProxyConfigRejected', exp_alerts: [fired] },
          // Five minutes after the NACK it is over, though the proxy still runs without it.
          { eval_time: '10m', alertname: 'ProxyConfigRejected', exp_alerts: [] },
          { eval_time: '10m', alertname: 'ProxyConfigStillRejected', exp_alerts: [] },
          { eval_time: '14m', alertname: 'ProxyConfigStillRejected', exp_alerts: [stillRejected] },
        ],
      },
    ]);
    expect(r.out).toContain('SUCCESS');
    expect(r.code).toBe(0);
  });

  it('ServiceDiscoveryDown fires when a rejected catalog edit is not fixed for 2 minutes', async () => {
    const firstScrapeAt = Date.now() / 1000;
    const before = await scrape();
    // A catalog file edited into something invalid: the file source reports it once, then
    // waits for the next edit; the last good catalog stays in force.
    source.fail('catalog.yaml: services[0].instances[0].port: expected integer 1-65535');
    const after = await scrape();
    expect(samples(after, 'lucid_mesh_source_failing')).toEqual(new Map([['{source="file"}', 1]]));
    // Scraped every 30 s: 3 min before the edit, 10 min after it.
    const series = [
      'lucid_mesh_source_failing',
      'lucid_mesh_source_errors_total',
      'lucid_mesh_source_last_success_timestamp_seconds',
    ].flatMap((name) => inputSeries([before, after], name, [6, 20], firstScrapeAt));
    const down = {
      exp_labels: { severity: 'critical', source: 'file' },
      exp_annotations: {
        summary: 'Discovery source file is failing',
        description:
          'No valid catalog from the file source for over 2 minutes; the last good catalog is still being served.',
      },
    };
    const r = promtoolTest([
      {
        interval: '30s',
        input_series: series,
        alert_rule_test: [
          { eval_time: '2m', alertname: 'ServiceDiscoveryDown', exp_alerts: [] },
          { eval_time: '4m', alertname: 'ServiceDiscoveryDown', exp_alerts: [] },
          { eval_time: '6m', alertname: 'ServiceDiscoveryDown', exp_alerts: [down] },
          { eval_time: '9m', alertname: 'ServiceDiscoveryDown', exp_alerts: [down] },
        ],
      },
    ]);
    expect(r.out).toContain('SUCCESS');
    expect(r.code).toBe(0);
  });
});

describe('a sidecar refused at every reconnect (real promtool on a running control plane)', () => {
  it('ProxyStreamsRefused fires while a sidecar with an expired token keeps retrying', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'lucid-alert-series-ca-'));
    const ca = await openCa({ dataDir, env: {} });
    const secured = await startLoopbackControlPlane(new SettableSource(catalog, 'file'), {
      security: { ca, mtls: false, auth: 'token', adminAuth: 'none' },
    });
    try {
      // Issued for a second: expired by the time the sidecar reconnects.
      const token = await ca.tokens.issue('hello', 1000);
      await new Promise((r) => setTimeout(r, 2100));
      const scrapeIt = async () => (await adminGet(secured, '/metrics')).text();
      // A scrape every 30 s; the sidecar retries once between scrapes (Envoy backs off to 30 s).
      const scrapes = [await scrapeIt()];
      for (let i = 0; i < 24; i++) {
        const client = sotwClient(secured.xdsPort, token);
        client.send({ node: node('hello-1', 'hello'), typeUrl: typeUrl('clusters') });
        const ended = (await client.ended) as { code?: number } | undefined;
        expect(ended?.code).toBe(16); // UNAUTHENTICATED
        client.close();
        scrapes.push(await scrapeIt());
      }
      expect(samples(scrapes.at(-1)!, 'lucid_mesh_xds_auth_failures_total')).toEqual(
        new Map([['{reason="expired"}', 24]]),
      );
      const refused = {
        exp_labels: { severity: 'warning', reason: 'expired' },
        exp_annotations: {
          summary: 'Sidecars are refused at every reconnect (expired)',
          description:
            'For 10 minutes xDS streams have been refused (reason expired): those sidecars keep their last config and certificate but get no changes and no new certificate. The log (xds stream refused) names the node; give it a new token (lucid-mesh token issue --service).',
        },
      };
      const r = promtoolTest([
        {
          interval: '30s',
          input_series: inputSeries(scrapes, 'lucid_mesh_xds_auth_failures_total', 1),
          alert_rule_test: [
            { eval_time: '5m', alertname: 'ProxyStreamsRefused', exp_alerts: [] },
            { eval_time: '12m', alertname: 'ProxyStreamsRefused', exp_alerts: [refused] },
          ],
        },
      ]);
      expect(r.out).toContain('SUCCESS');
      expect(r.code).toBe(0);
    } finally {
      await secured.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

/** Prometheus's humanizeDuration for whole seconds (1 min or more): "1d 2h 3m 4s", "5m 0s". */
function humanizeDuration(seconds: number): string {
  const [d, h, m, s] = [seconds / 86400, (seconds / 3600) % 24, (seconds / 60) % 60, seconds % 60];
  const parts = [`${Math.floor(m)}m`, `${Math.floor(s)}s`];
  if (d >= 1) return [`${Math.floor(d)}d`, `${Math.floor(h)}h`, ...parts].join(' ');
  return h >= 1 ? [`${Math.floor(h)}h`, ...parts].join(' ') : parts.join(' ');
}

describe('certificate expiry on a running control plane with its CA (real promtool)', () => {
  it('MeshCertificateExpiringSoon fires once a leaf is past 95 % of its life; MeshRootCertificateExpiringSoon on a root with 20 days left', async () => {
    // The operator's own CA (--ca-cert/--ca-key), valid for 20 days; leaves of 1 h
    // (CERT_VALIDITY_DAYS=1/24), not renewed (as when every renewal fails).
    const dir = mkdtempSync(join(tmpdir(), 'lucid-alert-series-certs-'));
    const openssl = (...args: string[]) =>
      execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key');
    openssl(
      ...['req', '-x509', '-new', '-key', 'ca.key', '-days', '20', '-subj', '/CN=Ops Root'],
      ...[
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign',
      ],
      ...['-out', 'ca.crt'],
    );
    const ca = await openCa({
      dataDir: join(dir, 'state'),
      caCertFile: join(dir, 'ca.crt'),
      caKeyFile: join(dir, 'ca.key'),
      leafTtlMs: 3_600_000,
      autoRotate: false,
      env: {},
    });
    const secured = await startLoopbackControlPlane(new SettableSource(catalog, 'file'), {
      security: { ca, mtls: true, auth: 'none', adminAuth: 'none' },
    });
    try {
      // What hello's sidecar's first SDS request does: its leaf is issued.
      const leaf = await ca.certificates.current('hello');
      const scraped = await (await adminGet(secured, '/metrics')).text();
      const expiry = samples(scraped, 'lucid_mesh_certificate_expiry_seconds');
      const lifetime = samples(scraped, 'lucid_mesh_certificate_lifetime_seconds');
      const leafKey = `{kind="leaf",service="hello",serial="${leaf.serial}"}`;
      // notBefore is backdated a minute (peers whose clocks lag): renewal counts from there too.
      expect(lifetime.get(leafKey)).toBe(3660);
      const leafLeft = expiry.get(leafKey)!;
      expect(leafLeft).toBeGreaterThan(3300);
      const roots = [...expiry].filter(([k]) => k.startsWith('{kind="root"'));
      expect(roots).toHaveLength(1);
      const rootLeft = roots[0]![1];
      expect(rootLeft).toBeGreaterThan(19 * 86400);

      // The scraped series, a scrape every 30 s for an hour: each expiry counts down from
      // its scraped value, each lifetime stays.
      const steps = 120;
      const series = [
        ...[...expiry].map(([key, v]) => ({ key, values: `${v}-30x${steps}` })),
        ...[...lifetime].map(([key, v]) => ({ key, values: `${v}x${steps}` })),
      ].map(({ key, values }, i) => ({
        series: `${i < expiry.size ? 'lucid_mesh_certificate_expiry_seconds' : 'lucid_mesh_certificate_lifetime_seconds'}{${key.slice(1, -1)},job="lucid-mesh",instance="cp:8080"}`,
        values,
      }));
      // 5 % of 3,660 s is 183 s: quiet at 50 min (about 600 s left), firing at 59 min.
      const leftAt59m = leafLeft - 59 * 60;
      expect(leftAt59m).toBeLessThan(183);
      const leafAlert = {
        exp_labels: {
          severity: 'critical',
          job: 'lucid-mesh',
          instance: 'cp:8080',
          kind: 'leaf',
          service: 'hello',
          serial: leaf.serial,
        },
        exp_annotations: {
          summary: `The mesh certificate of hello expires in ${leftAt59m < 60 ? `${leftAt59m}s` : humanizeDuration(leftAt59m)}`,
          description: `Leaf ${leaf.serial} of hello was due for renewal by 90 % of its lifetime and is still in use: renewal is failing (log: leaf certificate renewal failed). When it expires, calls to and from hello fail mTLS.`,
        },
      };
      const rootAlert = {
        exp_labels: { severity: 'warning', job: 'lucid-mesh', instance: 'cp:8080', kind: 'root' },
        exp_annotations: {
          summary: `The mesh root certificate expires in ${humanizeDuration(rootLeft - 60)}`,
          description:
            "The newest CA root of cp:8080 expires within 30 days; every mesh certificate fails with it. Rotate: `lucid-mesh ca rotate` (with --ca-cert/--ca-key for your own CA), or with --ca consul-connect Consul's CA (consul connect ca set-config).",
        },
      };
      const r = promtoolTest([
        {
          interval: '30s',
          input_series: series,
          alert_rule_test: [
            { eval_time: '50m', alertname: 'MeshCertificateExpiringSoon', exp_alerts: [] },
            { eval_time: '59m', alertname: 'MeshCertificateExpiringSoon', exp_alerts: [leafAlert] },
            {
              eval_time: '1m',
              alertname: 'MeshRootCertificateExpiringSoon',
              exp_alerts: [rootAlert],
            },
          ],
        },
      ]);
      expect(r.out).toContain('SUCCESS');
      expect(r.code).toBe(0);
    } finally {
      await secured.stop();
      ca.leaves.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
