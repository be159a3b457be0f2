// A replica learns of a roots change from its heartbeat's read even while its watch is down:
// after a store outage the etcd client re-opens a watch on a backoff of up to ~10 s, and a
// rotation made meanwhile reached the replica only then (the etcd CA-state suite timed out
// waiting for it once in CI). The store here is in memory and its watches never fire, which is
// exactly the state under test; the real stores' suites run the outage itself.
import { afterEach, describe, expect, it } from 'vitest';
import type { KvBackend, KvEntry, Leadership } from '../../../src/ca/state/kv-backend.js';
import { KvCaStore } from '../../../src/ca/state/kv-store.js';
import { StateCipher } from '../../../src/ca/state/cipher.js';
import { waitFor } from '../../support/wait.js';

class DeafWatchBackend implements KvBackend {
  readonly location = 'memory';
  readonly values = new Map<string, KvEntry>();
  private revision = 0;
  get(key: string) {
    return Promise.resolve(this.values.get(key));
  }
  putIf(key: string, value: string, version: string | undefined) {
    if (this.values.get(key)?.version !== version) return Promise.resolve(false);
    this.values.set(key, { value, version: String(++this.revision) });
    return Promise.resolve(true);
  }
  put(key: string, value: string) {
    this.values.set(key, { value, version: String(++this.revision) });
    return Promise.resolve();
  }
  delete(key: string) {
    this.values.delete(key);
    return Promise.resolve();
  }
  putLive(key: string, value: string) {
    return this.put(key, value);
  }
  list(prefix: string) {
    const out = [...this.values].filter(([k]) => k.startsWith(prefix));
    return Promise.resolve(out.map(([key, { value }]) => ({ key, value })));
  }
  /** A watch that is not (yet) re-established: it reports nothing. */
  watch() {
    return () => undefined;
  }
  campaign(): Leadership {
    throw new Error('not used');
  }
  close() {
    return Promise.resolve();
  }
}

const stores: KvCaStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

describe('roots heartbeat', () => {
  it('tells the roots watchers about a version the watch missed, once per change', async () => {
    const backend = new DeafWatchBackend();
    const store = new KvCaStore(backend, { prefix: 't/', cipher: new StateCipher() });
    stores.push(store);
    await store.loadRoots(); // what the replica loaded at start: no roots key yet
    let told = 0;
    store.watchRoots(() => told++);
    store.monitor(20);

    await new Promise((r) => setTimeout(r, 100));
    expect(told).toBe(0); // nothing changed: the heartbeat stays quiet

    await backend.put('t/ca/roots', '{"roots":[]}'); // another replica rotated
    await waitFor(() => told === 1, { what: 'the watcher told of the new roots version' });
    await new Promise((r) => setTimeout(r, 100));
    expect(told).toBe(1);

    await backend.put('t/ca/roots', '{"roots":[]}');
    await waitFor(() => told === 2, { what: 'told of the second change' });
  });

  it('stops telling a watcher that stopped watching', async () => {
    const backend = new DeafWatchBackend();
    const store = new KvCaStore(backend, { prefix: 't/', cipher: new StateCipher() });
    stores.push(store);
    await store.loadRoots();
    let told = 0;
    const stop = store.watchRoots(() => told++);
    store.monitor(20);
    stop();
    await backend.put('t/ca/roots', '{"roots":[]}');
    await new Promise((r) => setTimeout(r, 150));
    expect(told).toBe(0);
  });
});
