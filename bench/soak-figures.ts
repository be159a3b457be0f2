// Figures of a soak run that hold under a loaded machine. On a busy 2-core VM the control plane
// falls behind and counts a few hundred of the 1,000 streams at times; its heap and RSS follow
// that count, so a slope over all samples measures the load as much as the control plane. The
// samples taken with (nearly) every proxy connected compare like with like.
import { round } from './stats.js';
import type { SoakSample } from './types.js';

/** Least-squares slope of y (bytes) over t (seconds), in KiB per minute. */
export function slopeKiBPerMin(points: ReadonlyArray<readonly [number, number]>): number {
  const n = points.length;
  if (n < 2) return NaN;
  const mt = points.reduce((a, [t]) => a + t, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [t, y] of points) {
    num += (t - mt) * (y - my);
    den += (t - mt) ** 2;
  }
  return den === 0 ? NaN : round(((num / den) * 60) / 1024, 1);
}

/** Samples count as "full" with at least this share of the proxies connected. */
export const FULL_SHARE = 0.95;

export interface FullConnectionFigures {
  /** Samples after the warm-up with ≥ FULL_SHARE of the proxies connected. */
  readonly samples: number;
  readonly first?: { readonly t: number; readonly heapUsed: number; readonly rss: number };
  readonly last?: { readonly t: number; readonly heapUsed: number; readonly rss: number };
  readonly heapSlopeKiBPerMin: number;
  readonly rssSlopeKiBPerMin: number;
}

export function fullConnectionFigures(
  samples: readonly SoakSample[],
  proxies: number,
  warmupSeconds: number,
): FullConnectionFigures {
  const full = samples.filter((s) => s.t >= warmupSeconds && s.connected >= FULL_SHARE * proxies);
  const at = (s: SoakSample | undefined) => s && { t: s.t, heapUsed: s.heapUsed, rss: s.rss };
  return {
    samples: full.length,
    ...(full.length ? { first: at(full[0]), last: at(full[full.length - 1]) } : {}),
    heapSlopeKiBPerMin: slopeKiBPerMin(full.map((s) => [s.t, s.heapUsed] as const)),
    rssSlopeKiBPerMin: slopeKiBPerMin(full.map((s) => [s.t, s.rss] as const)),
  };
}

/** The machine's 1-minute load average over the samples that recorded it. */
export function loadFigures(
  samples: readonly SoakSample[],
): { readonly mean: number; readonly max: number } | undefined {
  const loads = samples.flatMap((s) => (s.load1 === undefined ? [] : [s.load1]));
  if (loads.length === 0) return undefined;
  return {
    mean: Math.round((loads.reduce((a, b) => a + b, 0) / loads.length) * 10) / 10,
    max: Math.round(Math.max(...loads) * 10) / 10,
  };
}

/** The lowest count of connected streams the control plane reported during the soak. */
export function minConnected(samples: readonly SoakSample[]): number {
  return Math.min(...samples.map((s) => s.connected));
}
