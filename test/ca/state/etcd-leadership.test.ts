// The etcd leader election of `--state etcd` on a real etcd: one leader, also after leases are
// lost (etcd frozen or restarted past the TTL: every replica loses its lease and campaigns
// again). Found by hand: after a 20 s SIGSTOP of etcd both replicas said "this replica leads"
// (status, lucid_mesh_state_leader) for good, because etcd3's Campaign that had lost its
// lease still emitted `elected` once the key it was waiting behind went away.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Leadership } from '../../../src/ca/state/kv-backend.js';
import { EtcdKv } from '../../../src/ca/state/etcd-kv.js';
import { startEtcd, type EtcdHandle } from '../../support/etcd.js';
import { waitFor } from '../../support/wait.js';

const PREFIX = 'leadership-test/';
// etcd3's Election keeps its candidates under <namespace>election/<name>/<lease id>.
const ELECTION = `${PREFIX}leader`;
const CANDIDATES = `${PREFIX}election/leader/`;

let etcd: EtcdHandle;
const kvs: EtcdKv[] = [];
const leaderships: Leadership[] = [];

beforeAll(async () => {
  etcd = await startEtcd('leadership');
});

afterAll(async () => {
  for (const l of leaderships) await l.stop().catch(() => undefined);
  for (const kv of kvs) await kv.close().catch(() => undefined);
  await etcd?.remove();
});

function replica(id: string): Leadership {
  // TTL 3 s: keepalives every second, so a revoked lease is noticed within about a second.
  const kv = new EtcdKv({ endpoints: [etcd.endpoint] }, PREFIX, { leaseTtlSeconds: 3 });
  kvs.push(kv);
  const leadership = kv.campaign(ELECTION, id);
  leaderships.push(leadership);
  return leadership;
}

/** The campaign keys in the election, oldest first: value (the replica id) and lease. */
async function candidates(): Promise<Array<{ id: string; lease: string }>> {
  const res = await etcd.client.getAll().prefix(CANDIDATES).sort('Create', 'Ascend').exec();
  return res.kvs.map((kv) => ({ id: kv.value.toString('utf8'), lease: String(kv.lease) }));
}

async function revokeLeaseOf(id: string): Promise<string> {
  const entry = (await candidates()).find((c) => c.id === id);
  if (!entry) throw new Error(`${id} has no campaign key`);
  await etcd.client.leaseClient.leaseRevoke({ ID: entry.lease });
  return entry.lease;
}

describe('etcd leadership', () => {
  it('one leader after a waiting replica lost its lease and the leader then lost its own', async () => {
    const a = replica('a');
    await waitFor(() => a.isLeader(), { what: 'a leads' });
    const b = replica('b');
    await waitFor(async () => (await candidates()).length === 2, { what: "b's campaign key" });
    const c = replica('c');
    await waitFor(async () => (await candidates()).length === 3, { what: "c's campaign key" });
    expect([a, b, c].map((l) => l.isLeader())).toEqual([true, false, false]);

    // b loses its lease while it waits behind a (etcd expired it): it campaigns again, with
    // a new key behind c's.
    const oldLease = await revokeLeaseOf('b');
    await waitFor(
      async () => (await candidates()).some((k) => k.id === 'b' && k.lease !== oldLease),
      { what: 'b campaigning again', timeoutMs: 15_000 },
    );
    expect((await candidates()).map((k) => k.id)).toEqual(['a', 'c', 'b']);

    // Now a loses its lease: c's key is the oldest, so c leads, and only c.
    await revokeLeaseOf('a');
    await waitFor(() => c.isLeader(), { what: 'c leads', timeoutMs: 15_000 });
    // Let b's old campaign and a's new one play out.
    await sleep(2_500);
    expect((await candidates())[0]?.id).toBe('c');
    expect({ a: a.isLeader(), b: b.isLeader(), c: c.isLeader() }).toEqual({
      a: false,
      b: false,
      c: true,
    });
  });
});
