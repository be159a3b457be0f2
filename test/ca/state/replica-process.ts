// One replica of the shared CA state in a process of its own, for tests that kill it with -9
// (its Consul session or etcd lease is then left to expire, as after a crash). It opens the
// store as `serve` does, issues a leaf per service, publishes its records, prints one JSON
// line ({"replica","root"}) and waits to be killed. Its re-issue after a rotation waits 10 min:
// while it lives, its leaves keep the old root.
//   node --import tsx test/ca/state/replica-process.ts '<flags as JSON>' web,api
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCa } from '../../../src/ca/open.js';
import { stateStoreFromFlags } from '../../../src/cli/state-flags.js';

const [flagsJson = '{}', services = ''] = process.argv.slice(2);
const store = stateStoreFromFlags(JSON.parse(flagsJson) as Record<string, unknown>);
if (!store) throw new Error('expected --state consul or etcd flags');
const opened = await openCa({
  store,
  dataDir: mkdtempSync(join(tmpdir(), 'lucid-replica-process-')),
  env: {},
  rotationDelayMs: 600_000,
  rotationSpreadMs: 0,
  random: () => 0.999, // the re-issue at the end of its window, not anywhere in it
});
for (const service of services.split(',').filter(Boolean)) await opened.leaves.current(service);
await opened.leaves.whenIdle();
// Started once its record is in the store (a first write that failed is retried meanwhile).
const mine = (reads: Awaited<ReturnType<typeof store.readLeafRoots>>) =>
  reads.some((h) => 'record' in h && h.record.replica === store.replicaId);
while (!mine(await store.readLeafRoots())) await new Promise((r) => setTimeout(r, 100));
process.stdout.write(
  JSON.stringify({ replica: store.replicaId, root: opened.ca.activeRoot().serial }) + '\n',
);
setInterval(() => undefined, 1 << 30);
