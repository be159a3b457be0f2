// W9: issue 16's "W7" (the bench's W7 and W8 were taken): 1,000 services × 10 instances ×
// 10,000 proxies on one control plane, run twice: scope `all` (every sidecar gets the whole
// mesh) and `declared` (every service declares 10 upstreams, `serve --scope declared`).
// Only with `--workload W9` (or W9:declared / W9:all): a session takes minutes.
import type { ServiceDoc } from './catalog.js';
import type { ProxySpec } from './load/protocol.js';
import type { SessionPlan } from './workloads.js';

/** A session whose sidecars receive only their service's declared upstreams. */
export interface ScalePlanScope {
  readonly upstreams: number;
}

const SHAPE = { services: 1000, instances: 10, proxies: 10_000 } as const;

const w9 = (name: string, scope?: ScalePlanScope): SessionPlan => ({
  name,
  covers: ['W9'],
  ...SHAPE,
  changes: 20,
  // 10/s for 20 s: each flip reaches every proxy unscoped (10,000 responses per flip).
  churn: [{ rate: 10, seconds: 20 }],
  ...(scope ? { scope } : {}),
  // 2,500 streams per worker: the client's busiest worker stays under a core in the storm.
  workers: 4,
  // Unscoped, each proxy is sent the whole mesh (~0.5 MB): ~5 GB for the storm.
  stormTimeoutMs: scope ? 120_000 : 600_000,
});

/** Scoped first: it is the one with targets; the unscoped one may run into limits. */
export const W9_SESSIONS: SessionPlan[] = [w9('W9 declared', { upstreams: 10 }), w9('W9 all')];

/**
 * The issue's "W2 storm (W6) ≤ 2 s with scoping": W2's catalog and proxies (1,000 × 5 × 1,000),
 * every service declaring 10 upstreams, `serve --scope declared`. Storm, memory, 20 flips (each
 * reaches the 10 proxies whose service declares it) and churn at 10/s for 20 s, as W9 declared.
 */
export const W6_DECLARED: SessionPlan = {
  name: 'W6 declared',
  covers: ['W6'],
  services: 1000,
  instances: 5,
  proxies: 1000,
  changes: 20,
  churn: [{ rate: 10, seconds: 20 }],
  scope: { upstreams: 10 },
};

/** A session run with `--scope declared` (its name says so: "W9 declared", "W6 declared"). */
export const isScoped = (s: { readonly plan: string }): boolean => s.plan.includes('declared');

/**
 * `W9` → both sessions; `W9:declared` / `W9:all` → one; `W6:declared` → W6_DECLARED; anything
 * else → undefined.
 */
export function w9Sessions(part: string): SessionPlan[] | undefined {
  const p = part.trim().toLowerCase();
  if (p === 'w9') return W9_SESSIONS;
  if (p === 'w9:declared') return [W9_SESSIONS[0]!];
  if (p === 'w9:all') return [W9_SESSIONS[1]!];
  if (p === 'w6:declared') return [W6_DECLARED];
  return undefined;
}

/** Service s declares the next `n` services (wrapping): every service has a scope of its own. */
export function declareUpstreams(services: ServiceDoc[], n: number): void {
  services.forEach((s, i) => {
    s.upstreams = Array.from(
      { length: Math.min(n, services.length - 1) },
      (_, k) => services[(i + 1 + k) % services.length]!.name,
    );
  });
}

/**
 * Which proxies should receive a change to `service`: those whose service declares it (every
 * proxy when unscoped). `audience` is undefined when that is every proxy.
 */
export function audienceOf(
  services: readonly ServiceDoc[],
  proxies: readonly ProxySpec[],
  service: string,
): { audience?: string[]; expected: number } {
  if (!services.some((s) => s.upstreams)) return { expected: proxies.length };
  const audience = services.filter((s) => s.upstreams?.includes(service)).map((s) => s.name);
  const set = new Set(audience);
  return { audience, expected: proxies.filter((p) => set.has(p.service)).length };
}

/**
 * Scoped agreement: per service, every one of its proxies holds the same content for every
 * type (`digests` keyed "<service>|<count>:<hash>"), with the expected resource counts.
 */
export function scopedAgreement(
  digests: Record<string, { digests?: Record<string, number> } | undefined>,
  expectedCounts: Record<string, number>,
  proxies: readonly ProxySpec[],
): { flat: Record<string, Record<string, number>>; agree: boolean; countsMatch: boolean } {
  const groupSize = new Map<string, number>();
  for (const p of proxies) groupSize.set(p.service, (groupSize.get(p.service) ?? 0) + 1);
  const flat: Record<string, Record<string, number>> = {};
  let agree = true;
  let countsMatch = true;
  for (const kind of Object.keys(expectedCounts)) {
    const d = digests[kind]?.digests ?? {};
    const perService = new Map<string, number>();
    // Summarised as "<count>:<proxies per digest>" → digests, so the run file stays small.
    const summary: Record<string, number> = {};
    for (const [key, n] of Object.entries(d)) {
      const bar = key.indexOf('|');
      const service = key.slice(0, bar);
      const digest = key.slice(bar + 1);
      perService.set(service, (perService.get(service) ?? 0) + 1);
      if (n !== groupSize.get(service)) agree = false;
      if (Number(digest.split(':')[0]) !== expectedCounts[kind]) countsMatch = false;
      const label = `${digest.split(':')[0]}:×${n}`;
      summary[label] = (summary[label] ?? 0) + 1;
    }
    for (const service of groupSize.keys()) if (perService.get(service) !== 1) agree = false;
    flat[kind] = summary;
  }
  return { flat, agree, countsMatch };
}
