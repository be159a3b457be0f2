// `lucid-mesh serve` must stop on SIGTERM also when whatever read its log has gone (a log
// shipper restarted, `serve | head`). sonic-boom 4's flushSync, which pino runs at exit, retried
// a broken pipe (EPIPE) forever in Atomics.wait: the process hung until SIGKILL, and a second
// signal could not reach it either (package.json overrides it with 5.0.2, which throws).
import { setTimeout as sleep } from 'node:timers/promises';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { plainServeArgs, spawnCli, type CliProcess } from '../support/cli-process.js';
import { freePorts } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

const running: CliProcess[] = [];
afterEach(async () => {
  for (const p of running.splice(0)) await p.stop(1000);
});

describe('serve with its log reader gone', () => {
  it('exits 0 on SIGTERM after the pipe its log went to was closed', async () => {
    const [admin, xds] = await freePorts(2);
    const p = spawnCli(plainServeArgs('examples/catalog.yaml', { admin: admin!, xds: xds! }), {
      LUCID_DATA_DIR: mkdtempSync(join(tmpdir(), 'lucid-serve-data-')),
    });
    running.push(p);
    await waitFor(() => p.stderr().includes('control plane started'), {
      what: 'serve started',
      timeoutMs: 20_000,
      details: p.output,
    });
    p.child.stderr!.destroy(); // the reader goes: the serve's next writes fail with EPIPE
    p.child.kill('SIGTERM');
    const code = await Promise.race([p.exited, sleep(10_000).then(() => 'still running')]);
    expect(code).toBe(0);
  });
});
