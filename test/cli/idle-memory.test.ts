// `lucid-mesh serve` with no proxy connected keeps V8's young generation at its initial size
// (src/startup-heap.ts): startup used to grow it to 32 MiB, ~28 MiB of idle RSS.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { plainServeArgs, spawnCli } from '../support/cli-process.js';
import { httpGet } from '../support/http-app.js';
import { freePorts } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

const MiB = 1024 * 1024;

/** A prom-client default metric of the control plane's /metrics, in bytes. */
function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(name));
  if (!line) throw new Error(`${name} missing from /metrics`);
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('serve, idle', () => {
  const stops: Array<() => void> = [];
  afterAll(() => stops.forEach((s) => s()));

  it('keeps the young generation at its initial size until a proxy connects', async () => {
    const [admin, xds] = (await freePorts(2)) as [number, number];
    const serve = spawnCli(plainServeArgs('examples/catalog.yaml', { admin, xds }), {
      LUCID_DATA_DIR: mkdtempSync(join(tmpdir(), 'lucid-idle-')),
    });
    stops.push(() => serve.child.kill('SIGKILL'));
    await waitFor(
      async () => {
        const r = await httpGet(`http://127.0.0.1:${admin}/ready`).catch(() => undefined);
        return r?.status === 200;
      },
      { what: 'serve /ready', timeoutMs: 30_000, details: serve.stderr },
    );
    const text = (await httpGet(`http://127.0.0.1:${admin}/metrics`)).body;
    const young = metric(text, 'lucid_mesh_nodejs_heap_space_size_total_bytes{space="new"}');
    const rss = metric(text, 'lucid_mesh_process_resident_memory_bytes');
    console.log(`idle: young generation ${young / MiB} MiB, RSS ${(rss / MiB).toFixed(1)} MiB`);
    // V8's initial young generation is 2 MiB (two 1 MiB semi-spaces); grown, it was 32 MiB.
    expect(young).toBeLessThanOrEqual(4 * MiB);
  });
});
