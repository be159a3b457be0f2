// The kill -9 test of ha-replicas.test.ts with the CA state in a real etcd (--state etcd)
// instead of Consul KV; Consul stays the catalog. Same test bed (test/support/ha-cluster.ts):
// three replicas on empty local disks, three real Envoys with all three addresses, mTLS,
// a 100 rps loop web → api. Killing the replica every sidecar is on: 0 failed requests,
// every Envoy connected to a survivor within 5 s, no config churn, a later catalog change
// reaches every Envoy. First, that the state really is in etcd and not in Consul.
import { describe, expect, it } from 'vitest';
import { haCluster, itKillsTheReplicaInUse } from '../support/ha-cluster.js';

describe('three replicas with the CA state in etcd, sidecars failing over under a 100 rps loop', () => {
  const c = haCluster({ state: 'etcd' });

  it('the CA state is in etcd, none in Consul KV', async () => {
    const keys = await c.etcd!.client.getAll().prefix('lucid-mesh/').keys();
    expect(keys).toContain('lucid-mesh/ca/roots');
    const kv = await c.consul.api('GET', '/v1/kv/lucid-mesh/?keys');
    expect(kv.status).toBe(404);
  });

  itKillsTheReplicaInUse(c);
});
