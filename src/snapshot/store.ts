// The snapshot store (the cache, in go-control-plane's terms): holds the current state and
// tells watchers when it changes. It knows nothing about streams, nonces or ACKs.
// Here: the debounced build and the serving of each watch. Its parts: the shared resources'
// encode (shared-resources.ts), callers' locality snapshots (locality-snapshots.ts), scoped
// snapshots (scoped-snapshots.ts), proxies' own resources (own-resources.ts), what a patched
// build touched (touched.ts) and the fan-out to the watches (fanout.ts).
import {
  reuseUnchanged,
  sameServices,
  type Catalog,
  type ProxyIdentity,
} from '../catalog/model.js';
import { buildMesh, MeshCache, proxyLocality } from '../mesh/index.js';
import {
  DEFAULT_MESH_SETTINGS,
  type Mesh,
  type MeshProxy,
  type MeshSettings,
} from '../mesh/types.js';
import type { Policy } from '../policy/schema.js';
import { EMPTY_TRAFFIC, type TrafficConfig } from '../traffic/types.js';
import { TranslationCache, translateProxy, translateShared } from '../translate/index.js';
import { TRUST_BUNDLE_SECRET_NAME } from '../translate/names.js';
import type { ResourceSet } from '../translate/types.js';
import type { Logger } from '../telemetry/logger.js';
import type { ConfigWatcher, ViewListener, ViewWatcher, WatchHandle } from './config-watcher.js';
import { Debouncer } from './debouncer.js';
import { ResourceEncoder } from './encoder.js';
import { SlicedPass, Watch, WatchIndex } from './fanout.js';
import { gatewayModeOf, LocalitySnapshots } from './locality-snapshots.js';
import { OwnResources } from './own-resources.js';
import { Placeholders } from './placeholders.js';
import { ProxyView } from './proxy-view.js';
import { vhdsOrigin, vhdsSnapshot } from './vhds.js';
import { ScopedSnapshots } from './scoped-snapshots.js';
import type { SecretProvider } from './secrets.js';
import { SharedResources } from './shared-resources.js';
import { Snapshot } from './snapshot.js';
import { narrowInputs, touchedWatchers, type BuiltInputs } from './touched.js';

export type { ConfigWatcher, ViewListener, ViewWatcher, WatchHandle } from './config-watcher.js';

export interface StoreOptions {
  /** Quiet time after a source change before a new snapshot is built. */
  debounceMs?: number;
  /** Upper bound on how long a change may wait while changes keep arriving. */
  maxDebounceMs?: number;
  /** Mesh-wide settings (serve flags); default DEFAULT_MESH_SETTINGS. */
  settings?: MeshSettings;
  /** SDS secrets (mTLS); without one, no secrets are served. */
  secrets?: SecretProvider;
  logger: Logger;
  /**
   * Builds one proxy's own resources (default: translateProxy). Only tests set it, to make
   * one proxy's build fail and see the others served.
   */
  translateProxy?: (mesh: Mesh, proxy: MeshProxy) => ResourceSet;
}

export const DEFAULT_DEBOUNCE_MS = 100;
export const DEFAULT_MAX_DEBOUNCE_MS = 1000;

export type SnapshotListener = (snapshot: Snapshot, previous: Snapshot | undefined) => void;

export interface StoreCounters {
  snapshotsBuilt: number;
  buildErrors: number;
  /** Builds of one proxy's own resources that failed (that proxy kept its last good view). */
  proxyBuildErrors: number;
  /** Services whose shared resources were translated (not found in the translation cache). */
  servicesTranslated: number;
  /**
   * Scoped snapshots made (per scope and locality group, in the builds that changed what the
   * scope holds; docs/scoping.md).
   */
  scopesBuilt: number;
  /**
   * Watchers the fan-out passes visited. After an endpoint change or an edit of a few
   * services' traffic entries only the watchers whose scope or own resources it touched are
   * visited (touched.ts), not every one.
   */
  watchersVisited: number;
}

