// `--workload W6:declared` (issue 16's "W2 storm (W6) ≤ 2 s with scoping") on a tiny mesh: the
// session runs with declared upstreams against `--scope declared`, and RESULTS.md's targets
// judge its storm in a row of its own. The 1,000-proxy run is `npm run bench -- --workload
// W6:declared`.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { runBench } from '../../bench/harness.js';
import { parseWorkloads } from '../../bench/workloads.js';
import { quickBenchOptions } from './quick-bench.js';

const dir = mkdtempSync(join(tmpdir(), 'lucid-scoped-storm-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('W6:declared', () => {
  it('is W2’s shape with 10 declared upstreams per service', () => {
    const [plan, ...rest] = parseWorkloads('W6:declared');
    expect(rest).toEqual([]);
    expect(plan).toMatchObject({
      name: 'W6 declared',
      services: 1000,
      instances: 5,
      proxies: 1000,
      scope: { upstreams: 10 },
    });
  });

  it('configures every proxy with its scope only and reports the storm against the 2 s target', async () => {
    const plan = {
      ...parseWorkloads('W6:declared')[0]!,
      services: 12,
      instances: 2,
      proxies: 12,
      scope: { upstreams: 3 },
      changes: 2,
      churn: [],
    };
    const { run } = await runBench(quickBenchOptions(dir, { sessions: [plan], modes: ['delta'] }));
    const s = run.sessions[0]!;
    expect(s.errors).toEqual([]);
    expect(s.storm?.configured).toBe(12);
    // Where the storm's wall time went: every connection up, then the first response, then all.
    const st = s.storm!;
    expect(st.connectedMs?.n).toBe(12);
    expect(st.firstResponseMs?.n).toBe(12);
    expect(st.firstServedMs).toBeGreaterThan(0);
    expect(st.firstServedMs).toBeLessThanOrEqual(st.allConfiguredMs);
    expect(st.connectedMs!.max).toBeLessThan(st.allConfiguredMs);
    // 3 upstreams in scope, not the 12 services of the catalog.
    expect(s.agreement).toMatchObject({ agree: true, countsMatch: true, nacks: 0 });
    expect(s.agreement!.expectedCounts).toMatchObject({ clusters: 3, endpoints: 3 });

    const md = readFileSync(join(dir, 'RESULTS.md'), 'utf8');
    expect(md).toContain('All connected / first response ms');
    const row = md
      .split('\n')
      .find((l) => l.startsWith('| W6 storm with scoping') && l.includes(', delta'));
    expect(row).toBeDefined();
    expect(row).toContain('≤ 2 s');
    expect(row).toMatch(/\| (met|\*\*missed\*\*) +\|$/);
    // The unscoped W6 target does not take the scoped session's storm.
    const unscoped = md.split('\n').find((l) => l.startsWith('| W6 storm: 1000 proxies'));
    expect(unscoped ?? '').not.toMatch(/\| (met|\*\*missed\*\*) +\|$/);
  }, 120_000);

  it('is refused with --peer (the peer has no scoping)', async () => {
    const err = await promisify(execFile)(
      process.execPath,
      [
        '--import',
        'tsx',
        'bench/run.ts',
        '--workload',
        'W6:declared',
        '--peer',
        'go-control-plane',
      ],
      { cwd: join(import.meta.dirname, '..', '..') },
    ).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(err?.code).toBe(2);
    expect(err?.stderr).toContain('--peer: W6:declared and W9:declared need --scope declared');
  }, 60_000);
});
