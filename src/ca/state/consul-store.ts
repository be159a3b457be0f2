// CaStore in Consul KV under a prefix (`serve --state consul`): see kv-store.ts for the layout
// and consul-kv.ts for how compare-and-set, watches and the leader lock map onto Consul.
import type { ConsulConnection } from '../../sources/consul/client.js';
import { ConsulKv, type ConsulKvOptions } from './consul-kv.js';
import { KvCaStore, type KvCaStoreOptions } from './kv-store.js';

export class ConsulKvCaStore extends KvCaStore {
  constructor(
    connection: ConsulConnection,
    opts: KvCaStoreOptions & { readonly consul?: ConsulKvOptions },
  ) {
    super(new ConsulKv(connection, opts.prefix, opts.consul), opts);
  }
}
