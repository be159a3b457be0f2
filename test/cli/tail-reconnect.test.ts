// `lucid-mesh tail` follows the control plane across a restart: it reconnects by itself, with
// its operator token, and prints the changes made after the restart. A revoked token ends it
// with one line instead of endless retries.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/app.js';
import { openCa, type OpenedCa } from '../../src/ca/open.js';
import { spawnCli } from '../support/cli-process.js';
import { CatalogFile, startTestControlPlane } from '../support/mesh.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

const catalog = new CatalogFile();
const dataDir = mkdtempSync(join(tmpdir(), 'lucid-tail-'));
const doc = (port: number) => ({
  services: [{ name: 'web', instances: [{ id: 'web-1', address: '127.0.0.1', port }] }],
});

/** The control plane as `serve` runs it by default: the admin API needs an operator token. */
async function start(admin: number): Promise<{ cp: RunningControlPlane; ca: OpenedCa }> {
  // A restart is a new process on the same data directory: same token key, same revocations.
  const ca = await openCa({ dataDir, env: {} });
  const cp = await startTestControlPlane(
    catalog,
    { admin },
    { security: { ca, mtls: false, auth: 'none' } },
  );
  return { cp, ca };
}

function tail(admin: number, token: string) {
  return spawnCli(['tail', '--server', `http://127.0.0.1:${admin}`], {
    LUCID_OPERATOR_TOKEN: token,
  });
}

describe('lucid-mesh tail', () => {
  let cp: RunningControlPlane | undefined;
  afterAll(async () => {
    await cp?.stop();
    catalog.remove();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('reconnects when the control plane restarts and keeps printing changes', async () => {
    catalog.write(doc(8001));
    const admin = await freePort();
    let ca: OpenedCa;
    ({ cp, ca } = await start(admin));
    const t = tail(admin, await ca.tokens.issueOperator({ name: 'tail-test' }));
    try {
      await waitFor(() => cp!.events.subscriberCount > 0, {
        what: 'tail connected',
        timeoutMs: 15_000,
        details: t.output,
      });
      catalog.write(doc(8002));
      await waitFor(() => t.stdout().includes('portValue: 8001 → 8002'), {
        what: 'first change printed',
        details: t.output,
      });

      await cp.stop();
      await waitFor(() => t.output().includes('reconnecting'), {
        what: 'tail notices the restart',
        details: t.output,
      });
      ({ cp } = await start(admin));
      // Reconnected means authenticated again: without the token it would have been refused.
      await waitFor(() => cp!.events.subscriberCount > 0, {
        what: 'tail reconnected',
        timeoutMs: 15_000,
        details: t.output,
      });
      catalog.write(doc(8003));
      await waitFor(() => t.stdout().includes('portValue: 8002 → 8003'), {
        what: 'change after restart printed',
        details: t.output,
      });
      expect(t.child.exitCode).toBeNull();
      expect(
        await cp.metrics.registry.getSingleMetricAsString('lucid_mesh_admin_auth_failures_total'),
      ).not.toMatch(/reason=/);
    } finally {
      t.child.kill('SIGKILL');
    }
  });

  it('ends with one line and exit 1 when its token is revoked', async () => {
    const admin = cp!.adminPort;
    const ca = await openCa({ dataDir, env: {} });
    const token = await ca.tokens.issueOperator({ name: 'revoked-tail' });
    const t = tail(admin, token);
    try {
      await waitFor(() => cp!.events.subscriberCount > 0, {
        what: 'tail connected',
        timeoutMs: 15_000,
        details: t.output,
      });
      // As `lucid-mesh token revoke` does, from another CA instance on the data directory.
      await ca.tokens.revoke(decodeJwt(token).jti!);
      expect(await t.exited).toBe(1);
      const lines = t.stderr().trimEnd().split('\n');
      expect(lines.at(-1)).toBe(
        `lucid-mesh tail: the control plane at http://127.0.0.1:${admin} refused the operator token (HTTP 401 revoked): operator token ${decodeJwt(token).jti} ("revoked-tail") was revoked`,
      );
    } finally {
      t.child.kill('SIGKILL');
      ca.stop();
    }
  });
});
