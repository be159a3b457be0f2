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
// The optimizing compilers (Maglev, TurboFan) are held off for the same span: what runs hot
// while starting (parsing the descriptor, the catalog, the first snapshot) never runs again,
// yet its optimized code, feedback and the compilers' own memory stayed resident: idle RSS
// ~15–20 MiB higher (bench --workload idle). Start-up runs in V8's interpreter; the first
// stream lifts the hold and hot serving code is optimized as usual from then on.
// LUCID_STARTUP_JIT=off turns this hold off.
import { setFlagsFromString } from 'node:v8';
import type { XdsObserver } from './xds/observer.js';

/** V8's default (src/flags/flag-definitions.h, `semi_space_growth_factor`). */
const V8_DEFAULT_GROWTH_FACTOR = 2;

let held = false;
let jitHeld = false;

/** V8's default `--max-opt` (any tier); 0 = the interpreter only. */
const V8_DEFAULT_MAX_OPT = 999;

/** Keeps start-up in the interpreter (no-op with LUCID_STARTUP_JIT=off or a --max-opt of the user's). */
export function holdOptimizingCompilers(): void {
  if (jitHeld || process.env.LUCID_STARTUP_JIT === 'off') return;
  if ([...process.execArgv, process.env.NODE_OPTIONS ?? ''].some((a) => a.includes('max-opt')))
    return;
  setFlagsFromString('--max-opt=0');
  jitHeld = true;
}

/** Lets V8 optimize again (idempotent). */
export function releaseOptimizingCompilers(): void {
  if (!jitHeld) return;
  setFlagsFromString(`--max-opt=${V8_DEFAULT_MAX_OPT}`);
  jitHeld = false;
}

/** Ends both start-up holds (idempotent). */
export function releaseStartupHolds(): void {
  releaseYoungGeneration();
  releaseOptimizingCompilers();
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
holdOptimizingCompilers();
