// etcd with authentication enabled: register (serve's source errors use the same wording) with no
// user, or with a user whose roles do not allow the write, fail on one line that says what to
// change. They said only 'etcdserver: user name is empty' / 'permission denied'.
// Real etcd with auth on, the real CLI.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli-process.js';
import { startEtcd, type EtcdHandle } from '../support/etcd.js';

describe('register against etcd with authentication', () => {
  let etcd: EtcdHandle;
  const register = (...extra: string[]) =>
    runCli([
      ...['register', '--service', 'web', '--id', 'web-1', '--address', '10.0.0.5'],
      ...['--port', '8080', '--etcd', etcd.endpoint, ...extra],
    ]);

  beforeAll(async () => {
    etcd = await startEtcd('auth-errors');
    await etcd.etcdctl(['user', 'add', 'root:rootpw']);
    await etcd.etcdctl(['user', 'add', 'reader:readpw']);
    await etcd.etcdctl(['role', 'add', 'reader']);
    await etcd.etcdctl([
      ...['role', 'grant-permission', 'reader', '--prefix=true', 'read'],
      '/lucid-mesh/services/',
    ]);
    await etcd.etcdctl(['user', 'grant-role', 'reader', 'reader']);
    await etcd.etcdctl(['auth', 'enable']);
  }, 60_000);

  afterAll(async () => {
    await etcd?.remove();
  });

  it('without --etcd-user: says etcd needs one', async () => {
    const r = await register();
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `lucid-mesh register: cannot register web-1 (service web): etcd ${etcd.endpoint}: ` +
        '3 INVALID_ARGUMENT: etcdserver: user name is empty ' +
        '(etcd has authentication enabled: --etcd-user, --etcd-password)\n',
    );
  });

  it('a read-only user: says its roles do not allow it', async () => {
    const r = await register('--etcd-user', 'reader', '--etcd-password', 'readpw');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /: 7 PERMISSION_DENIED: etcdserver: permission denied \(the --etcd-user's roles do not allow it; docs\/etcd\.md: what each command needs\)\n$/,
    );
    expect(r.stderr.split('\n')).toHaveLength(2);
  });

  it('root with its password (ETCD_USER / ETCD_PASSWORD) registers', async () => {
    const r = await runCli(
      [
        ...['register', '--service', 'web', '--id', 'web-1', '--address', '10.0.0.5'],
        ...['--port', '8080', '--etcd', etcd.endpoint],
      ],
      { ETCD_USER: 'root', ETCD_PASSWORD: 'rootpw' },
    );
    expect(r.code, r.stderr).toBe(0);
  });
});
