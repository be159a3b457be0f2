// Mistakes an operator makes on the command line, run on the real CLI: each ends with exit 2
// and one line naming the flag and the value, never a stack trace; `--version` answers.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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

  it('--data-dir naming a file (or a path through one): exit 2 naming the flag and the value', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lucid-data-dir-file-'));
    try {
      const file = join(dir, 'state');
      writeFileSync(file, 'not a directory\n');
      const runs = [
        {
          cmd: [
            'serve',
            '--catalog',
            'examples/catalog.yaml',
            '--admin-port',
            '0',
            '--xds-port',
            '0',
          ],
          dataDir: file,
          what: 'a file',
        },
        { cmd: ['token', 'issue', '--service', 'web'], dataDir: file, what: 'a file' },
        {
          cmd: ['ca', 'show'],
          dataDir: join(file, 'x'),
          what: 'a part of that path is a file',
        },
      ];
      const results = await Promise.all(
        runs.map((run) => runCli([...run.cmd, '--data-dir', run.dataDir])),
      );
      for (const [i, run] of runs.entries()) {
        const r = results[i]!;
        expect(r.code, r.stderr).toBe(2);
        expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
        expect(r.stderr).toContain(
          `--data-dir: expected a directory, got ${JSON.stringify(run.dataDir)} (${run.what})`,
        );
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('serve --catalog, --traffic or --policy naming a directory: exit 2 at once, one line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lucid-file-flag-dir-'));
    try {
      const serve = ['serve', '--admin-port', '0', '--xds-port', '0', '--data-dir', dir];
      const cases = [
        ['--catalog', dir],
        ['--catalog', 'examples/catalog.yaml', '--traffic', dir],
        ['--catalog', 'examples/catalog.yaml', '--policy', dir],
      ];
      const results = await Promise.all(cases.map((flags) => runCli([...serve, ...flags])));
      for (const [i, flags] of cases.entries()) {
        expect(results[i]).toMatchObject({
          code: 2,
          stderr: `lucid-mesh serve: ${flags.at(-2)}: expected a file, got the directory ${JSON.stringify(dir)}\n`,
        });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an operator flag that came from the environment: the line names the variable', async () => {
    const [server, both] = await Promise.all([
      runCli(['status'], { LUCID_SERVER: 'localhost:8080' }),
      runCli(['status', '--server', 'http://127.0.0.1:1'], {
        LUCID_OPERATOR_TOKEN: 'a.b.c',
        LUCID_OPERATOR_TOKEN_FILE: join(repoRoot, 'package.json'),
      }),
    ]);
    expect(server).toMatchObject({
      code: 2,
      stderr:
        'lucid-mesh status: --server: expected http://HOST:PORT or https://HOST:PORT, ' +
        'got "localhost:8080" (from LUCID_SERVER)\n',
    });
    expect(both).toMatchObject({
      code: 2,
      stderr:
        'lucid-mesh status: LUCID_OPERATOR_TOKEN and LUCID_OPERATOR_TOKEN_FILE are both set: unset one\n',
    });
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