/** Entries kept per proxy key (tests check that asking about random nodes leaves none). */
export interface StoreCacheSizes {
  views: number;
  ownResources: number;
  localities: number;
  placeholders: number;
  encoded: number;
  /** `encoded` right after the last build: what grows past it is per-proxy. */
  encodedAtBuild: number;
  failingProxies: number;
}

/** What a proxy's view depends on besides the mesh. */
function keyOf(proxy: ProxyIdentity): string {
  // join() makes one flat string: a template literal leaves a tree of ~10 cons strings
  // (~250 B) in every map keyed by it, per proxy (bench --heap-snapshot, W9).
  return [
    proxy.nodeId,
    proxy.service,
    proxy.outboundPort,
    JSON.stringify(proxy.locality ?? null),
    proxy.dnsPort ?? 0,
    proxy.exclusivePorts ? 1 : 0,
    proxy.dnsForward === false ? 0 : 1,
    proxy.vhds ? 1 : 0,
  ].join('\u0000');
}

export interface BuildTimings {
  readonly startedAt: number;
  /** The catalog matched against the last one (unchanged parts keep their objects). */
  readonly comparedAt: number;
  readonly meshBuiltAt: number;
  readonly translatedAt: number;
  /** Encoded and versioned: the snapshot's builtAt, more precisely. */
  readonly encodedAt: number;
}

const preciseNow = (): number => performance.timeOrigin + performance.now();

export class SnapshotStore implements ConfigWatcher {
  readonly encoder = new ResourceEncoder();
  readonly counters: StoreCounters = {
    snapshotsBuilt: 0,
    buildErrors: 0,
    proxyBuildErrors: 0,
    servicesTranslated: 0,
    scopesBuilt: 0,
    watchersVisited: 0,
  };
  /**
   * When the phases of the last successful build ended (ms epoch, sub-ms precision), for the
   * control plane's own traces: read it in an onSnapshot listener.
   */
  lastBuild: BuildTimings | undefined;
  private current: Snapshot | undefined;
  private pending: Catalog | undefined;
  /** Bumped when something besides the catalog changes the output (secrets, policy). */
  private inputsGeneration = 0;
  /** Bumped when traffic or policy change (they reach proxies through the mesh only). */
  private meshGeneration = 0;
  private builtMeshGeneration = -1;
  private builtInputsGeneration = -1;
  /** What the last build was made from besides the catalog (touched.ts narrowInputs). */
  private builtFrom: BuiltInputs | undefined;
  /** The watches, by what a change can touch of them (fanout.ts). */
  private readonly watches = new WatchIndex();
  /** The fan-out pass (a newer one also visits what a running one had left). */
  private readonly fanout = new SlicedPass<Watch>(
    () => this.watches.all,
    (w) => {
      if (!this.watches.has(w)) return; // stopped since the pass began
      this.counters.watchersVisited++;
      this.serve(w);
    },
  );
  /** Watches per proxy key: a key's cached view and resources go when its last watch does. */
  private readonly watchedKeys = new Map<string, number>();
  /** Keys of watched proxies whose last build failed → the error (logged once per episode). */
  private readonly failing = new Map<string, string>();
  /** Empty stand-ins for EDS names nothing has. */
  private readonly placeholders = new Placeholders();
  private readonly views = new Map<string, ProxyView>();
  /** Proxies' own resources, cached per proxy key. */
  private readonly own: OwnResources;
  private readonly meshCache = new MeshCache();
  private readonly translationCache = new TranslationCache();
  /** Snapshots of callers elsewhere (failover backends' endpoints as their locality sees them). */
  private readonly localities = new LocalitySnapshots(this.encoder);
  /** Scoped snapshots, kept from build to build while their scope is unchanged. */
  private readonly scoped = new ScopedSnapshots(
    this.encoder,
    this.translationCache,
    this.counters,
    (base) => (base === this.current ? '' : this.localities.groupOf(base)),
  );
  /** The shared resources of each build, encoded (patched after an endpoint change). */
  private readonly shared = new SharedResources(this.encoder, this.translationCache);
  private catalog: Catalog | undefined;
  private traffic: TrafficConfig = EMPTY_TRAFFIC;
  private policy: Policy | undefined;
  private settings: MeshSettings;
  private readonly debouncer: Debouncer;
  private readonly secrets: SecretProvider | undefined;
  private readonly logger: Logger;
  private readonly snapshotListeners = new Set<SnapshotListener>();
  private readonly notifiedListeners = new Set<(snapshot: Snapshot) => void>();

