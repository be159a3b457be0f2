// Results of the reliability tests (outages, hostile input) for docs/reliability.md: each test
// writes one small JSON file into test-results/reliability/ (gitignored) with the fault, what
// the control plane did, its figures and the run (date, commit); `npm run reliability:report`
// renders them into the doc's tables. Memory is the test process's, where the control plane
// under test runs: heap after a full GC, and RSS.
import { execFileSync } from 'node:child_process';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export const RELIABILITY_DIR = fileURLToPath(
  new URL('../../test-results/reliability/', import.meta.url),
);

/**
 * Which table of docs/reliability.md a row belongs to: hostile clients, outages of the control
 * plane's own process and data dir, outages of real components (Consul, etcd), broken
 * documents, the soak.
 */
export type ReliabilitySection = 'hostile' | 'outages' | 'components' | 'documents' | 'soak';

export interface MemorySample {
  /** V8 heap in use after a full GC, bytes. */
  readonly heapBytes: number;
  /** Absent where only the heap was measured. */
  readonly rssBytes?: number;
}

export interface ReliabilityResult {
  /** File name and sort key within its section, e.g. "outage-consul-restart". */
  readonly id: string;
  readonly section: ReliabilitySection;
  /** The fault or input, as the table's first column says it. */
  readonly fault: string;
  /** What the control plane did. */
  readonly behaviour: string;
  /** The figures, in words (the table's third column). */
  readonly figures: string;
  /** The test file that produced it. */
  readonly test: string;
  /** Numbers for tools: failed/total requests, recovery time (ms), memory before/after. */
  readonly failedRequests?: number;
  readonly totalRequests?: number;
  readonly recoveryMs?: number;
  readonly memoryBefore?: MemorySample;
  readonly memoryAfter?: MemorySample;
  /** false: the run did not pass (the soak writes its result either way); the report prefers a passing one. */
  readonly passed?: boolean;
}

let gc: (() => void) | undefined;

/** Heap after a full GC and RSS of this process (where the control plane under test runs). */
export function sampleMemory(): MemorySample {
  if (!gc) {
    // vitest runs files without --expose-gc.
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  for (let i = 0; i < 3; i++) gc();
  const m = process.memoryUsage();
  return { heapBytes: m.heapUsed, rssBytes: m.rss };
}

/**
 * Heap in use (not after a GC) and RSS of a `lucid-mesh serve` process, from its /metrics
 * (prom-client's default process and Node.js metrics).
 */
export async function serveMemory(adminPort: number): Promise<MemorySample> {
  const res = await fetch(`http://127.0.0.1:${adminPort}/metrics`);
  const text = await res.text();
  const read = (name: string): number => {
    const m = new RegExp(`^\\w*${name} (\\d+(?:\\.\\d+)?(?:e\\+\\d+)?)$`, 'm').exec(text);
    if (!m) throw new Error(`/metrics on port ${adminPort}: no ${name}`);
    return Number(m[1]);
  };
  return {
    heapBytes: read('nodejs_heap_size_used_bytes'),
    rssBytes: read('process_resident_memory_bytes'),
  };
}

/** "heap after GC 52.1 → 53.0 MiB, RSS 180.0 → 184.0 MiB (test process)" */
export function describeMemory(
  before: MemorySample,
  after: MemorySample,
  where = 'test process',
  heap = 'heap after GC',
): string {
  const mib = (b: number): string => (b / 1048576).toFixed(1);
  return (
    `${heap} ${mib(before.heapBytes)} → ${mib(after.heapBytes)} MiB, ` +
    `RSS ${mib(before.rssBytes ?? NaN)} → ${mib(after.rssBytes ?? NaN)} MiB (${where})`
  );
}

function commit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short=10', 'HEAD'], {
      cwd: dirname(RELIABILITY_DIR),
      encoding: 'utf8',
    }).trim();
  } catch {
    return 'unknown';
  }
}

/** Writes test-results/reliability/<id>.json (write, then rename: never half a file). */
export function writeReliabilityResult(result: ReliabilityResult): string {
  mkdirSync(RELIABILITY_DIR, { recursive: true });
  const file = join(RELIABILITY_DIR, `${result.id}.json`);
  const run = {
    date: new Date().toISOString(),
    commit: commit(),
    node: process.version,
    cpus: cpus().length,
  };
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify({ ...result, run }, null, 2)}\n`);
  renameSync(tmp, file);
  return file;
}

/**
 * A message as a Markdown code span for a row's figures: its first line, cut at `max`
 * characters with an ellipsis, fenced with enough backticks for any it holds.
 */
export function quoted(text: string | undefined, max = 160): string {
  if (text === undefined) return '(none)';
  const line = text.split('\n')[0]!;
  const cut = line.length > max ? `${line.slice(0, max - 1)}…` : line;
  const fence = cut.includes('`') ? '``' : '`';
  return `${fence}${fence.length > 1 ? ' ' : ''}${cut}${fence.length > 1 ? ' ' : ''}${fence}`;
}
