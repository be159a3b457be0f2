// `lucid-mesh serve`: a lone catalog edit is built at once, not after the debounce, so
// service_discovery_latency_seconds (source change → snapshot) stays under the seeds'
// HighServiceDiscoveryLatency threshold (p95 above 100 ms). Each edit waiting out the whole
// 100 ms debounce had put every one of them above it: the alert fired on any activity.
// The test sets a 1 s debounce so that "at once" and "after the debounce" stay far apart on a
// loaded machine (a 100 ms bound failed there: a build took 100+ ms at load 11).
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnCli, type CliProcess } from '../support/cli-process.js';
import { httpGet } from '../support/http-app.js';
import { freePorts } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

const EDITS = 5;
const DEBOUNCE_MS = 1000;

describe('serve: discovery latency with the default debounce', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lucid-discovery-latency-'));
  let p: CliProcess | undefined;
  afterAll(async () => {
    await p?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('builds each lone catalog edit at once, not after the debounce', async () => {
    const catalog = join(dir, 'catalog.yaml');
    copyFileSync('examples/catalog.yaml', catalog);
    const [admin, xds] = await freePorts(2);
    p = spawnCli(
      ['serve', '--catalog', catalog, '--host', '127.0.0.1', '--debounce-ms', String(DEBOUNCE_MS)],
      {
        LUCID_DATA_DIR: join(dir, 'data'),
        ADMIN_PORT: String(admin),
        XDS_PORT: String(xds),
      },
    );
    const metric = async (name: string): Promise<number> => {
      const body = (await httpGet(`http://127.0.0.1:${admin}/metrics`)).body;
      const line = body.split('\n').find((l) => l.startsWith(`${name} `));
      return line === undefined ? Number.NaN : Number(line.slice(name.length + 1));
    };
    await waitFor(async () => (await metric('lucid_mesh_snapshots_built_total')) === 1, {
      what: 'serve built its first snapshot',
      timeoutMs: 20_000,
      details: p.output,
    });
    const original = readFileSync(catalog, 'utf8');
    for (let i = 1; i <= EDITS; i++) {
      // A real change each time: hello-1 renamed and back.
      writeFileSync(
        catalog,
        i % 2 ? original.replace('- id: hello-1\n', '- id: hello-1b\n') : original,
      );
      await waitFor(async () => (await metric('lucid_mesh_snapshots_built_total')) === 1 + i, {
        what: `edit ${i} built`,
        timeoutMs: 5_000,
      });
      // Apart by more than the debounce: each edit is a lone change.
      await new Promise((r) => setTimeout(r, DEBOUNCE_MS + 200));
    }
    const count = await metric('service_discovery_latency_seconds_count');
    // Half the debounce: an edit held for the debounce would take at least all of it.
    const within = await metric('service_discovery_latency_seconds_bucket{le="0.5"}');
    expect(count).toBe(1 + EDITS);
    expect(within, `observations within 500 ms, of ${count}`).toBe(count);
  });
});
