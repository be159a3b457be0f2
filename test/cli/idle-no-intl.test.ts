// An idle `lucid-mesh serve` calls none of the locale-aware built-ins (issue 16, idle RSS): the
// first String#localeCompare maps ~3 MiB of ICU data and the first Intl.NumberFormat or
// Date#toLocaleString ~7.5 MiB, for the life of the process. A serve with secure defaults
// (the CA created and its certificates issued), the example catalog's first snapshot built and
// the xDS codecs warmed, then scraped and asked for its status, runs with them wrapped
// (test/support/intl-calls.mjs) and must not have called one.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot, spawnCli } from '../support/cli-process.js';
import { httpGet } from '../support/http-app.js';
import { freePorts } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

describe('serve, idle', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'lucid-idle-intl-'));
  const stops: Array<() => Promise<void>> = [];
  afterAll(async () => {
    await Promise.all(stops.map((s) => s()));
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('loads no ICU data: no localeCompare, Intl.* or toLocale*String call', async () => {
    const [admin, xds] = (await freePorts(2)) as [number, number];
    const preload = join(repoRoot, 'test', 'support', 'intl-calls.mjs');
    const serve = spawnCli(
      [
        'serve',
        ...['--catalog', 'examples/catalog.yaml', '--host', '127.0.0.1'],
        ...['--admin-port', String(admin), '--xds-port', String(xds)],
      ],
      {
        LUCID_DATA_DIR: dataDir,
        NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${preload}`,
      },
    );
    stops.push(() => serve.stop());
    await waitFor(
      async () =>
        (await httpGet(`http://127.0.0.1:${admin}/ready`).catch(() => undefined))?.status === 200,
      { what: 'serve /ready', timeoutMs: 60_000, details: () => serve.output() },
    );
    const metrics = await httpGet(`http://127.0.0.1:${admin}/metrics`);
    expect(metrics.status).toBe(200);
    await sleep(1500); // the codec warm-up runs once the thread is idle after the first snapshot
    await serve.stop();
    expect(serve.output()).toContain('"msg"'); // it logged, so the preload's stderr is the serve's
    expect(
      serve
        .output()
        .split('\n')
        .filter((l) => l.startsWith('INTL ')),
    ).toEqual([]);
  }, 90_000);
});
