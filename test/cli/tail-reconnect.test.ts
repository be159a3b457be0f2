// `lucid-mesh tail` follows the control plane across a restart: it reconnects by itself and
// prints the changes made after the restart.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/app.js';
import { CatalogFile, startTestControlPlane } from '../support/mesh.js';
import { freePort } from '../support/ports.js';
import { cliEntry } from '../support/tools.js';
import { waitFor } from '../support/wait.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const catalog = new CatalogFile();
const doc = (port: number) => ({
  services: [{ name: 'web', instances: [{ id: 'web-1', address: '127.0.0.1', port }] }],
});

describe('lucid-mesh tail', () => {
  let cp: RunningControlPlane | undefined;
  afterAll(async () => {
    await cp?.stop();
    catalog.remove();
  });

  it('reconnects when the control plane restarts and keeps printing changes', async () => {
    catalog.write(doc(8001));
    const admin = await freePort();
    cp = await startTestControlPlane(catalog, { admin });
    const tail = spawn(
      process.execPath,
      ['--import', 'tsx', cliEntry, 'tail', '--server', `http://127.0.0.1:${admin}`],
      {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    tail.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    tail.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    try {
      await waitFor(() => cp!.events.subscriberCount > 0, {
        what: 'tail connected',
        timeoutMs: 15_000,
        details: () => out,
      });
      catalog.write(doc(8002));
      await waitFor(() => out.includes('portValue: 8001 → 8002'), {
        what: 'first change printed',
        details: () => out,
      });

      await cp.stop();
      await waitFor(() => out.includes('reconnecting'), {
        what: 'tail notices the restart',
        details: () => out,
      });
      cp = await startTestControlPlane(catalog, { admin });
      await waitFor(() => cp!.events.subscriberCount > 0, {
        what: 'tail reconnected',
        timeoutMs: 15_000,
        details: () => out,
      });
      catalog.write(doc(8003));
      await waitFor(() => out.includes('portValue: 8002 → 8003'), {
        what: 'change after restart printed',
        details: () => out,
      });
      expect(tail.exitCode).toBeNull();
    } finally {
      tail.kill('SIGKILL');
    }
  });
});
