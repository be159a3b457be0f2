// The shape of a run's JSON file (bench/runs/*.json), from which bench/RESULTS.md is generated.
import type { Summary } from './stats.js';

export const RESULT_SCHEMA = 1;

export type Mode = 'sotw' | 'delta';
export type WorkloadId = 'Q' | 'W1' | 'W2' | 'W4' | 'W5' | 'W6' | 'W7' | 'W9' | 'W10';

export interface MachineInfo {
  readonly nproc: number;
  readonly memTotalBytes: number;
  readonly cpuModel: string;
  readonly node: string;
  readonly platform: string;
  readonly commit: string;
  /** Uncommitted changes in the working tree when the run started. */
  readonly dirty: boolean;
}

export interface CpSettings {
  readonly source: 'file' | 'consul';
  readonly logLevel: string;
  readonly debounceMs: number;
  readonly maxDebounceMs: number;
}

/** CPU of the load-client workers over a phase: a reader checks the client was not the bottleneck. */
export interface ClientCpu {
  readonly workers: number;
  readonly cpuSeconds: number;
  readonly wallSeconds: number;
  /** Busiest worker's CPU / wall time (100 = one core saturated). */
  readonly maxWorkerBusyPct: number;
}

export interface StormResult {
  readonly proxies: number;
  readonly configured: number;
  /** Streams opened → every proxy fully configured (CDS, EDS for all its clusters, LDS, RDS). */
  readonly allConfiguredMs: number;
  /** Per proxy: streams opened → that proxy configured. */
  readonly perProxyMs: Summary;
  /**
   * Per proxy: streams opened → its HTTP/2 connection up, and → the first response bytes it
   * received (where a small storm's wall time goes; absent in older run files).
   */
  readonly connectedMs?: Summary;
  readonly firstResponseMs?: Summary;
  /** Streams opened → the first response any proxy received (the first stream's cost). */
  readonly firstServedMs?: number;
  readonly cpCpuSeconds: number;
  /** The control plane's GC pauses during the storm (ms) and its mark-compacts. */
  readonly gcMs?: number;
  readonly majorGcs?: number;
  /**
   * Once the storm settled, before any forced GC: V8's external memory (Buffers and other
   * ArrayBuffers still held, dead ones included until a mark-compact) and the RSS.
   */
  readonly settledExternalBytes?: number;
  readonly settledRssBytes?: number;
  /** The highest external memory and RSS the control plane saw at a GC up to then. */
  readonly peakExternalBytes?: number;
  readonly peakRssBytes?: number;
  readonly responses: number;
  readonly bytes: number;
  readonly encodes: number;
  readonly client: ClientCpu;
}

export interface MemoryResult {
  readonly proxies: number;
  readonly idleRssBytes: number;
  readonly loadedRssBytes: number;
  readonly idleHeapBytes: number;
  readonly loadedHeapBytes: number;
  /** (RSS with K proxies − RSS with 0) / K, after a full GC in both cases. */
  readonly rssPerProxyBytes: number;
  /** Same with V8 heapUsed. */
  readonly heapPerProxyBytes: number;
  /** Same with heapUsed + external (Buffers live outside the V8 heap). */
  readonly heapExternalPerProxyBytes: number;
  /**
   * RSS split per proxy: V8's committed heap (heapTotal: pages V8 holds, used or not) and the
   * native rest (RSS − heapTotal − external: nghttp2, sockets, malloc's retained pages).
   */
  readonly heapCommittedPerProxyBytes?: number;
  readonly nativeRestPerProxyBytes?: number;
  /** V8's new space (young generation) and old space committed, with 0 and with K proxies. */
  readonly newSpaceBytes?: { readonly idle?: number; readonly loaded?: number };
  readonly oldSpaceBytes?: { readonly idle?: number; readonly loaded?: number };
  /** W10: the model's memory (bench/model-memory.ts): 0 proxies, catalog vs empty catalog. */
  readonly model?: ModelMemory;
}

export interface ModelMemory {
  /** A control plane on an empty catalog, after a full GC. */
  readonly emptyRssBytes: number;
  readonly emptyHeapBytes: number;
  readonly emptyExternalBytes: number;
  /** heapUsed + external with the catalog loaded minus the same on the empty catalog. */
  readonly modelBytes: number;
  readonly modelBytesPerService: number;
  readonly modelRssBytes: number;
}

