// What runs during start-up must still be optimized once serving starts. A start-up hold of
// V8's optimizing compilers (`--max-opt=0` until the first stream, a305463) left every function
// first called while it held marked "never optimize" for good: the W9 storm's CPU doubled.
// The child imports the start-up module as the CLI does, calls a function during start-up,
// lets the holds go as the first stream does, and asks V8 whether that function got optimized.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const startupHeap = fileURLToPath(new URL('../../src/startup-heap.ts', import.meta.url));

const child = `
const { releaseStartupHolds } = await import(${JSON.stringify(startupHeap)});
function hot(n) { let s = 0; for (let i = 0; i < n; i++) { s = (s + ((i * 31) ^ (s >>> 3))) | 0; } return s; }
for (let i = 0; i < 5000; i++) hot(1000); // hot while start-up holds whatever it holds
// natives syntax is only parsed in a Function body (the module parser would refuse it)
const statusOf = new Function('f', 'return %GetOptimizationStatus(f)');
const held = statusOf(hot);
releaseStartupHolds();
for (let i = 0; i < 20000; i++) hot(1000);
const status = statusOf(hot);
console.log(JSON.stringify({ held, status }));
`;

describe('start-up holds', () => {
  it('keep start-up code interpreted, and optimizable once they end (V8 optimizes it once hot)', async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--allow-natives-syntax', '--import', 'tsx', '--input-type=module', '-e', child],
      { timeout: 60_000 },
    );
    const { held, status } = JSON.parse(stdout.trim()) as { held: number; status: number };
    // V8's OptimizationStatus bits: 2 = never optimize, 16 = optimized, 128 = interpreted,
    // 1 << 15 = baseline (Sparkplug) code.
    expect(held & 128, `held ${held.toString(2)}: not interpreted under the hold`).toBe(128);
    expect(held & (1 << 15), `held ${held.toString(2)}: Sparkplug compiled it`).toBe(0);
    expect(held & 16, `held ${held.toString(2)}: TurboFan optimized it`).toBe(0);
    expect(status & 2, `status ${status.toString(2)}: marked never-optimize`).toBe(0);
    expect(status & 16, `status ${status.toString(2)}: not optimized`).toBe(16);
  });
});
