// register --protocol tcp --outbound-port P for a service while another tcp service already
// has P: serve keeps the older service and skips the new one whole (docs/etcd.md), so its
// sidecars got nothing while register said 'registered'. Now register refuses before writing
// anything (exit 1, naming the flag, the port and the service holding it); the older service
// itself may still be registered again. Real etcd, the real CLI.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli-process.js';
import { startEtcd, type EtcdHandle } from '../support/etcd.js';

describe('register --outbound-port taken by another tcp service', () => {
  let etcd: EtcdHandle;
  const register = (service: string, id: string, port: number) =>
    runCli([
      ...['register', '--service', service, '--id', id, '--address', '10.0.0.7'],
      ...['--port', String(port), '--protocol', 'tcp', '--outbound-port', '15432'],
      ...['--etcd', etcd.endpoint],
    ]);

  beforeAll(async () => {
    etcd = await startEtcd('outbound-port');
  }, 60_000);

  afterAll(async () => {
    await etcd?.remove();
  });

  it('refuses the second service, writes nothing for it, and keeps the first registrable', async () => {
    const first = await register('db', 'db-1', 5432);
    expect(first.code, first.stderr).toBe(0);

    const second = await register('cache', 'cache-1', 6379);
    expect(second.code).toBe(1);
    expect(second.stderr).toBe(
      'lucid-mesh register: --outbound-port: 15432 is already the outbound port of tcp service ' +
        '"db" (/lucid-mesh/services/db); serve would skip service "cache" (choose another port)\n',
    );
    const keys = await etcd.client.getAll().prefix('/lucid-mesh/services/cache').keys();
    expect(keys).toEqual([]);

    const again = await register('db', 'db-2', 5433);
    expect(again.code, again.stderr).toBe(0);
  });
});
