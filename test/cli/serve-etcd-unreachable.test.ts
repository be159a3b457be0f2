// serve --source etcd started while etcd is down waits (not ready) and retries; /ready says
// why: etcd cannot be reached, naming the endpoint. It said only 'waiting for a valid traffic
// configuration from etcd' (the traffic configuration under <prefix>config/ waits on the same
// etcd), which sends an operator looking for an invalid entry. Once etcd answers, serve is ready
// by itself. Real serve, real etcd.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnCli, type CliProcess } from '../support/cli-process.js';
import { startEtcd, type EtcdHandle } from '../support/etcd.js';
import { httpGet } from '../support/http-app.js';
import { freePorts } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

describe('serve --source etcd with etcd down at start', () => {
  let etcd: EtcdHandle | undefined;
  let serve: CliProcess | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'lucid-etcd-down-'));

  afterAll(async () => {
    await serve?.stop();
    await etcd?.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is not ready, says etcd is unreachable, and gets ready once etcd answers', async () => {
    // etcd is started later on the port serve was given.
    etcd = await startEtcd('down-at-start');
    const endpoint = etcd.endpoint;
    await etcd.stop();
    const [admin, xds] = (await freePorts(2)) as [number, number];
    const server = `http://127.0.0.1:${admin}`;
    serve = spawnCli([
      'serve',
      ...['--source', 'etcd', '--etcd', endpoint, '--host', '127.0.0.1'],
      ...['--mtls', 'off', '--auth', 'none', '--admin-auth', 'none', '--data-dir', dir],
      ...['--admin-port', String(admin), '--xds-port', String(xds)],
    ]);
    const ready = () => httpGet(`${server}/ready`).catch(() => undefined);
    let reason = '';
    await waitFor(
      async () => {
        const r = await ready();
        if (r?.status !== 503) return false;
        reason = (JSON.parse(r.body) as { reason: string }).reason;
        // The traffic configuration (same etcd) may fail first; wait for the catalog's error.
        return reason.includes('/lucid-mesh/services/');
      },
      { what: '/ready naming the error', timeoutMs: 30_000, details: () => serve!.output() },
    );
    expect(reason).toContain('waiting for the first complete catalog from the etcd source');
    expect(reason).toContain(`etcd ${endpoint} /lucid-mesh/services/: 14 UNAVAILABLE`);
    expect(reason).toContain('ECONNREFUSED');

    await etcd.restart();
    await waitFor(async () => (await ready())?.status === 200, {
      what: 'ready once etcd answers',
      timeoutMs: 30_000,
      details: () => serve!.output(),
    });
  });
});
