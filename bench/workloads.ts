// Workloads (services × instances × proxies) and the sets `npm run bench` runs.
import { W9_SESSIONS, w9Sessions, type ScalePlanScope } from './scale.js';
import type { WorkloadId } from './types.js';

export interface ChurnPlan {
  /** Endpoint flips per second. */
  readonly rate: number;
  readonly seconds: number;
}

/** W7: a traffic file with a resolver, a router and a splitter on every service. */
export interface TrafficPlan {
  /** Sequential edits of one service-router each, measured as the endpoint flips (0 = none). */
  readonly routerEdits: number;
}

/**
 * One session: a fresh control plane on a generated catalog, K simulated sidecars connecting
 * at once (the storm), memory with 0 and K proxies, then sequential changes and/or churn.
 */
export interface SessionPlan {
  /** Label, e.g. "W2+W5+W6". */
  readonly name: string;
  readonly covers: WorkloadId[];
  readonly services: number;
  readonly instances: number;
  readonly proxies: number;
  /** Sequential endpoint flips, each measured alone (0 = none). */
  readonly changes: number;
  readonly churn: ChurnPlan[];
  /** W7: traffic configuration (bench/traffic.ts) written to a file the control plane watches. */
  readonly traffic?: TrafficPlan;
  /** W10: also measure the model's memory against a control plane on an empty catalog. */
  readonly modelMemory?: boolean;
  /** W9: every service declares this many upstreams and the control plane runs `--scope declared`. */
  readonly scope?: ScalePlanScope;
  /** Load-client workers for this session (default: --workers). */
  readonly workers?: number;
  /** How long the cold storm may take before the session gives up (default 180 s). */
  readonly stormTimeoutMs?: number;
}

export const WORKLOADS: Record<WorkloadId, SessionPlan> = {
  Q: {
    name: 'Q',
    covers: ['Q'],
    services: 30,
    instances: 3,
    proxies: 30,
    changes: 5,
    churn: [{ rate: 10, seconds: 2 }],
  },
  W1: {
    name: 'W1',
    covers: ['W1'],
    services: 100,
    instances: 3,
    proxies: 100,
    changes: 20,
    churn: [],
  },
  W2: {
    name: 'W2',
    covers: ['W2'],
    services: 1000,
    instances: 5,
    proxies: 1000,
    changes: 20,
    churn: [],
  },
  W4: {
    name: 'W4',
    covers: ['W4'],
    services: 50,
    instances: 2000,
    proxies: 200,
    changes: 20,
    churn: [],
  },
  W5: {
    name: 'W5',
    covers: ['W5'],
    services: 1000,
    instances: 5,
    proxies: 1000,
    changes: 0,
    churn: [
      { rate: 10, seconds: 30 },
      { rate: 100, seconds: 30 },
    ],
  },
  W6: {
    name: 'W6',
    covers: ['W6'],
    services: 1000,
    instances: 5,
    proxies: 1000,
    changes: 0,
    churn: [],
  },
  W7: {
    name: 'W7',
    covers: ['W7'],
    services: 1000,
    instances: 5,
    proxies: 1000,
    changes: 20,
    churn: [],
    // Each router edit sends every proxy the whole outbound RouteConfiguration (~350 KB at
    // 1000 services): ~2.5 s per edit at K = 1000, so 10 keep the default set short.
    traffic: { routerEdits: 10 },
  },
  // Issue 16's "W8" (the large catalog: build time and model memory); W8 here is the soak.
  W10: {
    name: 'W10',
    covers: ['W10'],
    services: 10_000,
    instances: 3,
    proxies: 1000,
    changes: 20,
    churn: [{ rate: 10, seconds: 30 }],
    modelMemory: true,
    // Every proxy receives all 10,000 clusters, assignments and virtual hosts (~4.3 MB): 1,000
    // of them took over 180 s on a loaded machine.
    stormTimeoutMs: 600_000,
  },
  // Issue 16's "W7" (10,000 proxies), scoped and unscoped: bench/scale.ts. Only when asked.
  W9: W9_SESSIONS[0]!,
};

/**
 * W2, W5 and W6 share a shape (1000 × 5 × 1000): one session measures all three, in order:
 * the cold storm of 1000 proxies (W6), 20 sequential flips (W2), then churn at 10 and 100
 * flips/s (W5). Saves two control-plane starts and two storms per mode.
 */
export const W2_W5_W6: SessionPlan = {
  name: 'W2+W5+W6',
  covers: ['W6', 'W2', 'W5'],
  services: 1000,
  instances: 5,
  proxies: 1000,
  changes: 20,
  churn: WORKLOADS.W5.churn,
};

export const DEFAULT_SET: SessionPlan[] = [WORKLOADS.W1, WORKLOADS.W4, W2_W5_W6, WORKLOADS.W7];
export const QUICK_SET: SessionPlan[] = [WORKLOADS.Q];

/** Parses "W2", "W2,W4", "W2+W5+W6" (one combined session); W9 is two sessions (bench/scale.ts). */
export function parseWorkloads(text: string): SessionPlan[] {
  return text.split(',').flatMap((part) => {
    const scale = w9Sessions(part);
    if (scale) return scale;
    const ids = part
      .trim()
      .toUpperCase()
      .split('+')
      .map((id) => id.trim());
    for (const id of ids) {
      if (!(id in WORKLOADS)) {
        throw new Error(
          `--workload: expected ${[...Object.keys(WORKLOADS), 'envoy'].join(', ')} (or A+B to share a session), got ${JSON.stringify(id)}`,
        );
      }
    }
    if (ids.length === 1) return WORKLOADS[ids[0] as WorkloadId];
    const plans = ids.map((id) => WORKLOADS[id as WorkloadId]);
    const first = plans[0]!;
    if (
      plans.some(
        (p) =>
          p.services !== first.services ||
          p.instances !== first.instances ||
          p.proxies !== first.proxies,
      )
    ) {
      throw new Error(`--workload ${part}: only workloads of the same shape can share a session`);
    }
    if (plans.some((p) => (p.traffic === undefined) !== (first.traffic === undefined))) {
      throw new Error(
        `--workload ${part}: W7 (traffic configuration) cannot share a session with workloads without it`,
      );
    }
    return {
      name: ids.join('+'),
      covers: plans.flatMap((p) => p.covers),
      services: first.services,
      instances: first.instances,
      proxies: first.proxies,
      changes: Math.max(...plans.map((p) => p.changes)),
      churn: plans.flatMap((p) => p.churn),
      ...(plans.some((p) => p.modelMemory) ? { modelMemory: true } : {}),
      ...(first.traffic
        ? {
            traffic: {
              routerEdits: Math.max(...plans.map((p) => p.traffic?.routerEdits ?? 0)),
            },
          }
        : {}),
    };
  });
}
