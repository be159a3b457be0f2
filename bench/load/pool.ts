// Harness side of the load client: W worker processes, each running a share of the K
// simulated sidecars. Aggregates their reports.
import { forkCompiled, track, type IpcChild } from '../ipc.js';
import type {
  DigestSummary,
  ProxySpec,
  WatchSpec,
  WorkerEvent,
  WorkerStats,
  XdsMode,
} from './protocol.js';

export interface WatchResult {
  readonly watchId: number;
  /** Proxies that saw the change. */
  readonly count: number;
  readonly first: number;
  readonly last: number;
  /** Arrival times of every proxy (when requested). */
  readonly times?: number[];
}

type Detected = Extract<WorkerEvent, { ev: 'detected' }>;

/** Per proxy, when its connection was up and its first response came (0 = never). */
export interface StormStageTimes {
  readonly connected: number[];
  readonly firstResponse: number[];
}

export class LoadPool {
  private readonly partial = new Map<number, Detected[]>();
  private readonly waiters = new Map<number, () => void>();
  private configured: Array<Omit<Extract<WorkerEvent, { ev: 'configured' }>, 'ev'> | undefined> =
    [];
  private configuredWaiter: (() => void) | undefined;

  private constructor(
    readonly workers: IpcChild[],
    readonly shares: ProxySpec[][],
  ) {
    workers.forEach((w, i) => {
      w.on((e) => {
        const ev = e as unknown as WorkerEvent;
        if (ev.ev === 'detected') this.onDetected(ev);
        else if (ev.ev === 'configured') {
          this.configured[i] = ev;
          this.configuredWaiter?.();
        }
      });
    });
  }

  /** Starts `workers` processes and gives each its share of `proxies` (not yet connected). */
  static async start(proxies: readonly ProxySpec[], workers: number): Promise<LoadPool> {
    const n = Math.max(1, Math.min(workers, proxies.length));
    const shares: ProxySpec[][] = Array.from({ length: n }, () => []);
    proxies.forEach((p, i) => shares[i % n]!.push(p));
    // LUCID_BENCH_CLIENT_PROF=DIR: V8 CPU profiles of the workers themselves (client tuning).
    const prof = process.env.LUCID_BENCH_CLIENT_PROF;
    // A larger young generation: the client allocates a lot of short-lived objects per
    // response, and fewer scavenges leave more of the machine to the control plane.
    const execArgv = [
      '--max-semi-space-size=64',
      ...(prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : []),
    ];
    const procs = shares.map((_, i) =>
      track(forkCompiled(`load worker ${i}`, './load/worker.ts', { execArgv })),
    );
    // A round trip proves each worker is up (module loading included).
    await Promise.all(procs.map((p) => p.request({ op: 'stats' }, 60_000)));
    return new LoadPool(procs, shares);
  }

  get size(): number {
    return this.shares.reduce((n, s) => n + s.length, 0);
  }

  /**
   * Opens every sidecar's stream at once. Resolves when all are fully configured, with each
   * proxy's configured time; rejects on timeout (with how many made it).
   */
  async connect(
    target: string,
    mode: XdsMode,
    outboundPort: number,
    timeoutMs: number,
    /** Every replica's address (`target` first): broken streams fail over, as Envoy's do. */
    failover?: readonly string[],
  ): Promise<{ times: number[]; complete: boolean; stages: StormStageTimes }> {
    this.configured = this.workers.map(() => undefined);
    const done = new Promise<void>((resolve) => {
      this.configuredWaiter = () => {
        if (this.configured.every((c) => c)) resolve();
      };
    });
    await Promise.all(
      this.workers.map((w, i) =>
        w.request({
          op: 'open',
          target,
          mode,
          proxies: this.shares[i],
          outboundPort,
          ...(failover ? { failover } : {}),
        }),
      ),
    );
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const outcome = await Promise.race([done.then(() => 'ok' as const), timedOut]);
    clearTimeout(timer);
    this.configuredWaiter = undefined;
    const times = this.configured.flatMap((c) => (c ? [...c.times] : []));
    const stages = {
      connected: this.configured.flatMap((c) => c?.connected ?? []),
      firstResponse: this.configured.flatMap((c) => c?.firstResponse ?? []),
    };
    return { times, complete: outcome === 'ok', stages };
  }

