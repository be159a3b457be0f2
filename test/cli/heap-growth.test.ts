// Once proxies connect, the old generation may grow to twice what the last full collection
// kept (startup-heap.ts): V8's own factor at a 1,000-proxy fan-out left so little headroom that
// every endpoint change paid a full mark-compact. The child imports the start-up module as the
// CLI does, lets the holds go as the first stream does, forces a full GC and prints V8's own
// account of the limit it set (--trace-gc-verbose: "Limit: old size …, new limit … (factor)").
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const startupHeap = fileURLToPath(new URL('../../src/startup-heap.ts', import.meta.url));

const child = (release: boolean) => `
const { releaseStartupHolds } = await import(${JSON.stringify(startupHeap)});
${release ? 'releaseStartupHolds();' : ''}
const keep = Array.from({ length: 100000 }, (_, i) => ({ i, s: 'x-' + i }));
globalThis.gc();
console.log(keep.length);
`;

/** The growing factor of the old generation's limit V8 set at the last full collection. */
async function lastFactor(release: boolean, percent?: string): Promise<number> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.LUCID_HEAP_GROWING_PERCENT;
  if (percent !== undefined) env.LUCID_HEAP_GROWING_PERCENT = percent;
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [
      '--expose-gc',
      '--trace-gc-verbose',
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      child(release),
    ],
    { timeout: 60_000, env, maxBuffer: 16 * 1024 * 1024 },
  );
  const limits = [
    ...stdout.matchAll(/\[HeapController\] Limit: .*new limit: \d+ KB \(([\d.]+)\)/g),
  ];
  const last = limits.at(-1);
  if (!last) throw new Error(`no limit line in V8's trace:\n${stdout.slice(-2000)}`);
  return Number(last[1]);
}

describe('old generation growth under load', () => {
  it('is twice the live heap once the first stream opens, another percentage by LUCID_HEAP_GROWING_PERCENT', async () => {
    expect(await lastFactor(true)).toBe(2);
    expect(await lastFactor(true, '150')).toBe(2.5);
  });

  it("is V8's own before the first stream, and with LUCID_HEAP_GROWING_PERCENT=0", async () => {
    // V8 picks its factor from its GC and allocation speeds; a small heap collected once by
    // hand gets its largest (4), which the setting would have made 2.
    expect(await lastFactor(false)).not.toBe(2);
    expect(await lastFactor(true, '0')).not.toBe(2);
  });
});