/** W9 `--heap-snapshot`: the control plane's heap per proxy by owner (bench/heap-breakdown.ts). */
export interface HeapBreakdown {
  readonly proxies: number;
  /** Heap (V8 self sizes) with K proxies minus with none, / K. */
  readonly totalBytesPerProxy: number;
  /** Owners of under 16 B per proxy each, summed. */
  readonly restBytesPerProxy: number;
  readonly byCategory: Record<string, number>;
  readonly entries: HeapBreakdownEntry[];
}

export interface HeapBreakdownEntry {
  /** Owner constructor and the edge below it ("SotwStream.subs"), or "Ctor (self)". */
  readonly label: string;
  readonly category: string;
  readonly bytesPerProxy: number;
  /** Owner objects per proxy (for "(self)" labels: instances). */
  readonly objectsPerProxy: number;
}

export interface ChangeRecord {
  readonly n: number;
  /** Endpoint flip: the service whose assignment changed; router edit: `service-router/<name>`. */
  readonly cluster: string;
  /** Endpoint flip: the instance's health after it; router edit: what the edit set. */
  readonly health: string;
  readonly writeAt: number;
  readonly sourceAt: number;
  readonly buildStartedAt: number;
  readonly builtAt: number;
  readonly notifiedAt: number;
  readonly firstAt: number;
  readonly lastAt: number;
  readonly detected: number;
  /** W9 scoped: the proxies whose scope holds the change (absent: all K). */
  readonly expected?: number;
  readonly snapshots: number;
  readonly cpCpuMs: number;
  /** The control plane's GC pauses during the change (ms) and its mark-compacts. */
  readonly gcMs?: number;
  readonly majorGcs?: number;
  readonly encodes: number;
  readonly responses: number;
  readonly bytes: number;
  readonly acks: number;
}

export interface ChangesResult {
  readonly count: number;
  /** Fan-out (ms) of the warm-up changes made before the measured ones (not in any summary). */
  readonly warmupFanoutMs?: readonly number[];
  /** Changes every proxy saw (the rest timed out). */
  readonly complete: number;
  /** M1: snapshot build (debounce fired: catalog compare, mesh, translate, encode → snapshot built), ms. */
  readonly buildMs: Summary;
  /** M1 as the control plane logs it ('snapshot built' buildMs, whole ms). */
  readonly loggedBuildMs: Summary;
  /** Catalog file written → control plane's source delivered the parsed catalog. */
  readonly sourceMs: Summary;
  /** Catalog file written → snapshot built (file watch, parse, debounce, build). */
  readonly detectMs: Summary;
  /** Snapshot built → every stream handed its new view (synchronous CP work). */
  readonly notifyMs: Summary;
  /** M3 fan-out: snapshot built → the last of K proxies has the change. */
  readonly fanoutMs: Summary;
  /** Snapshot built → the first proxy has the change. */
  readonly firstProxyMs: Summary;
  /** Per proxy (all changes pooled): snapshot built → this proxy has the change. */
  readonly perProxyMs: Summary;
  /** M3 end to end: catalog file written → the last of K proxies has the change. */
  readonly endToEndMs: Summary;
  /** M5: control-plane CPU per change, ms. */
  readonly cpCpuMsPerChange: Summary;
  /** GC pauses (ms) and mark-compacts of the control plane over the whole phase. */
  readonly gcMs?: number;
  readonly majorGcs?: number;
  /** M7: bytes of xDS responses per change (lucid_mesh_xds_response_bytes_total). */
  readonly bytesPerChange: Summary;
  /** lucid_mesh_resources_encoded_total per change (target: 1 per changed resource). */
  readonly encodesPerChange: Summary;
  readonly responsesPerChange: Summary;
  readonly snapshotsPerChange: Summary;
  readonly client: ClientCpu;
  readonly records: ChangeRecord[];
}

export interface ChurnResult {
  readonly ratePerSecond: number;
  readonly seconds: number;
  readonly flips: number;
  /** Flips actually written per second (the writer may fall behind). */
  readonly achievedRate: number;
  /** Catalog file writes (flips due within --churn-write-ms share one write). */
  readonly fileWrites: number;
  /** Flips every proxy saw within the drain time. */
  readonly complete: number;
  readonly snapshots: number;
  /** Per flip: catalog file written → the last of K proxies has it. */
  readonly endToEndMs: Summary;
  /** Per flip: snapshot carrying it built → the last proxy has it. */
  readonly fanoutMs: Summary;
  readonly buildMs: Summary;
  readonly cpCpuSeconds: number;
  /** CP CPU over the window / window: 100 = one core. */
  readonly cpBusyPct: number;
  readonly cpCpuMsPerFlip: number;
  readonly bytesPerFlip: number;
  readonly encodesPerFlip: number;
  readonly responsesPerSnapshot: number;
  readonly client: ClientCpu;
}

