// Every metric the shipped alert rules and dashboard use is one the control plane exports.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { Metrics } from '../../src/telemetry/metrics.js';
import { registerReplicaSettingsMetric } from '../../src/telemetry/state-metrics.js';

const PROMQL_WORDS = new Set([
  'by',
  'without',
  'and',
  'or',
  'unless',
  'on',
  'ignoring',
  'le',
  'offset',
  'bool',
]);
const PROMETHEUS_OWN = new Set(['up']);

/** Metric names in a PromQL expression: identifiers that are not functions, keywords or label names. */
function metricNames(expr: string): string[] {
  const withoutStrings = expr
    .replace(/"[^"]*"/g, '""')
    .replace(/\{[^}]*\}/g, '{}')
    .replace(/\[[^\]]*\]/g, '[]');
  const withoutGroupings = withoutStrings.replace(/\b(by|without|on|ignoring)\s*\([^)]*\)/g, '');
  const names = [...withoutGroupings.matchAll(/\b[a-zA-Z_:][a-zA-Z0-9_:]*\b(?!\s*\()/g)].map(
    (m) => m[0],
  );
  return names.filter((n) => !PROMQL_WORDS.has(n) && !/^\d/.test(n) && n !== 'e');
}

async function exported(): Promise<Set<string>> {
  const metrics = new Metrics({
    store: new SnapshotStore({ logger: silentLogger }),
    streams: () => [],
    // With a CA (mTLS on, the default) the certificate gauges are exported too; their series
    // against a real CA: test/telemetry/alert-series.test.ts.
    certificates: { expiries: () => ({ leaves: [], roots: [] }) },
  });
  // With --state consul|etcd (replicas sharing state), serve registers this one too.
  registerReplicaSettingsMetric(metrics.registry, { mismatched: () => 0, mismatches: () => [] });
  const names = new Set<string>();
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    names.add(m.name);
    if (m.type === ('histogram' as never))
      for (const s of ['_bucket', '_sum', '_count']) names.add(`${m.name}${s}`);
  }
  return names;
}

describe('observability assets', () => {
  it('alert rules reference only exported metrics', async () => {
    const names = await exported();
    const doc = parse(readFileSync('compose/prometheus/alerts.yml', 'utf8')) as {
      groups: Array<{ rules: Array<{ alert?: string; record?: string; expr: string }> }>;
    };
    const rules = doc.groups.flatMap((g) => g.rules);
    // Recording rules define names too; the sidecars' own Envoy stats (envoy_*) are scraped
    // from their admin /stats/prometheus (alert-rules.test.ts unit-tests those rules).
    for (const r of rules) if (r.record) names.add(r.record);
    expect(rules.map((r) => r.alert)).toEqual(
      expect.arrayContaining([
        'ServiceDiscoveryDown',
        'ServiceMeshControllerDown',
        'HighServiceDiscoveryLatency',
      ]),
    );
    for (const rule of rules) {
      for (const name of metricNames(rule.expr)) {
        if (PROMETHEUS_OWN.has(name) || name.startsWith('envoy_')) continue;
        expect(names, `${rule.alert ?? rule.record} uses ${name}`).toContain(name);
      }
    }
  });

  it('dashboard panels query only exported metrics', async () => {
    const names = await exported();
    const dash = JSON.parse(readFileSync('compose/grafana/lucid-mesh-dashboard.json', 'utf8')) as {
      panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
    };
    expect(dash.panels.length).toBeGreaterThan(5);
    for (const panel of dash.panels) {
      for (const target of panel.targets) {
        for (const name of metricNames(target.expr))
          expect(names, `${panel.title} uses ${name}`).toContain(name);
      }
    }
  });

  it('the metric-name extractor sees through PromQL', () => {
    expect(
      metricNames('histogram_quantile(0.95, sum by (le) (rate(foo_bucket{a="b"}[5m]))) > 0.1'),
    ).toEqual(['foo_bucket']);
    expect(
      metricNames('time() - max by (source) (x_seconds) > 120 and increase(y_total[2m]) > 0'),
    ).toEqual(['x_seconds', 'y_total']);
  });
});
