// The options the bench tests run runBench with: a small quick run in a temporary directory,
// file source, two workers, no profile, quiet.
import { join } from 'node:path';
import type { BenchOptions } from '../../bench/harness.js';

export function quickBenchOptions(
  dir: string,
  run: Pick<BenchOptions, 'sessions' | 'modes'> & Partial<BenchOptions>,
): BenchOptions {
  return {
    cp: { source: 'file', logLevel: 'info', debounceMs: 20, maxDebounceMs: 200 },
    workers: 2,
    churnWriteMs: 100,
    profile: false,
    quick: true,
    outDir: join(dir, 'out'),
    resultsPath: join(dir, 'RESULTS.md'),
    keepTemp: false,
    argv: [],
    label: 'test',
    log: () => undefined,
    ...run,
  };
}
