// CaStore in etcd under a key prefix (`serve --state etcd`): see kv-store.ts for the layout and
// etcd-kv.ts for how compare-and-set, watches and the election map onto etcd.
import type { EtcdConnectionOptions } from '../../sources/etcd/client.js';
import { EtcdKv, type EtcdKvOptions } from './etcd-kv.js';
import { KvCaStore, type KvCaStoreOptions } from './kv-store.js';

export class EtcdCaStore extends KvCaStore {
  constructor(
    connection: EtcdConnectionOptions,
    opts: KvCaStoreOptions & { readonly etcd?: EtcdKvOptions },
  ) {
    super(new EtcdKv(connection, opts.prefix, opts.etcd), opts);
  }
}
