// The control plane under test, in its own process: the real composition (`startControlPlane`,
// as `lucid-mesh serve` runs it) on the real file source (and, for W7, the real traffic file of
// `serve --traffic`), logging as `serve` does (JSON lines on stderr, which the harness sends to
// a file). Nothing in src/ is changed for the benchmark; this entry only observes: it
// timestamps source and traffic-file deliveries and snapshots on the machine-wide
// monotonic clock, and answers the harness's questions over IPC (its own CPU and memory, the
// counters behind /metrics, the bytes of one resource for fan-out detection, CPU profiles).
// First, as in src/cli/main.ts: V8's young generation stays small while the product loads.
import '../src/startup-heap.js';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { getHeapSpaceStatistics, getHeapStatistics, writeHeapSnapshot } from 'node:v8';
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import type { RunningControlPlane } from '../src/app.js';
import type { ResourceKind } from '../src/protos/envoy.js';
import type { CatalogSink, DiscoverySource } from '../src/sources/source.js';
import type { LogLevel } from '../src/telemetry/logger.js';
import { nowMs } from './load/protocol.js';

// Loaded once the hold above is in place (ES modules are all parsed before any runs).
const [{ startControlPlane }, { FileSource }, { createLogger }, { TrafficFile }, { syncState }] =
  await Promise.all([
    import('../src/app.js'),
    import('../src/sources/file-source.js'),
    import('../src/telemetry/logger.js'),
    import('../src/traffic/traffic-file.js'),
    import('../src/xds/type-status.js'),
  ]);

export interface CpChildConfig {
  readonly source: 'file' | 'consul';
  readonly catalogPath: string;
  /** A traffic file (`serve --traffic FILE`), watched like the catalog (W7). */
  readonly trafficPath?: string;
  readonly consulAddr?: string;
  readonly logLevel: LogLevel;
  readonly debounceMs: number;
  readonly maxDebounceMs: number;
  /** `serve --scope` (W9 declared); absent: `all`, as serve without a policy. */
  readonly scope?: 'all' | 'declared';
}

export interface CpStats {
  readonly at: number;
  readonly cpuUserUs: number;
  readonly cpuSystemUs: number;
  readonly rss: number;
  readonly heapUsed: number;
  readonly heapTotal: number;
  readonly external: number;
  readonly arrayBuffers: number;
  /** V8's malloc'd memory outside the heap (compiler zones and the like), now and at most. */
  readonly mallocedMemory?: number;
  readonly peakMallocedMemory?: number;
  /** GC pauses on the main thread so far: total ms, mark-compacts, the longest pause ms. */
  readonly gcMs?: number;
  readonly majorGcs?: number;
  readonly maxGcPauseMs?: number;
  /** The highest external memory and RSS seen after a GC so far (bytes). */
  readonly peakExternalBytes?: number;
  readonly peakRssBytes?: number;
  /** V8's committed young generation (new space) and old space, bytes. */
  readonly newSpaceBytes?: number;
  readonly oldSpaceBytes?: number;
  readonly encoded: number;
  readonly reused: number;
  readonly snapshotsBuilt: number;
  readonly buildErrors: number;
  readonly responses: number;
  readonly responseBytes: number;
  readonly acks: number;
  readonly nacks: number;
  readonly staleNonces: number;
  readonly badRequests: number;
  readonly streamsOpened: number;
  readonly streamsClosed: number;
  readonly connected: number;
  readonly version: string | undefined;
}

export interface SnapshotEvent {
  readonly ev: 'snapshot';
  readonly version: string;
  readonly previous: string | undefined;
  /** First source (or traffic file) delivery folded into this snapshot. */
  readonly sourceAt: number;
  readonly buildStartedAt: number;
  /** Snapshot built, before any stream is told. */
  readonly builtAt: number;
  /**
   * Every watcher (stream) has been handed the new view: the control plane's part of the
   * fan-out (NaN when a newer snapshot took over before it finished).
   */
  readonly notifiedAt: number;
}

const config = JSON.parse(process.env.LUCID_BENCH_CP ?? '{}') as CpChildConfig;
const xdsTransport = process.env.LUCID_XDS_TRANSPORT as 'http2' | 'grpc-js' | undefined;
const send = (m: object): void => void process.send?.(m);

/** When the inputs not yet in a snapshot were delivered (catalog source or traffic file). */
const delivered: { firstPendingAt: number | undefined; lastAt: number } = {
  firstPendingAt: undefined,
  lastAt: 0,
};
function noteDelivery(): void {
  const t = nowMs();
  delivered.firstPendingAt ??= t;
  delivered.lastAt = t;
}

