// `register --ttl` cut off from etcd for longer than its TTL says why it registers again in
// words: 'lease lost (no answer from etcd for longer than the 2s TTL)'. It printed etcd3's
// garbled 'EtcdLeaseInvalidError: Lease We lost connection to etcd and our lease has expired.
// is expired or revoked'. A lease revoked in etcd (etcdctl lease revoke) says so as well.
// Real etcd, a TCP proxy to cut the connection, the real CLI.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnCli } from '../support/cli-process.js';
import { startEtcd, startTcpProxy, type EtcdHandle, type TcpProxy } from '../support/etcd.js';
import { waitFor } from '../support/wait.js';

const KEY = '/lucid-mesh/services/web/web-1';
const args = (endpoint: string) => [
  ...['register', '--service', 'web', '--id', 'web-1', '--address', '10.0.0.5'],
  ...['--port', '8080', '--ttl', '2', '--etcd', endpoint],
];

describe('register --ttl when its lease is lost', () => {
  let etcd: EtcdHandle;
  let proxy: TcpProxy;

  beforeAll(async () => {
    etcd = await startEtcd('lease-lost');
    proxy = await startTcpProxy(etcd.clientPort);
  }, 60_000);

  afterAll(async () => {
    await proxy?.close();
    await etcd?.remove();
  });

  const registered = async () => (await etcd.client.get(KEY).string()) !== null;

  it('cut off past the TTL: says etcd did not answer, registers again when it does', async () => {
    const p = spawnCli(args(proxy.endpoint));
    try {
      await waitFor(registered, { what: 'web-1 registered', details: p.output });
      await proxy.cut();
      await waitFor(() => p.stderr().includes('lease lost'), {
        what: 'the lost lease reported',
        timeoutMs: 20_000,
        details: p.output,
      });
      expect(p.stderr()).toContain(
        'lucid-mesh register: lease lost (no answer from etcd for longer than the 2s TTL); registering again\n',
      );
      expect(p.stderr()).not.toContain('Lease We lost');
      await proxy.restore();
      await waitFor(() => p.stderr().includes(`registered again at ${KEY}`), {
        what: 'registered again',
        timeoutMs: 20_000,
        details: p.output,
      });
    } finally {
      await p.stop();
    }
  });

  it('its lease revoked in etcd: says so and registers again', async () => {
    const p = spawnCli(args(etcd.endpoint));
    try {
      await waitFor(registered, { what: 'web-1 registered', details: p.output });
      const lease = (await etcd.client.get(KEY).exec()).kvs[0]!.lease;
      await etcd.etcdctl(['lease', 'revoke', BigInt(String(lease)).toString(16)]);
      await waitFor(() => p.stderr().includes(`registered again at ${KEY}`), {
        what: 'registered again',
        timeoutMs: 20_000,
        details: p.output,
      });
      expect(p.stderr()).toContain(
        'lucid-mesh register: lease lost (etcd says it expired or was revoked); registering again\n',
      );
    } finally {
      await p.stop();
    }
  });
});