export interface AgreementResult {
  /** Every proxy holds the same shared content for every type. */
  readonly agree: boolean;
  /** Per type: distinct digests ("<resources>:<hash>") → proxies. */
  readonly digests: Record<string, Record<string, number>>;
  /** Expected shared resource counts per type (from the catalog). */
  readonly expectedCounts: Record<string, number>;
  readonly countsMatch: boolean;
  readonly nacks: number;
  readonly staleNonces: number;
  readonly streamErrors: number;
  readonly anomalies: readonly string[];
}

export interface ProfileEntry {
  readonly fn: string;
  readonly where: string;
  readonly selfMs: number;
  readonly selfPct: number;
}

export interface ProfileResult {
  readonly phase: string;
  readonly file: string;
  readonly totalMs: number;
  readonly top: ProfileEntry[];
}

/** W7: the traffic file the control plane watched, and the router edits measured. */
export interface TrafficResult {
  /** Entries per kind in the traffic file. */
  readonly entries: Record<string, number>;
  readonly fileBytes: number;
  /**
   * ClusterLoadAssignments one endpoint flip changes: the service's and the flipped instance's
   * subset's (W2: 1). The target for encodes per flip.
   */
  readonly resourcesPerFlip: number;
  /**
   * Sequential edits of one service-router each (its /api/ route's timeout and a header),
   * measured as the endpoint flips are: a proxy has the edit when the RouteConfiguration it is
   * sent carries it.
   */
  readonly routerEdits?: ChangesResult;
}

/** `--peer-mode`: one snapshot per node id, or one snapshot group for every proxy. */
export type PeerMode = 'per-node' | 'shared';

/** `--peer`: the session ran against a reference control plane instead of lucid-mesh. */
export interface PeerInfo {
  readonly name: 'go-control-plane';
  readonly version: string;
  readonly mode: PeerMode;
}

export interface SessionResult {
  /** e.g. "W2+W5+W6": the workloads this session measured. */
  readonly plan: string;
  /** Set when the control plane under test was a reference peer (absent: lucid-mesh). */
  readonly peer?: PeerInfo;
  /**
   * `--repeat`: which round of the interleaved sessions (lucid-mesh, then each peer, then
   * again) this was, from 1; absent when the run had one round and no peer.
   */
  readonly round?: number;
  readonly covers: WorkloadId[];
  readonly mode: Mode;
  readonly services: number;
  readonly instances: number;
  readonly proxies: number;
  readonly cp: CpSettings;
  readonly catalogBytes: number;
  readonly wallSeconds: number;
  /**
   * CPU used by other processes on the machine during the session, in cores (machine busy
   * time minus the control plane's, the workers' and the harness's own, over wall time).
   */
  readonly backgroundCpuCores?: number;
  readonly storm?: StormResult;
  readonly memory?: MemoryResult;
  /** Sequential endpoint flips. */
  readonly changes?: ChangesResult;
  readonly churn: ChurnResult[];
  /** W7 only. */
  readonly traffic?: TrafficResult;
  readonly agreement?: AgreementResult;
  /** W9 with --heap-snapshot: what each per-proxy structure costs. */
  readonly heapBreakdown?: HeapBreakdown;
  /** Selected totals scraped from /metrics at the end (cross-check of the IPC counters). */
  readonly metrics: Record<string, number | undefined>;
  readonly profiles: ProfileResult[];
  readonly errors: string[];
}

