// Mistakes an operator makes on the command line, run on the real CLI: each ends with exit 2
// and one line naming the flag and the value, never a stack trace; `--version` answers.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot, runCli } from '../support/cli-process.js';

describe('usage errors on the real CLI', () => {
  it('tail --count 0 / abc / -1: exit 2, one line naming --count and the value (no stack trace)', async () => {
    const results = await Promise.all(
      ['0', 'abc', '-1'].map((value) =>
        runCli(['tail', '--count', value, '--server', 'http://127.0.0.1:1']),
      ),
    );
    for (const [i, value] of ['0', 'abc', '-1'].entries()) {
      const r = results[i]!;
      expect(r.code, r.stderr).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).not.toMatch(/\n\s+at /);
      const lines = r.stderr.trim().split('\n');
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toContain(`--count: expected a positive integer, got "${value}"`);
    }
  });

  it('--version and -V print the package version, exit 0', async () => {
    const { version } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
      version: string;
    };
    for (const flag of ['--version', '-V']) {
      const r = await runCli([flag]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(`${version}\n`);
    }
  });
});
