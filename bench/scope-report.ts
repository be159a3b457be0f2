// RESULTS.md's config scoping section (issue 16): the latest `--workload scope-envoy` run.
import type { RunResult, ScopeEnvoyResult } from './types.js';

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** The latest scope-envoy result, with the run it came from. */
export function latestScopeEnvoy(
  runs: Array<{ run: RunResult; file: string }>,
): { run: RunResult; file: string; value: ScopeEnvoyResult } | undefined {
  let latest: { run: RunResult; file: string; value: ScopeEnvoyResult } | undefined;
  for (const { run, file } of runs) {
    for (const value of run.scopeEnvoy ?? []) latest = { run, file, value };
  }
  return latest;
}

/** Markdown: the method, one row per sample, and the medians with their ratio. */
export function scopeEnvoySection(r: ScopeEnvoyResult): string {
  const row = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const lines = [
    '## Config scoping on a real Envoy (issue 16)',
    '',
    `\`--workload scope-envoy\` (not in the default set; bench/scope-envoy.ts): the control plane with \`--scope declared\` on a catalog of ${r.services.toLocaleString('en')} services × ${r.instances} instances; one real Envoy sidecar (1 worker, delta xDS) of a service that declares no upstreams (**wide**: every service in scope) or ${r.declared} (**narrow**), started alone, measured ${3} s after its clusters are all active (RSS from /proc, the size of \`/config_dump?include_eds\`), then stopped; the two interleaved, order alternating. Clusters include Envoy's own xDS cluster (and the tracing one when configured). See docs/scoping.md.`,
    '',
    row(['Scope', 'Round', 'Clusters', 'RSS MiB', 'config_dump KiB', 'Start → all clusters ms']),
    row(['-----', '-----', '--------', '-------', '---------------', '-----------------------']),
    ...r.samples.map((s) =>
      row([
        s.scope,
        String(s.round),
        String(s.clusters),
        s.rssMiB.toFixed(1),
        s.configDumpKiB.toFixed(0),
        String(s.readyMs),
      ]),
    ),
  ];
  const of = (scope: 'wide' | 'narrow', k: 'rssMiB' | 'configDumpKiB') =>
    median(r.samples.filter((s) => s.scope === scope).map((s) => s[k]));
  if (r.samples.some((s) => s.scope === 'wide') && r.samples.some((s) => s.scope === 'narrow')) {
    const rssW = of('wide', 'rssMiB');
    const rssN = of('narrow', 'rssMiB');
    const dumpW = of('wide', 'configDumpKiB');
    const dumpN = of('narrow', 'configDumpKiB');
    lines.push(
      '',
      `Medians: RSS ${rssW.toFixed(1)} MiB with ${r.services.toLocaleString('en')} services in scope against ${rssN.toFixed(1)} MiB with ${r.declared} (${(rssW / rssN).toFixed(2)}×; ${(rssW - rssN).toFixed(1)} MiB saved per sidecar); config_dump ${dumpW.toFixed(0)} KiB against ${dumpN.toFixed(0)} KiB (${(dumpW / dumpN).toFixed(1)}×).`,
    );
  }
  if (r.errors.length > 0) lines.push('', ...r.errors.map((e) => `- error: ${e}`));
  return lines.join('\n');
}
