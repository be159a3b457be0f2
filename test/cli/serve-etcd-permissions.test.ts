// serve --source etcd as a user with only the read access docs/etcd.md gave it: `<prefix>services/`.
// serve also reads its traffic configuration from `<prefix>config/`, so it never became ready,
// and /ready said only 'waiting for a valid traffic configuration from etcd' (status: 'Config
// problems: none'), the permission error being in the log alone. Now /ready, status and
// /v1/config/errors say etcd refused `<prefix>config/`, and the documented role (read on both
// prefixes) serves. Real etcd with authentication, real serve and status.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, spawnCli, type CliProcess } from '../support/cli-process.js';
import { startEtcd, type EtcdHandle } from '../support/etcd.js';
import { httpGet } from '../support/http-app.js';
import { freePorts } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

describe('serve --source etcd with a read-only etcd user', () => {
  let etcd: EtcdHandle;
  const dir = mkdtempSync(join(tmpdir(), 'lucid-etcd-perm-'));
  const running: CliProcess[] = [];

  beforeAll(async () => {
    etcd = await startEtcd('permissions');
    await etcd.client
      .put('/lucid-mesh/services/web/web-1')
      .value('{"address":"10.0.0.5","port":80}');
    await etcd.etcdctl(['user', 'add', 'root:rootpw']);
    for (const [user, prefixes] of [
      ['services-only', ['/lucid-mesh/services/']],
      // What docs/etcd.md says serve needs.
      ['serve', ['/lucid-mesh/services/', '/lucid-mesh/config/']],
    ] as const) {
      await etcd.etcdctl(['user', 'add', `${user}:pw`]);
      await etcd.etcdctl(['role', 'add', user]);
      for (const prefix of prefixes) {
        await etcd.etcdctl(['role', 'grant-permission', user, '--prefix=true', 'read', prefix]);
      }
      await etcd.etcdctl(['user', 'grant-role', user, user]);
    }
    await etcd.etcdctl(['auth', 'enable']);
  }, 60_000);

  afterAll(async () => {
    for (const p of running) await p.stop();
    await etcd?.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  async function serve(user: string): Promise<string> {
    const [admin, xds] = (await freePorts(2)) as [number, number];
    const p = spawnCli(
      [
        ...['serve', '--source', 'etcd', '--etcd', etcd.endpoint, '--host', '127.0.0.1'],
        ...['--etcd-user', user, '--mtls', 'off', '--auth', 'none', '--admin-auth', 'none'],
        ...[
          '--data-dir',
          join(dir, user),
          '--admin-port',
          String(admin),
          '--xds-port',
          String(xds),
        ],
      ],
      { ETCD_PASSWORD: 'pw' },
    );
    running.push(p);
    return `http://127.0.0.1:${admin}`;
  }

  it('read on services/ only: /ready and status say etcd refused <prefix>config/', async () => {
    const server = await serve('services-only');
    let reason = '';
    await waitFor(
      async () => {
        const r = await httpGet(`${server}/ready`).catch(() => undefined);
        reason = r?.status === 503 ? (JSON.parse(r.body) as { reason: string }).reason : '';
        return reason.includes('last error');
      },
      { what: '/ready naming the error', timeoutMs: 30_000, details: () => reason },
    );
    expect(reason).toBe(
      `waiting for a valid traffic configuration from etcd; last error: etcd ${etcd.endpoint} ` +
        '/lucid-mesh/config/: 7 PERMISSION_DENIED: etcdserver: permission denied ' +
        "(the --etcd-user's roles do not allow it; docs/etcd.md: what each command needs); retrying",
    );
    const status = await runCli(['status', '--server', server]);
    expect(status.stdout).toContain(
      `  source etcd: etcd ${etcd.endpoint} /lucid-mesh/config/: 7 PERMISSION_DENIED`,
    );
  });

  it('read on services/ and config/ (as documented): ready', async () => {
    const server = await serve('serve');
    await waitFor(
      async () => (await httpGet(`${server}/ready`).catch(() => undefined))?.status === 200,
      {
        what: 'ready',
        timeoutMs: 30_000,
      },
    );
  });
});
