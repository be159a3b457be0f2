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
// The optimizing compilers are NOT held off the same way (`--max-opt=0` until the first
// stream was tried, a305463: idle RSS −15 MiB): a function first run while `--max-opt=0` holds
// is never optimized after V8's default is restored (a hot loop stayed 18× slower), so every
// encoder and builder the first snapshot touches ran interpreted for good and the W9 storm's
// CPU doubled (12.9 → 25.6 s).
import { setFlagsFromString } from 'node:v8';
import type { XdsObserver } from './xds/observer.js';

/** V8's default (src/flags/flag-definitions.h, `semi_space_growth_factor`). */
const V8_DEFAULT_GROWTH_FACTOR = 2;

let held = false;
/** Ends the start-up hold (idempotent). */
export function releaseStartupHolds(): void {
  releaseYoungGeneration();
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