  /** Arms watches in every worker (before the change is made). */
  async watch(specs: WatchSpec[]): Promise<void> {
    for (const s of specs) this.partial.set(s.watchId, []);
    await Promise.all(this.workers.map((w) => w.request({ op: 'watch', watches: specs })));
  }

  /** Resolves when every proxy saw watch `watchId`, or after `timeoutMs` with what was seen. */
  async result(watchId: number, timeoutMs: number): Promise<WatchResult> {
    return (await this.results([watchId], timeoutMs))[0]!;
  }

  /**
   * Waits until every proxy saw each of the watches, or `timeoutMs` has passed; then gives up
   * on the rest (collecting what they saw so far).
   */
  async results(watchIds: readonly number[], timeoutMs: number): Promise<WatchResult[]> {
    const complete = (id: number) => (this.partial.get(id)?.length ?? 0) >= this.workers.length;
    const open = new Set(watchIds.filter((id) => !complete(id)));
    if (open.size > 0) {
      await new Promise<void>((resolve) => {
        const finish = () => {
          clearTimeout(timer);
          for (const id of watchIds) this.waiters.delete(id);
          resolve();
        };
        const timer = setTimeout(finish, timeoutMs);
        for (const id of open) {
          this.waiters.set(id, () => {
            if (!complete(id)) return;
            open.delete(id);
            if (open.size === 0) finish();
          });
        }
      });
    }
    const stragglers = watchIds.filter((id) => !complete(id));
    if (stragglers.length > 0) {
      const replies = await Promise.all(
        this.workers.map((w) => w.request<Detected[]>({ op: 'unwatch', watchIds: stragglers })),
      );
      for (const list of replies) for (const d of list) this.partial.get(d.watchId)?.push(d);
    }
    return watchIds.map((id) => this.collect(id));
  }

  private collect(watchId: number): WatchResult {
    const parts = this.partial.get(watchId) ?? [];
    this.partial.delete(watchId);
    let count = 0;
    let first = Infinity;
    let last = -Infinity;
    const times: number[] = [];
    let detail = false;
    for (const p of parts) {
      count += p.count;
      if (p.count > 0) {
        first = Math.min(first, p.min);
        last = Math.max(last, p.max);
      }
      if (p.times) {
        detail = true;
        times.push(...p.times);
      }
    }
    return { watchId, count, first, last, ...(detail ? { times } : {}) };
  }

  private onDetected(ev: Detected): void {
    const list = this.partial.get(ev.watchId);
    if (!list) return;
    list.push(ev);
    this.waiters.get(ev.watchId)?.();
  }

  async stats(): Promise<WorkerStats[]> {
    return Promise.all(this.workers.map((w) => w.request<WorkerStats>({ op: 'stats' })));
  }

  /** Per type: shared-content digest → number of proxies holding it. */
  async digests(byService = false): Promise<DigestSummary> {
    const parts = await Promise.all(
      this.workers.map((w) => w.request<DigestSummary>({ op: 'digest', byService }, 60_000)),
    );
    const out: Record<string, { digests: Record<string, number> }> = {};
    for (const part of parts) {
      for (const [kind, { digests }] of Object.entries(part)) {
        const entry = (out[kind] ??= { digests: {} });
        for (const [d, n] of Object.entries(digests))
          entry.digests[d] = (entry.digests[d] ?? 0) + n;
      }
    }
    return out;
  }

  async close(): Promise<void> {
    await Promise.all(
      this.workers.map(async (w) => {
        await w.request({ op: 'close' }, 10_000).catch(() => undefined);
        await w.kill(2000);
      }),
    );
  }
}