  constructor(options: StoreOptions) {
    this.logger = options.logger;
    this.settings = options.settings ?? DEFAULT_MESH_SETTINGS;
    this.secrets = options.secrets;
    this.own = new OwnResources(
      this.encoder,
      this.secrets,
      options.translateProxy ?? translateProxy,
      this.watchedKeys,
    );
    this.secrets?.onChange(() => this.refresh());
    this.debouncer = new Debouncer(
      options.debounceMs ?? DEFAULT_DEBOUNCE_MS,
      options.maxDebounceMs ?? DEFAULT_MAX_DEBOUNCE_MS,
      (firstPendingAt) => this.build(firstPendingAt),
    );
  }

  /** True once the first complete catalog has produced a snapshot. */
  get ready(): boolean {
    return this.current !== undefined;
  }

  get snapshot(): Snapshot | undefined {
    return this.current;
  }

  get watcherCount(): number {
    return this.watches.size;
  }

  /**
   * Offers a complete catalog from the source. The first one is applied at once (nothing is
   * served before it); later ones are debounced. A catalog equal to the current is ignored.
   */
  setCatalog(catalog: Catalog): void {
    this.pending = catalog;
    if (!this.current) this.build(Date.now());
    else this.debouncer.trigger();
  }

  /** New mesh-wide settings (e.g. mTLS identity): rebuilds the mesh. */
  setSettings(settings: MeshSettings): void {
    this.settings = settings;
    this.refresh();
  }

  /** A new authorization policy (or none): rebuilds the mesh. */
  setPolicy(policy: Policy | undefined): void {
    this.policy = policy;
    this.meshInputsChanged();
  }

  /** A new traffic configuration (config entries): rebuilds the mesh. */
  setTraffic(traffic: TrafficConfig): void {
    this.traffic = traffic;
    this.meshInputsChanged();
  }

  /**
   * Traffic or policy changed: rebuild the mesh. Unlike refresh(), proxies' own resources stay
   * cached where their part of the mesh is unchanged (the MeshProxy content is their key): a
   * router edit does not re-translate a thousand proxies' listeners.
   */
  private meshInputsChanged(): void {
    this.meshGeneration++;
    if (this.current) this.debouncer.trigger();
  }

  /** The mesh model of the current snapshot. */
  get mesh(): Mesh | undefined {
    return this.current?.mesh;
  }

  /** Rebuilds from the current catalog because other inputs changed (secrets, settings). */
  refresh(): void {
    this.inputsGeneration++;
    if (this.current) this.debouncer.trigger();
  }

  /** Applies a pending change now (tests, shutdown). */
  flush(): void {
    this.debouncer.flush();
  }

  close(): void {
    this.debouncer.cancel();
    this.watches.clear();
    this.own.close();
    this.watchedKeys.clear();
    this.failing.clear();
  }

  /** How many entries the store's caches hold (tests: bounded, not grown by requests). */
  cacheSizes(): StoreCacheSizes {
    return {
      views: this.views.size,
      ownResources: this.own.size,
      localities: this.localities.size,
      placeholders: this.placeholders.size,
      encoded: this.encoder.size,
      encodedAtBuild: this.own.encoderBaseline,
      failingProxies: this.failing.size,
    };
  }

  /** Called once every watcher has been handed its view of `snapshot` (the fan-out is issued). */
  onNotified(listener: (snapshot: Snapshot) => void): () => void {
    this.notifiedListeners.add(listener);
    return () => this.notifiedListeners.delete(listener);
  }

  /** Called after each new snapshot, before watchers are told (with the one it replaced). */
  onSnapshot(listener: SnapshotListener): () => void {
    this.snapshotListeners.add(listener);
    return () => this.snapshotListeners.delete(listener);
  }

