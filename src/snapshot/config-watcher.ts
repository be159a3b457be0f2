// What the xDS server needs from the store (go-control-plane's ConfigWatcher): a watch per
// proxy, handed that proxy's view now and after every change. Apart from store.ts so that the
// fan-out (fanout.ts) and the store both name it without importing each other.
import type { ProxyIdentity } from '../catalog/model.js';
import type { ProxyView } from './proxy-view.js';

export type ViewListener = (view: ProxyView) => void;

/**
 * A watcher as one object with methods (an xDS stream): what `watch` keeps of it is a pointer,
 * where a listener and an error callback are two closures per proxy (~300 B with the
 * function that stops watching; bench --heap-snapshot, W9).
 */
export interface ViewWatcher {
  takeView(view: ProxyView): void;
  buildFailed?(message: string | undefined): void;
}

/** Stops a watch (and lets the store forget a proxy no other watch is for). */
export interface WatchHandle {
  stop(): void;
}

/** What the xDS server needs from the store. */
export interface ConfigWatcher {
  /**
   * Calls `listener` (or its takeView) with the proxy's current view as soon as one exists
   * (immediately if the store is ready) and again after every change. When the proxy's own
   * resources cannot be built, `listener` is not called (the proxy keeps what it has) and
   * `buildError` (or the watcher's buildFailed) is told why; it is told `undefined` once a
   * build succeeds.
   */
  watch(
    proxy: ProxyIdentity,
    listener: ViewListener | ViewWatcher,
    buildError?: (message: string | undefined) => void,
  ): WatchHandle;
}
