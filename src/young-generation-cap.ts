// Caps V8's young generation once proxies are served (after the start-up hold, startup-heap.ts).
//
// Under load V8 doubles the semi-spaces up to 16 MiB each (32 MiB of new space on 64-bit) and
// keeps them: the pages stay resident even after V8's memory reducer shrinks the space (it
// pools them; bench/diag/http2-session-memory.mjs). In the W9 storm (10,000 sidecars) that was
// ~3 KB of RSS per proxy for nothing that lives. `--max-semi-space-size` can only be given on
// the command line, but V8 reads `--semi-space-growth-factor` each time it grows the space, so
// after every GC the factor is set to 1 once the new space has reached the cap (2 below it).
// LUCID_YOUNG_GEN_MIB sets the cap (MiB of new space); `off` leaves V8's own growth.
import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';

/** MiB of new space (two semi-spaces); measured in W9, see docs/benchmarks.md. */
export const DEFAULT_YOUNG_GEN_MIB = 8;

/** V8's default (src/flags/flag-definitions.h, `semi_space_growth_factor`). */
export const V8_DEFAULT_GROWTH_FACTOR = 2;

let observer: PerformanceObserver | undefined;
/** The installed cap's check (after every GC, and at every new stream: see capYoungGeneration). */
let check: (() => void) | undefined;
/** Set by `serve --young-gen-mib` before the first stream; else read from the environment. */
let configured: { bytes: number | undefined } | undefined;

/** A cap's value: MiB of new space, or `off` (undefined); throws naming `what` when bad. */
export function parseYoungGenMib(raw: string, what = 'LUCID_YOUNG_GEN_MIB'): number | undefined {
  const value = raw.trim();
  if (value === 'off') return undefined;
  const mib = Number(value);
  if (value === '' || !Number.isInteger(mib) || mib < 2 || mib > 1024) {
    throw new Error(
      `${what}: expected an integer from 2 to 1024 (MiB of V8 new space) or "off", got ${JSON.stringify(raw)}`,
    );
  }
  return mib * 2 ** 20;
}

/** The cap in bytes from LUCID_YOUNG_GEN_MIB (default 8 MiB), or undefined for `off`. */
export function youngGenerationCap(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env.LUCID_YOUNG_GEN_MIB;
  return raw === undefined || raw.trim() === ''
    ? DEFAULT_YOUNG_GEN_MIB * 2 ** 20
    : parseYoungGenMib(raw);
}

/** What the cap will be once serving starts (`serve --young-gen-mib`). */
export function configureYoungGenerationCap(bytes: number | undefined): void {
  configured = { bytes };
}

function newSpaceBytes(): number {
  for (const space of getHeapSpaceStatistics()) {
    if (space.space_name === 'new_space') return space.space_size;
  }
  return 0;
}

/**
 * Starts holding the new space at `maxBytes`; once started, checks it again (the first call's
 * cap stays). GC observers are called between event-loop turns, and a storm's turn can hold
 * several scavenges (W9: 32 MiB with an 8 MiB cap), so every new xDS stream checks too
 * (`releaseOnFirstStream`; ~0.6 µs).
 */
export function capYoungGeneration(maxBytes?: number): void {
  if (check) {
    check();
    return;
  }
  if (maxBytes === undefined) {
    try {
      maxBytes = configured ? configured.bytes : youngGenerationCap();
    } catch {
      return; // serve refuses a bad LUCID_YOUNG_GEN_MIB before any stream; others run uncapped
    }
    if (maxBytes === undefined) return;
  }
  const cap = maxBytes;
  let factor = V8_DEFAULT_GROWTH_FACTOR;
  const checkNow = (): void => {
    // Growing doubles the space: allowed only while the result stays within the cap.
    const next = newSpaceBytes() * V8_DEFAULT_GROWTH_FACTOR > cap ? 1 : V8_DEFAULT_GROWTH_FACTOR;
    if (next === factor) return;
    setFlagsFromString(`--semi-space-growth-factor=${next}`);
    factor = next;
  };
  check = checkNow;
  observer = new PerformanceObserver(checkNow);
  observer.observe({ entryTypes: ['gc'] });
  checkNow();
}