  watch(
    proxy: ProxyIdentity,
    listener: ViewListener | ViewWatcher,
    buildError?: (message: string | undefined) => void,
  ): WatchHandle {
    const key = keyOf(proxy);
    const w = new Watch(proxy, key, listener, buildError, this.release);
    this.watches.add(w);
    this.watchedKeys.set(key, (this.watchedKeys.get(key) ?? 0) + 1);
    if (this.current) this.serve(w);
    return w;
  }

  /** Ends a watch (Watch.stop): one function for every watch, not a closure per proxy. */
  private readonly release = (w: Watch): void => {
    if (!this.watches.delete(w)) return;
    const key = w.key;
    const left = (this.watchedKeys.get(key) ?? 1) - 1;
    if (left > 0) {
      this.watchedKeys.set(key, left);
      return;
    }
    // Nothing of a departed proxy stays behind until the next build: node ids are the
    // client's to choose, and a client reconnecting under new ones must not grow the store.
    this.watchedKeys.delete(key);
    this.views.delete(key);
    this.own.forget(key);
    this.failing.delete(key);
  };

  /**
   * Hands a watcher its view. A proxy whose own resources fail to build keeps what it has
   * (its stream holds its last good view; with none, it is not served yet): one proxy's
   * problem must not hold back the others, nor replace its good config with a broken one.
   */
  private serve(w: Watch): void {
    let view: ProxyView;
    try {
      view = this.viewFor(w.proxy, w.key);
    } catch (err) {
      this.counters.proxyBuildErrors++;
      const message = (err as Error).message ?? String(err);
      if (!this.failing.has(w.key)) {
        // Once per node and episode: the same failure on every rebuild is not news.
        this.logger.error(
          { err, node: w.proxy.nodeId, service: w.proxy.service },
          "building a proxy's resources failed; it keeps its last good configuration",
        );
      }
      this.failing.set(w.key, message);
      w.failing = true;
      this.watches.stray(w);
      w.buildError(message);
      return;
    }
    if (this.failing.delete(w.key)) {
      this.logger.info({ node: w.proxy.nodeId }, "a proxy's resources build again");
    }
    if (w.failing) {
      w.failing = false;
      w.buildError(undefined);
    }
    this.watches.served(w, this.current!.mesh);
    if (view === w.view) return; // it has this one already
    w.view = view;
    try {
      w.take(view);
    } catch (err) {
      // A watcher's own failure (its stream reports it) must not end the pass for the rest.
      this.logger.error({ err, node: w.proxy.nodeId }, 'a watcher failed to take its view');
    }
  }

  /**
   * The view of one proxy in the current snapshot (throws before the first snapshot). A
   * watcher passes its key, so the store's maps share one string per proxy.
   */
  viewFor(proxy: ProxyIdentity, key = keyOf(proxy)): ProxyView {
    const current = this.current;
    if (!current) throw new Error('no snapshot yet');
    const snapshot = this.served(this.scoped.of(this.localitySnapshot(proxy, true), proxy), proxy);
    const own = this.own.of(key, proxy, current.mesh, this.inputsGeneration);
    let view = this.views.get(key);
    // Same scoped snapshot and own resources: the same view, and its watchers are sent nothing.
    if (!view || !view.madeOf(snapshot, own)) {
      view = new ProxyView(snapshot, own, this.placeholders.of, this.buildOf);
      // Kept for watched proxies only: others (operator dumps, tests) ask with any node.
      if (this.watchedKeys.has(key)) this.views.set(key, view);
    }
    return view;
  }

  /**
   * What `proxy` would be served from the current snapshot, built without keeping anything:
   * no view, no own resources, no encoder entry, no locality snapshot. For operator dumps of
   * nodes that are not connected, whose names are the caller's to choose.
   */
  previewFor(proxy: ProxyIdentity): ProxyView {
    const current = this.current;
    if (!current) throw new Error('no snapshot yet');
    const snapshot = this.served(this.scoped.of(this.localitySnapshot(proxy, false), proxy), proxy);
    const own = this.own.preview(proxy, current.mesh);
    return new ProxyView(snapshot, own, this.placeholders.peek, this.buildOf);
  }

