// An instance written to etcd with a bad value (a typo in its JSON, an unknown field, an id
// already taken by another service) is left out while the rest of the catalog is served. The
// operator who asks why it is missing finds it in `lucid-mesh status` and /v1/config/errors,
// named by its key, until it is fixed: both said "none" and only serve's log had it.
// Real etcd, real serve, real CLI.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, spawnCli, type CliProcess } from '../support/cli-process.js';
import { startEtcd, type EtcdHandle } from '../support/etcd.js';
import { httpGet } from '../support/http-app.js';
import { freePorts } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

const PREFIX = '/lucid-mesh/services';

describe('lucid-mesh status and bad etcd keys', () => {
  let etcd: EtcdHandle;
  let serve: CliProcess;
  let server: string;
  let dir: string;

  const problems = async (): Promise<{ kind: string; name: string; message: string }[]> => {
    const r = await httpGet(`${server}/v1/config/errors`);
    return (JSON.parse(r.body) as { problems: { kind: string; name: string; message: string }[] })
      .problems;
  };

  beforeAll(async () => {
    etcd = await startEtcd('status-bad-keys');
    dir = mkdtempSync(join(tmpdir(), 'lucid-status-etcd-'));
    await etcd.client.put(`${PREFIX}/web/web-1`).value('{"address":"127.0.0.1","port":9100}');
    await etcd.client.put(`${PREFIX}/web/web-2`).value('{"address":"127.0.0.1","port":"91O1"}');
    await etcd.client.put(`${PREFIX}/api/web-1`).value('{"address":"127.0.0.1","port":9200}');
    const [admin, xds] = (await freePorts(2)) as [number, number];
    server = `http://127.0.0.1:${admin}`;
    serve = spawnCli([
      'serve',
      ...['--source', 'etcd', '--etcd', etcd.endpoint, '--host', '127.0.0.1'],
      ...['--mtls', 'off', '--auth', 'none', '--admin-auth', 'none', '--data-dir', dir],
      ...['--admin-port', String(admin), '--xds-port', String(xds)],
    ]);
    await waitFor(
      async () => (await httpGet(`${server}/ready`).catch(() => undefined))?.status === 200,
      { what: 'serve ready', timeoutMs: 30_000, details: () => serve.output() },
    );
  }, 60_000);

  afterAll(async () => {
    await serve?.stop();
    await etcd?.remove();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('lists each key left out, with the problem, until it is fixed or deleted', async () => {
    const during = await runCli(['status', '--server', server]);
    expect(during.code, during.stderr).toBe(0);
    expect(during.stdout).toContain('Config problems (2):\n');
    expect(during.stdout).toContain(
      `  etcd-key ${PREFIX}/api/web-1: instance id "web-1" is already registered at ${PREFIX}/web/web-1`,
    );
    expect(during.stdout).toContain(
      `  etcd-key ${PREFIX}/web/web-2: port: expected integer 1-65535, got "91O1"\n`,
    );

    await etcd.client.put(`${PREFIX}/web/web-2`).value('{"address":"127.0.0.1","port":9101}');
    await etcd.client.delete().key(`${PREFIX}/api/web-1`);
    await waitFor(async () => (await problems()).length === 0, {
      what: 'the problems gone once fixed',
      details: () => serve.output(),
    });
    const after = await runCli(['status', '--server', server]);
    expect(after.stdout).toContain('Config problems: none');
  });
});