export interface EnvoyRunResult {
  readonly mode: Mode;
  readonly source: 'file' | 'consul';
  readonly envoys: number;
  readonly envoyVersion: string;
  readonly services: number;
  readonly instances: number;
  readonly changes: number;
  /** Changes every Envoy showed (the rest timed out). */
  readonly complete: number;
  /** Source change → every Envoy's admin (/clusters) shows it. */
  readonly appliedMs: Summary;
  /** Source change → the first Envoy shows it. */
  readonly firstEnvoyMs: Summary;
  /** Snapshot built → every Envoy shows it. */
  readonly snapshotToAllMs: Summary;
  /** How often each Envoy's admin was polled (resolution of the numbers above). */
  readonly pollIntervalMs: number;
  /** Sum of *.update_rejected over all Envoys (NACKs as Envoy counts them). */
  readonly updateRejected: number;
  /** Control plane lucid_mesh_xds_nacks_total. */
  readonly nacks: number;
  /** Every Envoy shows the same endpoints for every cluster at the end. */
  readonly agree: boolean;
  readonly errors: string[];
  readonly skipped?: string;
}

/** One memory sample of the control plane during a soak (after a forced full GC). */
export interface SoakSample {
  /** Seconds since the soak started. */
  readonly t: number;
  readonly rss: number;
  readonly heapUsed: number;
  readonly external: number;
  /** V8's committed heap (what of RSS the heap holds, used or not); older runs have none. */
  readonly heapTotal?: number;
  /** ArrayBuffers and Buffers (part of external): gRPC frames, encoded resources. */
  readonly arrayBuffers?: number;
  readonly connected: number;
  /** Streams the clients had closed and reopened by then. */
  readonly reconnects: number;
  /** The machine's 1-minute load average then (older runs have none). */
  readonly load1?: number;
  /** V8's malloc'd memory outside its heap, now and at most (older runs have none). */
  readonly mallocedMemory?: number;
  readonly peakMallocedMemory?: number;
}

export interface SoakSeries {
  readonly start: number;
  readonly end: number;
  readonly min: number;
  readonly max: number;
  /** Least-squares slope over the samples after the warm-up, KiB per minute. */
  readonly slopeKiBPerMin: number;
}

/** `--workload soak`: K simulated sidecars reconnecting continuously under catalog churn. */
export interface SoakResult {
  readonly mode: Mode;
  readonly services: number;
  readonly instances: number;
  readonly proxies: number;
  readonly cp: CpSettings;
  readonly seconds: number;
  /** Each stream lives a random lifeMs[0]..lifeMs[1], then the client closes and reopens it. */
  readonly lifeMs: readonly [number, number];
  readonly flipsPerSecond: number;
  readonly flips: number;
  readonly sampleSeconds: number;
  /** Samples before this many seconds are left out of the slopes. */
  readonly warmupSeconds: number;
  readonly samples: SoakSample[];
  readonly rss: SoakSeries;
  readonly heap: SoakSeries;
  readonly reconnects: number;
  /** Reopened streams fully configured again (CDS, EDS, LDS, RDS). */
  readonly reconfigured: number;
  /** Stream ends the clients did not cause (server-side errors, resets), seen by the clients. */
  readonly streamErrors: number;
  readonly nacks: number;
  readonly staleNonces: number;
  readonly badRequests: number;
  readonly streamsOpened: number;
  readonly streamsClosed: number;
  /** Streams the control plane counts as connected at the end (expected: K). */
  readonly connectedAtEnd: number;
  /** After the reconnects stop: every proxy configured and holding the same shared content. */
  readonly converged: boolean;
  readonly agreement?: AgreementResult;
  readonly cpCpuSeconds: number;
  readonly client: ClientCpu;
  readonly anomalies: readonly string[];
  readonly errors: string[];
  /** RSS slope after warm-up split by part, KiB/min (older runs have none). */
  readonly breakdown?: {
    readonly heapTotal: number;
    readonly external: number;
    readonly arrayBuffers: number;
    readonly native: number;
  };
}

/**
 * `--workload failover` (issue 12): K simulated sidecars on one of three replicas, which is
 * killed with SIGKILL; they fail over to the other two as Envoy does.
 */