  /** A scope's snapshot as `proxy` is served it: in VHDS form when its bootstrap asks so. */
  private served(snapshot: Snapshot, proxy: ProxyIdentity): Snapshot {
    return proxy.vhds ? vhdsSnapshot(snapshot) : snapshot;
  }

  /** The build a view's snapshot belongs to (a VHDS one: that of the scope's it was made of). */
  private readonly buildOf = (snapshot: Snapshot): Snapshot =>
    this.scoped.buildOf(vhdsOrigin(snapshot));

  /** The current snapshot as callers where `proxy` is see it (see LocalitySnapshots). */
  private localitySnapshot(proxy: ProxyIdentity, keep: boolean): Snapshot {
    const current = this.current!;
    const mesh = current.mesh;
    return this.localities.of(
      current,
      proxyLocality(mesh, proxy),
      gatewayModeOf(mesh, proxy),
      keep,
    );
  }

  private build(changedAt: number): void {
    const offered = this.pending ?? this.catalog;
    this.pending = undefined;
    if (!offered) return;
    // Timed from here: matching the new catalog against the last one is part of the build.
    const started = Date.now();
    const startedAt = preciseNow();
    const catalog = reuseUnchanged(this.catalog, offered);
    const sameInputs =
      this.builtInputsGeneration === this.inputsGeneration &&
      this.builtMeshGeneration === this.meshGeneration;
    if (this.current && sameInputs && this.catalog && sameServices(this.catalog, catalog)) return;
    const comparedAt = preciseNow();
    let snapshot: Snapshot;
    try {
      const mesh = buildMesh(
        { catalog, traffic: this.traffic, policy: this.policy, settings: this.settings },
        this.meshCache,
      );
      const meshBuiltAt = preciseNow();
      const set = translateShared(mesh, this.translationCache);
      this.counters.servicesTranslated += this.translationCache.translated;
      if (this.secrets) set.secrets.set(TRUST_BUNDLE_SECRET_NAME, this.secrets.trustBundle());
      const translatedAt = preciseNow();
      const shared = this.shared.encode(set);
      this.own.built();
      snapshot = new Snapshot(Snapshot.versionOf(shared), mesh, shared, changedAt, Date.now());
      this.lastBuild = {
        startedAt,
        comparedAt,
        meshBuiltAt,
        translatedAt,
        encodedAt: preciseNow(),
      };
      this.catalog = catalog;
    } catch (err) {
      // A translator or encoding failure must never replace a good snapshot with a broken one.
      // The next build starts afresh (nothing patched onto what this one left half done).
      this.translationCache.last = undefined;
      this.shared.forget();
      this.counters.buildErrors++;
      this.logger.error({ err }, 'snapshot build failed; keeping the previous snapshot');
      return;
    }
    const previous = this.current;
    // No secret, setting, policy or mesh-wide traffic change since the last build: the
    // fan-out may visit only what the mesh shows changed.
    const from = { generation: this.inputsGeneration, traffic: this.traffic, policy: this.policy };
    const narrow = narrowInputs(this.builtFrom, from);
    this.builtFrom = from;
    this.current = snapshot;
    this.localities.clear();
    this.builtInputsGeneration = this.inputsGeneration;
    this.builtMeshGeneration = this.meshGeneration;
    // Views and scoped snapshots stay: viewFor keeps each one whose parts did not change.
    this.scoped.nextBuild();
    this.counters.snapshotsBuilt++;
    this.logger.info(
      { version: snapshot.version, previous: previous?.version, buildMs: Date.now() - started },
      'snapshot built',
    );
    for (const listener of this.snapshotListeners) listener(snapshot, previous);
    const visit =
      previous && narrow
        ? touchedWatchers(
            previous,
            snapshot,
            this.shared.changes,
            this.translationCache,
            this.watches,
            this.scoped,
          )
        : undefined;
    this.notifyWatchers(snapshot, visit);
  }

  /** Hands the watchers in `visit` (undefined: every one) their view of `snapshot`. */
  private notifyWatchers(snapshot: Snapshot, visit?: readonly Watch[]): void {
    this.fanout.start(visit, () => {
      this.own.sweep();
      for (const listener of this.notifiedListeners) listener(snapshot);
    });
  }
}
