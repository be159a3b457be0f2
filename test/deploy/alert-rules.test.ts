// compose/prometheus: the alert and recording rules checked and unit-tested by the real promtool
// (Debian's prometheus package, scripts/tools/promtool.sh). alerts.test.yml makes every alert
// fire on a synthetic series and stay quiet on healthy ones.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { toolPath } from '../support/tools.js';

const promtool = toolPath('promtool');
const dir = 'compose/prometheus';
const scratch = mkdtempSync(join(tmpdir(), 'lucid-alerts-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function run(...args: string[]): { code: number; out: string } {
  const r = spawnSync(promtool, args, { encoding: 'utf8' });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

interface Rule {
  alert?: string;
  record?: string;
}

describe('alert rules (real promtool)', () => {
  it('promtool check rules accepts alerts.yml', () => {
    const r = run('check', 'rules', `${dir}/alerts.yml`);
    expect(r.out).toMatch(/SUCCESS: \d+ rules found/);
    expect(r.code).toBe(0);
  });

  it('promtool check config accepts prometheus.yml, which scrapes the sidecars', () => {
    const r = run('check', 'config', '--syntax-only', `${dir}/prometheus.yml`);
    expect(r.code, r.out).toBe(0);
    const config = parse(readFileSync(`${dir}/prometheus.yml`, 'utf8')) as {
      scrape_configs: Array<{ job_name: string; metrics_path: string }>;
    };
    expect(config.scrape_configs).toContainEqual(
      expect.objectContaining({
        job_name: 'lucid-mesh-sidecars',
        metrics_path: '/stats/prometheus',
      }),
    );
  });

  it("the sidecar targets are the port compose's bootstrap gives --prometheus-bind", () => {
    const config = parse(readFileSync(`${dir}/prometheus.yml`, 'utf8')) as {
      scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: string[] }> }>;
    };
    const job = config.scrape_configs.find((j) => j.job_name === 'lucid-mesh-sidecars');
    const targets = job?.static_configs.flatMap((c) => c.targets) ?? [];
    const bind = /--prometheus-bind 0\.0\.0\.0:(\d+)/.exec(
      readFileSync('compose/README.md', 'utf8'),
    );
    expect(bind, 'compose/README.md bootstraps the sidecar with --prometheus-bind').not.toBeNull();
    expect(targets.length).toBeGreaterThan(0);
    for (const target of targets) expect(target).toMatch(new RegExp(`:${bind?.[1]}$`));
  });

  it('promtool test rules: each alert fires on its synthetic series and stays quiet otherwise', () => {
    const r = run('test', 'rules', `${dir}/alerts.test.yml`);
    expect(r.out).toContain('SUCCESS');
    expect(r.code).toBe(0);
  });

  it('the unit tests cover every alert, firing and quiet', () => {
    const rules = (
      parse(readFileSync(`${dir}/alerts.yml`, 'utf8')) as { groups: Array<{ rules: Rule[] }> }
    ).groups.flatMap((g) => g.rules);
    const tests = (
      parse(readFileSync(`${dir}/alerts.test.yml`, 'utf8')) as {
        tests: Array<{
          name: string;
          alert_rule_test: Array<{ alertname: string; exp_alerts: [] }>;
        }>;
      }
    ).tests;
    const alerts = rules.flatMap((r) => (r.alert ? [r.alert] : []));
    expect(alerts).toEqual(
      expect.arrayContaining(['CircuitBreakerOpen', 'MTLSAuthenticationFailures']),
    );
    expect(rules.flatMap((r) => (r.record ? [r.record] : []))).toEqual(
      expect.arrayContaining(['circuit_breaker_state', 'mtls_authentication_failures_total']),
    );
    const firing = tests.find((t) => t.name === 'firing')!.alert_rule_test;
    const quiet = tests.find((t) => t.name === 'quiet')!.alert_rule_test;
    for (const alert of alerts) {
      expect(
        firing.some((t) => t.alertname === alert && t.exp_alerts.length > 0),
        alert,
      ).toBe(true);
      expect(
        quiet.some((t) => t.alertname === alert && t.exp_alerts.length === 0),
        alert,
      ).toBe(true);
    }
  });

  it('a rule that no longer fires on its series fails promtool test rules', () => {
    // The same tests against rules whose mTLS threshold was raised tenfold: the firing case must fail.
    const raised = readFileSync(`${dir}/alerts.yml`, 'utf8').replace('* 60 > 10', '* 60 > 100');
    expect(raised).not.toBe(readFileSync(`${dir}/alerts.yml`, 'utf8'));
    writeFileSync(join(scratch, 'alerts.yml'), raised);
    copyFileSync(`${dir}/alerts.test.yml`, join(scratch, 'alerts.test.yml'));
    const r = run('test', 'rules', join(scratch, 'alerts.test.yml'));
    expect(r.code).not.toBe(0);
    expect(r.out).toContain('alertname: MTLSAuthenticationFailures');
  });
});
