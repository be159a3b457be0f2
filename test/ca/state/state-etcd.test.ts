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
    stopStore: () => etcd.stop(),
    restartStore: () => etcd.restart(),
  }));
});
