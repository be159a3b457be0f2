// Control-plane traces turned on by the traffic configuration: with no serve flag or env, a
// proxy-defaults Tracing entry (or Config's lucid_tracing_collector) starts them, a changed
// collector restarts them there and removing the entry stops them (spans still queued are
// flushed). The SDK is imported only when an entry first asks for tracing.
import type { SnapshotStore } from '../snapshot/store.js';
import type { XdsObserver } from '../xds/observer.js';
import type { Logger } from './logger.js';
import { startControlPlaneTracing, type ControlPlaneTracing } from './tracing.js';

type Collector = { readonly host: string; readonly port: number };

export interface EntryTracing {
  /** Forwards to the running tracer; while off, a loop over an empty list per xDS event. */
  readonly observer: XdsObserver;
  /** The collector traces go to now (after the last switch settled), if any. */
  collector(): Collector | undefined;
  /** Resolves once every start/stop asked for so far is done (tests). */
  settled(): Promise<void>;
  stop(): Promise<void>;
}

const ENTRY = 'proxy-defaults/global';

export function followEntryTracing(opts: {
  readonly store: SnapshotStore;
  readonly logger: Logger;
  /** What startControlPlaneTracing takes besides the collector (tests shorten timings). */
  readonly serviceName?: string;
}): EntryTracing {
  const live: XdsObserver[] = [];
  let running: { readonly collector: Collector; readonly tracing: ControlPlaneTracing } | undefined;
  let wanted: Collector | undefined;
  let chain: Promise<void> = Promise.resolve();
  let stopped = false;
  const key = (c: Collector | undefined) => (c ? `${c.host}:${c.port}` : '');

  const apply = async (): Promise<void> => {
    const target = stopped ? undefined : wanted;
    if (key(target) === key(running?.collector)) return;
    if (running) {
      live.splice(0);
      const old = running;
      running = undefined;
      // Flushing to a collector that is gone fails; the exporter is shut down all the same.
      await old.tracing.stop().catch((err: unknown) => {
        opts.logger.warn(
          { err, collector: key(old.collector) },
          'control-plane tracing: last spans lost',
        );
      });
      opts.logger.info({ collector: key(old.collector) }, 'control-plane tracing off (entry)');
    }
    if (!target) return;
    try {
      const tracing = await startControlPlaneTracing({
        collector: target,
        store: opts.store,
        logger: opts.logger,
        ...(opts.serviceName !== undefined ? { serviceName: opts.serviceName } : {}),
      });
      running = { collector: target, tracing };
      live.push(tracing.observer);
    } catch (err) {
      opts.logger.error({ err, collector: key(target) }, 'control-plane tracing failed to start');
    }
  };
  const reconsider = (): void => {
    // A failed switch must not stop later ones: the chain never rejects.
    chain = chain.then(apply).catch((err: unknown) => {
      opts.logger.error({ err }, 'control-plane tracing: switching failed');
    });
  };

  const unsubscribe = opts.store.onSnapshot((snapshot) => {
    const tracing = snapshot.mesh.observability?.tracing;
    const next = tracing?.from === ENTRY ? tracing.collector : undefined;
    if (key(next) === key(wanted)) return;
    wanted = next;
    reconsider();
  });

  const each =
    <A extends unknown[]>(call: (o: XdsObserver, ...args: A) => void) =>
    (...args: A): void => {
      for (const o of live) call(o, ...args);
    };
  const observer: XdsObserver = {
    streamOpened: each((o, s) => o.streamOpened(s)),
    proxyIdentified: each((o, s) => o.proxyIdentified?.(s)),
    streamClosed: each((o, s, r) => o.streamClosed(s, r)),
    responseSent: each((o, s, r) => o.responseSent(s, r)),
    acked: each((o, s, k, v, t) => o.acked(s, k, v, t)),
    nacked: each((o, s, k, v, m) => o.nacked(s, k, v, m)),
    staleNonce: each((o, s, k, n) => o.staleNonce(s, k, n)),
    badRequest: each((o, s, p) => o.badRequest(s, p)),
    authFailed: each((o, s, r, m) => o.authFailed(s, r, m)),
    throttled: each((o, s, d) => o.throttled(s, d)),
    streamRefused: each((o, r, p) => o.streamRefused(r, p)),
  };

  return {
    observer,
    collector: () => running?.collector,
    settled: () => chain,
    async stop() {
      stopped = true;
      unsubscribe();
      reconsider();
      await chain;
    },
  };
}
