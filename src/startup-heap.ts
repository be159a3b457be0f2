// Keeps V8's young generation small while the process starts.
//
// Startup (loading the module graph, parsing the Envoy descriptor, the first catalog and
// snapshot) allocates mostly objects that live for the whole process. Every scavenge then
// sees a high survival rate and V8 doubles the semi-spaces up to their maximum (16 MiB each on
// 64-bit): ~28 MiB of RSS that an idle control plane never gives back, although nothing lives
// there. Holding the growth factor at 1 until the first proxy connects keeps that memory
// unallocated (the first snapshot is not enough: serving the admin port after it grew the
// young generation again, measured); once proxies connect and the garbage-heavy work of
// pushing starts, the young generation grows as V8 sees fit (the factor is restored to V8's
// default). Imported first by the CLI entry and by app.ts, so the hold covers the module graph.
//
// TurboFan is held off for the same span (`--no-turbofan`, restored at the first stream): the
// code that runs hot while starting (descriptor, catalog, first snapshot) never runs again, yet
// its optimized code and the compiler's memory stayed resident (idle RSS ~10 MiB higher; bench
// --workload idle). Sparkplug, V8's baseline compiler, is held off with it (`--no-sparkplug`):
// V8 never flushes baseline code by default, so what start-up compiled stayed for good, and the
// compiler's own pages of the node binary were touched (idle RSS −1.3 to −2.3 MiB with the
// example catalog, 2026-12-01). And bytecode not run since the last full collection is flushed
// at the next one (`--bytecode-old-age=1`, V8's default 5, restored at the first stream): what
// only start-up ran (flag parsing, the descriptor's skeleton, schema building) leaves the heap at
// the collections V8's memory reducer makes once the process idles (heap used −1.4 MiB; RSS
// less, V8 keeps the pages); a flushed function is compiled again if it runs again. Not `--max-opt=0` (a305463, withdrawn):
// a function first run under it is never optimized after V8's default is restored, and the W9
// storm's CPU doubled. LUCID_STARTUP_JIT=off turns these holds off.
//
// At the first stream the old generation is also let grow to twice what the last full
// collection kept before the next one (`--heap-growing-percent=100`; Go's default, GOGC=100).
// V8's own factor, worked out from its GC and allocation speeds, came to ~1.5 under a fan-out:
// at W2 (1,000 proxies, ~42 MiB live) that left less headroom than the young generation's
// capacity, so V8 started incremental marking straight after each full collection, and every
// endpoint change paid a full mark-compact (11 in 22 changes, ~43 ms of marking a change; with
// the setting: none, scavenges only, control-plane CPU a change 90 → 63 ms). Not from the start:
// start-up's garbage would then stay resident at idle. LUCID_HEAP_GROWING_PERCENT sets another
// percentage; 0 leaves V8's own factor.
import { setFlagsFromString } from 'node:v8';
import type { XdsObserver } from './xds/observer.js';

/** V8's default (src/flags/flag-definitions.h, `semi_space_growth_factor`). */
const V8_DEFAULT_GROWTH_FACTOR = 2;

/** The compiler holds: each flag set at start-up, and what restores V8's default. */
const COMPILER_HOLDS: ReadonlyArray<readonly [hold: string, release: string]> = [
  ['--no-turbofan', '--turbofan'],
  ['--no-sparkplug', '--sparkplug'],
  ['--bytecode-old-age=1', '--bytecode-old-age=5'],
];

let held = false;
let compilersHeld = false;

/** Ends the start-up holds (idempotent), and sets the old generation's growth for load. */
export function releaseStartupHolds(): void {
  releaseYoungGeneration();
  releaseCompilers();
  growOldGenerationForLoad();
}

/** The old generation's growth between full collections under load, in percent (see above). */
export const DEFAULT_HEAP_GROWING_PERCENT = 100;

let growthSet = false;

/**
 * Sets `--heap-growing-percent` once (LUCID_HEAP_GROWING_PERCENT, default 100; 0 leaves V8's
 * own; a value node was given on its command line or in NODE_OPTIONS is left alone).
 */
export function growOldGenerationForLoad(): void {
  if (growthSet) return;
  growthSet = true;
  const given = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' ');
  if (/heap[-_]growing[-_]percent/.test(given)) return;
  const percent = heapGrowingPercent(process.env.LUCID_HEAP_GROWING_PERCENT);
  if (percent > 0) setFlagsFromString(`--heap-growing-percent=${percent}`);
}

/** LUCID_HEAP_GROWING_PERCENT as a percentage; unset or not a whole number 0–1000: the default. */
export function heapGrowingPercent(value: string | undefined): number {
  if (value === undefined || !/^\d{1,4}$/.test(value.trim())) return DEFAULT_HEAP_GROWING_PERCENT;
  const n = Number(value.trim());
  return n <= 1000 ? n : DEFAULT_HEAP_GROWING_PERCENT;
}

/**
 * Keeps start-up off TurboFan and Sparkplug and lets its bytecode go early (no-op with
 * LUCID_STARTUP_JIT=off or a compiler flag of the user's). Unlike `--max-opt`, `--turbofan` and
 * `--sparkplug` are read at each tiering decision, so code first run under the hold is compiled
 * and optimized once hot after it (test/cli/startup-optimizes.test.ts).
 */
export function holdCompilers(): void {
  if (compilersHeld || process.env.LUCID_STARTUP_JIT === 'off') return;
  const given = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' ');
  if (/turbofan|sparkplug|max-opt|bytecode-old-age|--(no-)?opt\b/.test(given)) return;
  for (const [hold] of COMPILER_HOLDS) setFlagsFromString(hold);
  compilersHeld = true;
}

/** Lets TurboFan and Sparkplug compile again and bytecode age as V8 does (idempotent). */
export function releaseCompilers(): void {
  if (!compilersHeld) return;
  for (const [, release] of COMPILER_HOLDS) setFlagsFromString(release);
  compilersHeld = false;
}

/** Stops the young generation from growing (idempotent; no-op when LUCID_STARTUP_HEAP=off). */
export function holdYoungGeneration(): void {
  if (held || process.env.LUCID_STARTUP_HEAP === 'off') return;
  setFlagsFromString('--semi-space-growth-factor=1');
  held = true;
}

/** Lets the young generation grow again (idempotent). */
export function releaseYoungGeneration(): void {
  if (!held) return;
  setFlagsFromString(`--semi-space-growth-factor=${V8_DEFAULT_GROWTH_FACTOR}`);
  held = false;
}

const ignore = (): void => undefined;

/** An xDS observer that ends the holds when the first stream opens. */
export const releaseOnFirstStream: XdsObserver = {
  streamOpened: releaseStartupHolds,
  streamClosed: ignore,
  responseSent: ignore,
  acked: ignore,
  nacked: ignore,
  staleNonce: ignore,
  badRequest: ignore,
  authFailed: ignore,
  throttled: ignore,
  streamRefused: ignore,
};

holdYoungGeneration();
holdCompilers();
