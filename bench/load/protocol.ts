// Messages between the harness and its load-client workers (child processes, IPC with
// structured-clone serialisation). Times are milliseconds on the machine-wide monotonic clock
// (`nowMs()`), so the harness, the control plane and the workers can compare them.

export type XdsMode = 'sotw' | 'delta';
export type WatchKind = 'endpoints' | 'routes' | 'clusters' | 'listeners';

export interface ProxySpec {
  readonly nodeId: string;
  readonly service: string;
}

/**
 * What "has the change" means for one proxy: it receives a response of `kind` carrying the
 * resource `name` whose encoded value contains `marker` (`present`) or does not (`!present`).
 * For an endpoint flip the marker is the flipped instance's address as encoded in the
 * ClusterLoadAssignment (SocketAddress.address with its tag and length, so 10.0.0.1 does not
 * match 10.0.0.10): absent after a flip to critical, present after a flip back to passing.
 */
export interface WatchSpec {
  readonly watchId: number;
  readonly kind: WatchKind;
  readonly name: string;
  readonly marker: Uint8Array;
  readonly present: boolean;
  /** Send every proxy's arrival time back (else only count/min/max). */
  readonly detail: boolean;
  /** W9 scoped: only the sidecars of these services should see it (absent: every sidecar). */
  readonly audience?: readonly string[];
}

export type WorkerRequest =
  | {
      readonly op: 'open';
      readonly target: string;
      readonly mode: XdsMode;
      readonly proxies: readonly ProxySpec[];
      readonly outboundPort: number;
      /**
       * Failover: every replica's address (`target` first). A broken stream is reopened, as
       * Envoy does, after a jittered back-off on the next address, saying what it holds.
       */
      readonly failover?: readonly string[];
    }
  | { readonly op: 'watch'; readonly watches: readonly WatchSpec[] }
  | { readonly op: 'unwatch'; readonly watchIds: readonly number[] }
  | { readonly op: 'stats' }
  /** `byService`: digests keyed "<service>|<digest>" (scoped sessions agree per service). */
  | { readonly op: 'digest'; readonly byService?: boolean }
  | { readonly op: 'close' }
  /**
   * Soak: from now on each sidecar's stream lives a random `minMs`..`maxMs`, then is closed by
   * the client and reopened (a fresh sidecar on the same node), until `soakStop`.
   */
  | { readonly op: 'soakStart'; readonly minMs: number; readonly maxMs: number }
  | { readonly op: 'soakStop' };

export interface WorkerStats {
  readonly cpuUserUs: number;
  readonly cpuSystemUs: number;
  readonly rss: number;
  readonly streams: number;
  readonly configured: number;
  readonly responses: number;
  readonly responseBytes: number;
  readonly requests: number;
  readonly streamErrors: number;
  readonly anomalies: readonly string[];
  /** Soak: streams the client closed and reopened. */
  readonly reconnects?: number;
  /** Soak: reopened streams that were fully configured again. */
  readonly reconfigured?: number;
  /** Sidecars whose current stream is fully configured. */
  readonly configuredNow?: number;
  /** Failover: streams reopened after they broke (attempts, including refused ones). */
  readonly failovers?: number;
}

/** Per type: digest of the shared content → how many proxies hold it; `missing` have none. */
export type DigestSummary = Record<string, { readonly digests: Record<string, number> }>;

export type WorkerEvent =
  | { readonly ev: 'reply'; readonly id: number; readonly body: unknown }
  | {
      readonly ev: 'configured';
      /** When each of this worker's proxies was fully configured (all four types). */
      readonly times: readonly number[];
      readonly openedAt: number;
      /** Per proxy: its connection up, and its first response bytes received (0 = never). */
      readonly connected?: readonly number[];
      readonly firstResponse?: readonly number[];
    }
  | {
      readonly ev: 'detected';
      readonly watchId: number;
      readonly count: number;
      readonly min: number;
      readonly max: number;
      readonly times?: readonly number[];
    }
  | { readonly ev: 'error'; readonly message: string };

export type WorkerMessage = WorkerRequest & { readonly id: number };

/** Machine-wide monotonic milliseconds (CLOCK_MONOTONIC), comparable across processes. */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