/** Wraps the real source to timestamp what it delivers. */
class TimedSource implements DiscoverySource {
  constructor(private readonly inner: DiscoverySource) {}
  get name(): string {
    return this.inner.name;
  }
  start(sink: CatalogSink): Promise<void> {
    return this.inner.start({
      update: (catalog) => {
        noteDelivery();
        sink.update(catalog);
      },
      error: (err) => sink.error(err),
    });
  }
  stop(): Promise<void> {
    return this.inner.stop();
  }
}

const CONSUL_UNAVAILABLE = 'consul source not available in this build';

async function makeSource(logger: ReturnType<typeof createLogger>): Promise<DiscoverySource> {
  if (config.source === 'file') return new FileSource(config.catalogPath, logger);
  // Loaded on demand: a build without the Consul source still runs every file benchmark.
  let mod: { ConsulSource?: new (opts: object, logger: unknown) => DiscoverySource };
  try {
    mod = (await import(CONSUL_MODULE)) as typeof mod;
  } catch {
    throw new Error(CONSUL_UNAVAILABLE);
  }
  if (!mod.ConsulSource) throw new Error(CONSUL_UNAVAILABLE);
  const [host, port] = (config.consulAddr ?? '127.0.0.1:8500').split(':');
  return new mod.ConsulSource(
    { connection: { secure: false, host: host!, port: Number(port) }, waitMs: 60_000 },
    logger,
  );
}

/** A variable, so that type checking does not require the module to exist. */
const CONSUL_MODULE = '../src/sources/consul/consul-source.js';

