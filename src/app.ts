// The composition root: source → snapshot store → xDS server, plus the admin server.
// Used by `lucid-mesh serve`, the demo and the end-to-end tests, so they all run the same thing.
import { AdminServer } from './admin/http-server.js';
import type { DiscoverySource } from './sources/source.js';
import { SnapshotStore } from './snapshot/store.js';
import type { Logger } from './telemetry/logger.js';
import { EventHub } from './telemetry/events.js';
import { Metrics } from './telemetry/metrics.js';
import { XdsCounters, combineObservers } from './xds/observer.js';
import { XdsServer } from './xds/server.js';

export interface ControlPlaneOptions {
  source: DiscoverySource;
  logger: Logger;
  host: string;
  xdsPort: number;
  adminPort: number;
  debounceMs?: number;
  maxDebounceMs?: number;
}

export interface RunningControlPlane {
  readonly store: SnapshotStore;
  readonly xds: XdsServer;
  readonly counters: XdsCounters;
  readonly metrics: Metrics;
  readonly events: EventHub;
  readonly xdsPort: number;
  readonly adminPort: number;
  stop(): Promise<void>;
}

export async function startControlPlane(opts: ControlPlaneOptions): Promise<RunningControlPlane> {
  const { logger, source } = opts;
  const store = new SnapshotStore({
    logger,
    debounceMs: opts.debounceMs,
    maxDebounceMs: opts.maxDebounceMs,
  });
  const counters = new XdsCounters();
  // The metrics read the server's streams at scrape time; the server reports to the metrics.
  const streams: { xds?: XdsServer } = {};
  const connected = () => streams.xds?.connected.values() ?? [];
  const metrics = new Metrics({ store, streams: connected });
  const events = new EventHub(store, () =>
    [...connected()].flatMap((s) => (s.proxy ? [s.proxy.nodeId] : [])),
  );
  const xds = new XdsServer({
    watcher: store,
    observer: combineObservers(counters, metrics, events),
    logger,
  });
  streams.xds = xds;

  let lastSourceError: string | undefined;
  const admin = new AdminServer({
    registry: metrics.registry,
    store,
    streams: connected,
    events,
    notReadyReason: () =>
      store.ready
        ? undefined
        : `waiting for the first complete catalog from the ${source.name} source${lastSourceError ? `; last error: ${lastSourceError}` : ''}`,
  });

  const adminPort = await admin.listen(opts.host, opts.adminPort);
  let xdsPort: number;
  try {
    xdsPort = await xds.listen(opts.host, opts.xdsPort);
  } catch (err) {
    await admin.close();
    throw err;
  }
  await source.start({
    update(catalog) {
      lastSourceError = undefined;
      metrics.sourceLastSuccess.set({ source: source.name }, Date.now() / 1000);
      store.setCatalog(catalog);
    },
    error(err) {
      lastSourceError = err.message;
      metrics.sourceErrors.inc({ source: source.name });
      logger.warn(
        { source: source.name, error: err.message },
        store.ready ? 'source error; serving the last good catalog' : 'source error; not ready',
      );
    },
  });
  logger.info(
    { host: opts.host, xdsPort, adminPort, source: source.name },
    'lucid-mesh control plane started',
  );

  return {
    store,
    xds,
    counters,
    metrics,
    events,
    xdsPort,
    adminPort,
    async stop() {
      await source.stop();
      store.close();
      await Promise.all([xds.close(500), admin.close()]);
    },
  };
}
