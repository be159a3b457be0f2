// What the store holds of two replicas' leaf-roots records: each replica writes its own (on
// its own Consul session / etcd lease) once it has issued a leaf.
import { expect } from 'vitest';
import type { OpenedCa } from '../../../src/ca/open.js';

/** Both replicas issue a leaf; the store then holds one leaf-roots record of each. */
export async function expectEachReplicasLeafRootsRecord(r1: OpenedCa, r2: OpenedCa) {
  await r1.leaves.current('web');
  await r2.leaves.current('api');
  await Promise.all([r1.leaves.whenIdle(), r2.leaves.whenIdle()]);
  const records = await r1.shared!.store.readLeafRoots();
  expect(records.map((h) => ('record' in h ? h.record.replica : h.error)).sort()).toEqual(
    [r1, r2].map((r) => r.shared!.store.replicaId).sort(),
  );
}