async function main(): Promise<void> {
  const logger = createLogger(config.logLevel);
  const source = new TimedSource(await makeSource(logger));
  // The real traffic file, handed to the control plane as `serve --traffic` does. Its change
  // listeners run in the order they were added, so this one timestamps each configuration it
  // delivers before the control plane hears of it.
  const traffic = config.trafficPath ? new TrafficFile(config.trafficPath, logger) : undefined;
  traffic?.onChange(noteDelivery);
  const running: RunningControlPlane = await startControlPlane({
    source,
    logger,
    // bench --xds-transport, passed down as serve reads it (LUCID_XDS_TRANSPORT).
    ...(xdsTransport ? { xdsTransport } : {}),
    host: '127.0.0.1',
    xdsPort: 0,
    adminPort: 0,
    debounceMs: config.debounceMs,
    maxDebounceMs: config.maxDebounceMs,
    ...(traffic ? { traffic } : {}),
    ...(config.scope ? { mesh: { scope: config.scope } } : {}),
  });
  const { store, counters, xds } = running;
  // The initial load is not a change.
  delivered.firstPendingAt = undefined;

  // The build starts when the debounce fires (store.lastBuild.startedAt: the catalog compare,
  // mesh, translation, encoding, version), moved from the performance clock to nowMs().
  const buildStartedAtNow = (): number => {
    const startedAt = store.lastBuild?.startedAt;
    if (startedAt === undefined) return NaN;
    return nowMs() - (performance.timeOrigin + performance.now() - startedAt);
  };
  // A snapshot's event goes out once the store has handed every watcher its view (the
  // fan-out is issued: store.onNotified), or, if a newer snapshot took over first, then.
  let unnotified: Omit<SnapshotEvent, 'notifiedAt'> | undefined;
  store.onSnapshot((snapshot, previous) => {
    const builtAt = nowMs();
    const buildStartedAt = buildStartedAtNow();
    const sourceAt = delivered.firstPendingAt ?? delivered.lastAt;
    delivered.firstPendingAt = undefined;
    if (unnotified) send({ ...unnotified, notifiedAt: NaN });
    unnotified = {
      ev: 'snapshot',
      version: snapshot.version,
      previous: previous?.version,
      sourceAt,
      buildStartedAt,
      builtAt,
    };
  });
  store.onNotified((snapshot) => {
    if (unnotified?.version !== snapshot.version) return;
    send({ ...unnotified, notifiedAt: nowMs() });
    unnotified = undefined;
  });

  // GC pauses (is a change's slow fan-out a mark-compact during the pass?).
  const gc = { ms: 0, major: 0, maxPause: 0, peakExternal: 0, peakRss: 0 };
  new PerformanceObserver((list) => {
    // The highest external memory and RSS seen at a GC (the storm's, for the first phase).
    const mem = process.memoryUsage();
    gc.peakExternal = Math.max(gc.peakExternal, mem.external);
    gc.peakRss = Math.max(gc.peakRss, mem.rss);
    for (const e of list.getEntries()) {
      gc.ms += e.duration;
      gc.maxPause = Math.max(gc.maxPause, e.duration);
      const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind;
      if (kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) gc.major++;
    }
  }).observe({ entryTypes: ['gc'] });

  const stats = (): CpStats => {
    const cpu = process.cpuUsage();
    const mem = process.memoryUsage();
    const v8Heap = getHeapStatistics();
    return {
      at: nowMs(),
      cpuUserUs: cpu.user,
      cpuSystemUs: cpu.system,
      rss: mem.rss,
      heapUsed: mem.heapUsed,
      heapTotal: mem.heapTotal,
      external: mem.external,
      arrayBuffers: mem.arrayBuffers,
      mallocedMemory: v8Heap.malloced_memory,
      peakMallocedMemory: v8Heap.peak_malloced_memory,
      gcMs: gc.ms,
      majorGcs: gc.major,
      maxGcPauseMs: gc.maxPause,
      peakExternalBytes: gc.peakExternal,
      peakRssBytes: gc.peakRss,
      ...heapSpaces(),
      encoded: store.encoder.counters.encoded,
      reused: store.encoder.counters.reused,
      snapshotsBuilt: store.counters.snapshotsBuilt,
      buildErrors: store.counters.buildErrors,
      responses: counters.responses,
      responseBytes: counters.responseBytes,
      acks: counters.acks,
      nacks: counters.nacks,
      staleNonces: counters.staleNonces,
      badRequests: counters.badRequests,
      streamsOpened: counters.streamsOpened,
      streamsClosed: counters.streamsClosed,
      connected: xds.connected.size,
      version: store.snapshot?.version,
    };
  };

  let profiler: Session | undefined;
  const handle = async (msg: Record<string, unknown>): Promise<unknown> => {
    switch (msg.op) {
      case 'stats':
        return stats();
      case 'gc': {
        const gc = (globalThis as { gc?: () => void }).gc;
        if (!gc) throw new Error('gc not exposed (--expose-gc)');
        // Twice, with a turn in between, so weak maps and finalisers settle.
        gc();
        await new Promise((r) => setTimeout(r, 50));
        gc();
        return stats();
      }
      case 'synced': {
        // Failover: proxies with a stream here on which every type it asked for is SYNCED
        // (the proxy holds this replica's current version: sent and ACKed, or already held).
        let synced = 0;
        for (const s of xds.connected.values()) {
          if (!s.proxy || s.types.size < Number(msg.types ?? 1)) continue;
          if ([...s.types.values()].every((t) => syncState(t) === 'SYNCED')) synced++;
        }
        return { synced, connected: xds.connected.size, at: nowMs() };
      }
      case 'resource': {
        const r = store.snapshot?.shared[msg.kind as ResourceKind].get(String(msg.name));
        return r ? { version: r.version, value: r.value } : undefined;
      }
      case 'heapSnapshot':
        // W9: what each per-proxy structure costs (bench/heap-breakdown.ts reads it).
        return { path: writeHeapSnapshot(String(msg.path)) };
      case 'profileStart': {
        profiler = new Session();
        profiler.connect();
        await profiler.post('Profiler.enable');
        await profiler.post('Profiler.setSamplingInterval', { interval: 1000 });
        await profiler.post('Profiler.start');
        return { started: true };
      }
      case 'profileStop': {
        if (!profiler) throw new Error('profiler not started');
        const { profile } = await profiler.post('Profiler.stop');
        profiler.disconnect();
        profiler = undefined;
        writeFileSync(String(msg.path), JSON.stringify(profile));
        return { path: msg.path };
      }
      case 'stop': {
        await running.stop();
        setTimeout(() => process.exit(0), 20);
        return { stopped: true };
      }
      default:
        throw new Error(`unknown op ${String(msg.op)}`);
    }
  };
  process.on('message', (raw: unknown) => {
    const msg = raw as Record<string, unknown>;
    handle(msg).then(
      (body) => send({ ev: 'reply', id: msg.id, body }),
      (err: Error) => send({ ev: 'reply', id: msg.id, body: { error: err.message } }),
    );
  });
  process.on('disconnect', () => process.exit(0));
  process.once('SIGTERM', () => {
    void running.stop().finally(() => process.exit(0));
  });
  send({
    ev: 'ready',
    xdsPort: running.xdsPort,
    adminPort: running.adminPort,
    version: store.snapshot?.version,
    pid: process.pid,
  });
}

main().catch((err: Error) => {
  send({ ev: 'failed', message: err.message });
  process.stderr.write(`bench control plane: ${err.stack ?? err.message}\n`);
  process.exit(1);
});

/** Committed bytes of V8's new and old spaces. */
function heapSpaces(): { newSpaceBytes?: number; oldSpaceBytes?: number } {
  const out: { newSpaceBytes?: number; oldSpaceBytes?: number } = {};
  for (const space of getHeapSpaceStatistics()) {
    if (space.space_name === 'new_space') out.newSpaceBytes = space.space_size;
    if (space.space_name === 'old_space') out.oldSpaceBytes = space.space_size;
  }
  return out;
}
