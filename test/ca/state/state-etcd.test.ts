// `--state etcd`: the shared CA state in a real etcd (one member for the file).
import { afterAll, beforeAll, describe } from 'vitest';
import { startEtcd, type EtcdHandle } from '../../support/etcd.js';
import { sharedStoreSuite } from './shared-store-suite.js';

let etcd: EtcdHandle;

beforeAll(async () => {
  etcd = await startEtcd('state');
});

afterAll(async () => {
  await etcd?.remove();
});

describe('shared CA state in etcd', () => {
  sharedStoreSuite(() => ({
    kind: 'etcd',
    connectionFlags: () => ['--etcd', etcd.endpoint],
    connectionValues: () => ({ etcd: etcd.endpoint }),
    // Straight from etcd: the values as anyone with read access to the prefix sees them.
    raw: async (prefix) =>
      new Map(Object.entries(await etcd.client.getAll().prefix(prefix).strings())),
    writeRaw: async (key, value) => {
      await etcd.client.put(key).value(value);
    },
    endLiveness: async (key) => {
      const { kvs } = await etcd.client.get(key).exec();
      const lease = kvs[0]?.lease;
      if (!lease || lease === '0') throw new Error(`${key} is not on a lease`);
      await etcd.client.leaseClient.leaseRevoke({ ID: lease });
    },
    stopStore: () => etcd.stop(),
    restartStore: () => etcd.restart(),
  }));
});
