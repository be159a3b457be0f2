// Once serving, V8's young generation grows up to LUCID_YOUNG_GEN_MIB, not to V8's 32 MiB
// (src/young-generation-cap.ts): in the W9 storm the grown new space was ~3 KB of RSS per proxy
// that V8 never gave back. The child allocates as a busy server does (objects surviving a few
// scavenges, the event loop turning in between) and reports the new space's size.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { Command } from 'commander';
import { youngGenOption } from '../../src/cli/young-gen-flag.js';
import { youngGenerationCap } from '../../src/young-generation-cap.js';

const capModule = fileURLToPath(new URL('../../src/young-generation-cap.ts', import.meta.url));
const MiB = 2 ** 20;

const child = `
import { getHeapSpaceStatistics } from 'node:v8';
const { capYoungGeneration } = await import(${JSON.stringify(capModule)});
capYoungGeneration();
const keep = [];
for (let i = 0; i < 3e6; i++) {
  keep.push({ i, list: [i] });
  if (keep.length > 200000) keep.splice(0, 100000);
  if (i % 20000 === 0) await new Promise((r) => setImmediate(r));
}
const space = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
console.log(JSON.stringify({ newSpace: space.space_size }));
`;

async function newSpaceAfterLoad(cap: string): Promise<number> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', child],
    { timeout: 60_000, env: { ...process.env, LUCID_YOUNG_GEN_MIB: cap } },
  );
  return (JSON.parse(stdout.trim()) as { newSpace: number }).newSpace;
}

describe('young generation cap', () => {
  it('holds the new space at the cap under load; off, V8 grows it to 32 MiB', async () => {
    const [capped, uncapped] = await Promise.all([
      newSpaceAfterLoad('4'),
      newSpaceAfterLoad('off'),
    ]);
    // The check runs after GCs: one doubling past the cap within an event-loop turn at most.
    expect(capped / MiB).toBeLessThanOrEqual(8);
    expect(uncapped / MiB).toBeGreaterThanOrEqual(16);
  });

  it('names the variable and the value it refuses', () => {
    expect(youngGenerationCap({})).toBe(8 * MiB);
    expect(youngGenerationCap({ LUCID_YOUNG_GEN_MIB: 'off' })).toBeUndefined();
    expect(youngGenerationCap({ LUCID_YOUNG_GEN_MIB: '16' })).toBe(16 * MiB);
    expect(() => youngGenerationCap({ LUCID_YOUNG_GEN_MIB: '1.5' })).toThrow(
      'LUCID_YOUNG_GEN_MIB: expected an integer from 2 to 1024 (MiB of V8 new space) or "off", got "1.5"',
    );
  });

  it('serve --young-gen-mib: a value, off, the default, and a clear error', () => {
    const parse = (...args: string[]) => {
      const cmd = new Command().exitOverride().configureOutput({ writeErr: () => undefined });
      cmd.addOption(youngGenOption());
      return cmd.parse(args, { from: 'user' }).opts<{ youngGenMib: number }>();
    };
    expect(parse('--young-gen-mib', '16').youngGenMib).toBe(16 * MiB);
    expect(parse('--young-gen-mib', 'off').youngGenMib).toBe(0);
    expect(parse().youngGenMib).toBe(8 * MiB);
    expect(() => parse('--young-gen-mib', '1')).toThrow(
      '--young-gen-mib: expected an integer from 2 to 1024 (MiB of V8 new space) or "off", got "1"',
    );
  });
});
