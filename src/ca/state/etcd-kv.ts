// The shared CA state in etcd (the `etcd3` package): compare-and-set as a transaction on the
// key's mod revision (create revision 0 for "still absent"), watches per key, and leadership
// through etcd3's Election (a lease with a TTL; the lowest create revision leads).
import type { Etcd3, Lease } from 'etcd3';
import {
  createEtcdClient,
  describeEtcdError,
  type EtcdConnectionOptions,
} from '../../sources/etcd/client.js';
import type { KvBackend, KvEntry, Leadership } from './kv-backend.js';
import { LiveKeys } from './live-keys.js';

export interface EtcdKvOptions {
  /** Leader lease TTL, and the TTL of this replica's live keys' lease, s. Default 10. */
  readonly leaseTtlSeconds?: number;
}

export class EtcdKv implements KvBackend {
  readonly location: string;
  private readonly client: Etcd3;
  private readonly cancels = new Set<() => void>();
  /** Keys on this replica's lease (putLive): etcd deletes them when the lease expires. */
  private readonly live = new LiveKeys((key, value) => this.putOnLease(key, value));
  private lease: Lease | undefined;

  constructor(
    connection: EtcdConnectionOptions,
    prefix: string,
    private readonly opts: EtcdKvOptions = {},
  ) {
    this.client = createEtcdClient(connection);
    this.location = `etcd ${connection.endpoints.join(',')} prefix ${prefix}`;
  }

  async get(key: string): Promise<KvEntry | undefined> {
    const res = await this.call(`get ${key}`, () => this.client.get(key).exec());
    const kv = res.kvs[0];
    return kv ? { value: kv.value.toString('utf8'), version: String(kv.mod_revision) } : undefined;
  }

  async putIf(key: string, value: string, version: string | undefined): Promise<boolean> {
    const res = await this.call(`put ${key}`, () =>
      (version === undefined
        ? this.client.if(key, 'Create', '==', 0)
        : this.client.if(key, 'Mod', '==', version)
      )
        .then(this.client.put(key).value(value))
        .commit(),
    );
    return res.succeeded;
  }

  async put(key: string, value: string): Promise<void> {
    await this.call(`put ${key}`, () => this.client.put(key).value(value).exec());
  }

  async delete(key: string): Promise<void> {
    await this.call(`delete ${key}`, () => this.client.delete().key(key).exec());
  }

  putLive(key: string, value: string): Promise<void> {
    return this.live.put(key, value);
  }

  private async putOnLease(key: string, value: string): Promise<boolean> {
    if (!this.lease) {
      const lease = this.client.lease(this.opts.leaseTtlSeconds ?? 10);
      // Lost (etcd out of reach past the TTL, or it said the lease is gone): its keys are
      // deleted; a new lease carries them again.
      lease.on('lost', () => {
        if (this.lease !== lease) return;
        this.lease = undefined;
        this.live.invalidate();
      });
      this.lease = lease;
    }
    const lease = this.lease;
    // A failed first grant fires 'lost' too (above): the retry then gets a new lease.
    await this.call(`put ${key}`, () => lease.put(key).value(value).exec());
    return true;
  }

  async list(prefix: string): Promise<Array<{ key: string; value: string }>> {
    const all = await this.call(`list ${prefix}`, () =>
      this.client.getAll().prefix(prefix).strings(),
    );
    return Object.entries(all).map(([key, value]) => ({ key, value }));
  }

  watch(key: string, listener: () => void): () => void {
    let cancelled = false;
    let cancelWatcher: (() => void) | undefined;
    const start = (delayMs: number) => {
      const timer = setTimeout(() => {
        if (cancelled) return;
        this.client
          .watch()
          .key(key)
          .create()
          .then(
            (watcher) => {
              if (cancelled) return void watcher.cancel();
              cancelWatcher = () => void watcher.cancel().catch(() => undefined);
              watcher.on('put', () => listener());
              watcher.on('delete', () => listener());
              // Back after a disconnection: what changed meanwhile is unknown, so reload.
              watcher.on('connected', () => listener());
              watcher.on('error', () => undefined);
            },
            () => start(1_000),
          );
      }, delayMs);
      timer.unref();
    };
    start(0);
    const cancel = () => {
      cancelled = true;
      cancelWatcher?.();
      this.cancels.delete(cancel);
    };
    this.cancels.add(cancel);
    return cancel;
  }

  campaign(key: string, id: string): Leadership {
    const cut = key.lastIndexOf('/') + 1;
    const election = this.client
      .namespace(key.slice(0, cut))
      .election(key.slice(cut), this.opts.leaseTtlSeconds ?? 10);
    return new EtcdLeadership(election, id);
  }

  async close(): Promise<void> {
    this.live.stop();
    // Revoking the lease deletes its keys at once.
    const lease = this.lease;
    this.lease = undefined;
    await lease?.revoke().catch(() => undefined);
    for (const cancel of [...this.cancels]) cancel();
    this.client.close();
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw new Error(`${this.location}: ${what}: ${describeEtcdError(err)}`);
    }
  }
}

type Election = ReturnType<Etcd3['election']>;
type Campaign = ReturnType<Election['campaign']>;

/** Campaigns until elected; after an error (lease lost: etcd unreachable) campaigns again. */
class EtcdLeadership implements Leadership {
  readonly settled: Promise<void>;
  private leader = false;
  private stopped = false;
  private campaign: Campaign | undefined;
  private retry: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<(leader: boolean) => void>();

  constructor(
    private readonly election: Election,
    private readonly id: string,
  ) {
    this.settled = new Promise((resolve) => {
      this.start(resolve);
      // A follower is never told it lost: settle soon; a replica waiting for the first root
      // keeps checking whether it leads by then (open.ts).
      setTimeout(resolve, 200).unref();
    });
  }

  isLeader(): boolean {
    return this.leader;
  }

  onChange(listener: (leader: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    this.set(false);
    await this.campaign?.resign().catch(() => undefined);
  }

  private start(settle: () => void): void {
    if (this.stopped) return;
    const campaign = this.election.campaign(this.id);
    this.campaign = campaign;
    // Only the current campaign speaks: etcd3's Campaign still emits `elected` after it lost
    // its lease and resigned, once the key it waited behind is deleted, while the new
    // campaign waits behind another replica's key (two leaders, seen after etcd was frozen).
    campaign.on('elected', () => {
      if (this.campaign !== campaign || this.stopped) return;
      this.set(true);
      settle();
    });
    campaign.on('error', () => {
      if (this.campaign !== campaign) return;
      this.campaign = undefined;
      this.set(false);
      settle();
      void campaign.resign().catch(() => undefined);
      if (!this.stopped) {
        this.retry = setTimeout(() => this.start(() => undefined), 1_000);
        this.retry.unref();
      }
    });
  }

  private set(leader: boolean): void {
    if (leader === this.leader) return;
    this.leader = leader;
    for (const listener of [...this.listeners]) listener(leader);
  }
}