export interface FailoverResult {
  readonly mode: Mode;
  readonly services: number;
  readonly instances: number;
  readonly proxies: number;
  /** From the kill until every proxy is SYNCED on a survivor (target ≤ 5,000 ms). */
  readonly reestablishedMs: number;
  /** ...until the first one is, and half of them. */
  readonly firstMs: number;
  readonly p50Ms: number;
  /** Response bytes the proxies received from the kill until a second after they were done. */
  readonly bytesResent: number;
  readonly responsesResent: number;
  readonly bytesPerProxy: number;
  /** For scale: what the proxies received when they first connected. */
  readonly stormBytes: number;
  /** Stream reopen attempts (a refused one, on the dead replica, counts too). */
  readonly failovers: number;
  /** CPU the two survivors spent taking the proxies over. */
  readonly survivorCpuSeconds: number;
  /** Every proxy holds the same shared content afterwards. */
  readonly agree: boolean;
  /** [ms since the kill, proxies SYNCED on the survivors] whenever the count changed. */
  readonly curve: ReadonlyArray<readonly [number, number]>;
  /** Streams on each survivor at the end. */
  readonly perReplica?: readonly number[];
  /** The machine's 1-minute load average at the kill (others' work shares the cores). */
  readonly loadAvg1?: number;
  readonly errors: string[];
}

export interface RunResult {
  readonly schema: typeof RESULT_SCHEMA;
  readonly id: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly argv: string[];
  /** What served ADS (bench --xds-transport); absent: grpc-js, the only one before it. */
  readonly xdsTransport?: 'http2' | 'grpc-js';
  readonly quick: boolean;
  readonly machine: MachineInfo;
  readonly sessions: SessionResult[];
  readonly envoy: EnvoyRunResult[];
  /** `--workload soak` (absent in older run files). */
  readonly soak?: SoakResult[];
  /** `--workload failover` (absent in older run files). */
  readonly failover?: FailoverResult[];
  /** `--workload scope-envoy` (absent in older run files). */
  readonly scopeEnvoy?: ScopeEnvoyResult[];
  /** `--workload idle` (absent in older run files). */
  readonly idle?: IdleRssResult[];
}

/** One real Envoy sidecar measured with a wide and a narrow scope (bench/scope-envoy.ts). */
export interface ScopeEnvoySample {
  /** `wide`: every service in scope; `narrow`: its declared upstreams only. */
  readonly scope: 'wide' | 'narrow';
  readonly round: number;
  /** cluster_manager.active_clusters once configured. */
  readonly clusters: number;
  readonly rssMiB: number;
  readonly configDumpKiB: number;
  /** Envoy start → every cluster active. */
  readonly readyMs: number;
}

export interface ScopeEnvoyResult {
  readonly services: number;
  readonly instances: number;
  readonly declared: number;
  readonly samples: readonly ScopeEnvoySample[];
  readonly errors: readonly string[];
}

/** `--workload idle` (bench/idle-rss.ts): which catalog `serve` read. */
export type IdleCatalog = 'empty' | 'example' | '1000x5';

export interface IdleHeapSpace {
  readonly space: string;
  readonly usedMiB: number;
  readonly committedMiB: number;
}

/** One `lucid-mesh serve` with no proxy, measured a settle time after /ready. */
export interface IdleRssSample {
  readonly catalog: IdleCatalog;
  readonly round: number;
  /** Process start → /ready answered 200. */
  readonly readyMs: number;
  /** /proc/PID/status VmRSS, RssAnon, RssFile. */
  readonly rssMiB: number;
  readonly anonMiB: number;
  readonly fileMiB: number;
  /** V8 heap spaces (prom-client's default metrics); committed = V8's space size. */
  readonly spaces: readonly IdleHeapSpace[];
  readonly externalMiB: number;
  readonly heapUsedMiB: number;
  readonly heapCommittedMiB: number;
}

/** The modules one `serve` loaded (files parsed, source characters), by package. */
export interface IdleModules {
  readonly catalog: IdleCatalog;
  readonly count: number;
  readonly sourceKiB: number;
  readonly packages: ReadonlyArray<{
    readonly name: string;
    readonly count: number;
    readonly sourceKiB: number;
  }>;
}

/** A fresh node that imported a growing prefix of the program. */
export interface IdleAttributionStep {
  readonly label: string;
  readonly rssMiB: number;
  readonly anonMiB: number;
  readonly fileMiB: number;
  readonly heapUsedMiB: number;
  readonly heapCommittedMiB: number;
}

export interface IdleRssResult {
  readonly settleSeconds: number;
  readonly rounds: number;
  /** Environment knobs that change the result (LUCID_STARTUP_*, MALLOC_ARENA_MAX, NODE_OPTIONS). */
  readonly env: Readonly<Record<string, string>>;
  readonly samples: readonly IdleRssSample[];
  readonly modules: readonly IdleModules[];
  readonly attribution: readonly IdleAttributionStep[];
  readonly errors: readonly string[];
}
