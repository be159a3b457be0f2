// The composition root: source → snapshot store → xDS server, plus the admin server and, when
// configured, the mesh's security (CA-issued certificates over SDS, token-authenticated
// streams, authorization policy). Used by `lucid-mesh serve`, the demo and the end-to-end
// tests, so they all run the same thing.
import { releaseOnFirstStream } from './startup-heap.js';
import { warmCodecsAfterFirstSnapshot } from './xds/codec-warmup.js';
import { OperatorTokenAuthorizer, type AdminAuthMode } from './admin/auth.js';
import { AdminServer } from './admin/http-server.js';
import { configErrors, lastErrorSuffix, policyProblems } from './admin/mesh-endpoints.js';
import type { OpenedCa } from './ca/open.js';
import type { Catalog } from './catalog/model.js';
import type { PolicyProvider } from './policy/policy-file.js';
import { CaSecretProvider } from './security/ca-secrets.js';
import { TokenAuthenticator } from './security/token-authenticator.js';
import { SnapshotStore } from './snapshot/store.js';
import type { DiscoverySource } from './sources/source.js';
import {
  startEventStream,
  type EventStreamSettings,
  type RunningEventStream,
} from './events/event-stream.js';
import { EventHub } from './telemetry/events.js';
import { RecentActivity } from './telemetry/recent-activity.js';
import type { Logger } from './telemetry/logger.js';
import { Metrics } from './telemetry/metrics.js';
import { registerStateMetrics } from './telemetry/state-metrics.js';
import { startControlPlaneTracing } from './telemetry/tracing.js';
import { followEntryTracing } from './telemetry/tracing-follow.js';
import { DnsServer, type DnsServerSettings } from './dns/server.js';
import { DEFAULT_MESH_SETTINGS, type MeshSettings } from './mesh/types.js';
import type { TrafficProvider } from './traffic/provider.js';
import { XdsCounters, combineObservers } from './xds/observer.js';
import type { XdsLimits } from './xds/limits.js';
import { XdsServer } from './xds/server.js';
import type { XdsTls, XdsTransportName } from './xds/ads-transport.js';

export interface SecurityOptions {
  /** The CA: certificates for mTLS, keys for proxy tokens. */
  readonly ca: OpenedCa;
  /** mTLS between sidecars (certificates over SDS). */
  readonly mtls: boolean;
  /** `token`: streams must present a proxy token; `none`: any node may connect (development). */
  readonly auth: 'token' | 'none';
  /** Authorization policy (needs mtls: callers are known by their certificates). */
  readonly policy?: PolicyProvider;
  /**
   * The admin API: `token` (default): every path but /health, /ready and /metrics needs an
   * operator token signed by `ca`; `none`: open (development). Without `security` at all the
   * admin API is open too.
   */
  readonly adminAuth?: AdminAuthMode;
  /** Serve the admin port over HTTPS with this certificate chain and key (PEM). */
  readonly adminTls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
}

export interface ControlPlaneOptions {
  source: DiscoverySource;
  logger: Logger;
  host: string;
  xdsPort: number;
  adminPort: number;
  debounceMs?: number;
  maxDebounceMs?: number;
  /** Without it: plaintext mesh, no authentication (the foundation's development mode). */
  security?: SecurityOptions;
  /** TLS for the xDS port itself (certificate chain and key, PEM). */
  xdsTls?: XdsTls;
  /** What serves ADS (serve --xds-transport): node:http2 directly, or grpc-js. */
  xdsTransport?: XdsTransportName;
  /** Traffic configuration (Consul config entries from a file, Consul or etcd). */
  traffic?: TrafficProvider;
  /** Mesh-wide settings other than security (connect timeout, intentions default, ...). */
  mesh?: Partial<Omit<MeshSettings, 'mtls' | 'authenticatedProxies'>>;
  /** What xDS clients may ask of this replica (streams, rates, request size); defaults otherwise. */
  xdsLimits?: Partial<XdsLimits>;
  /** At most this many /v1/events clients at once (default DEFAULT_MAX_EVENT_CLIENTS). */
  maxEventClients?: number;
  /** The DNS server for callers outside the mesh (serve --dns-port; docs/dns.md). */
  dns?: DnsServerSettings;
  /** Publish mesh events to a RabbitMQ exchange (serve --events-amqp). */
  eventStream?: EventStreamSettings;
  /** Trace the control plane's work to this OTLP collector (serve --tracing-otlp). */
  controlPlaneTracing?: { readonly collector: { readonly host: string; readonly port: number } };
}

export interface RunningControlPlane {
  readonly store: SnapshotStore;
  readonly xds: XdsServer;
  readonly counters: XdsCounters;
  readonly metrics: Metrics;
  readonly events: EventHub;
  readonly eventStream?: RunningEventStream;
  readonly xdsPort: number;
  readonly adminPort: number;
  /** Set when the DNS server runs (UDP and TCP on this port). */
  readonly dnsPort?: number;
  /**
   * Graceful drain before stop(): /ready turns 503, then the xDS streams are ended so their
   * sidecars reconnect to another replica; resolves when they are gone (at most `timeoutMs`).
   */
  drain(timeoutMs: number): Promise<void>;
  stop(): Promise<void>;
}

function meshSettings(opts: ControlPlaneOptions): MeshSettings {
  const security = opts.security;
  return {
    ...DEFAULT_MESH_SETTINGS,
    ...opts.mesh,
    ...(security?.mtls ? { mtls: security.ca.identity } : {}),
    authenticatedProxies: security?.auth === 'token',
  };
}

export async function startControlPlane(opts: ControlPlaneOptions): Promise<RunningControlPlane> {
  const { logger, source, security } = opts;
  let settings = meshSettings(opts);
  const store = new SnapshotStore({
    logger,
    debounceMs: opts.debounceMs,
    maxDebounceMs: opts.maxDebounceMs,
    settings,
    secrets: security?.mtls ? new CaSecretProvider(security.ca.certificates, logger) : undefined,
  });
  const counters = new XdsCounters();
  // The metrics read the server's streams at scrape time; the server reports to the metrics.
  const streams: { xds?: XdsServer } = {};
  const connected = () => streams.xds?.connected.values() ?? [];
  // What the mesh and the traffic provider could not apply: /v1/config/errors and the metric.
  // Also what the source left out (an etcd key with a bad value): the rest of the catalog is
  // served, so nothing else would tell why that instance is missing.
  const configErrorsNow = () => {
    const now = configErrors(store.mesh, opts.traffic);
    const skipped = source.problems?.() ?? [];
    return skipped.length === 0 ? now : { ...now, problems: [...now.problems, ...skipped] };
  };
  const metrics = new Metrics({
    store,
    streams: connected,
    certificates: security?.ca.certificates,
    configProblems: () => configErrorsNow().problems,
  });
  if (security?.ca.shared) registerStateMetrics(metrics.registry, security.ca.shared);
  const events = new EventHub(
    store,
    () => [...connected()].flatMap((s) => (s.proxy ? [s.proxy.nodeId] : [])),
    { maxClients: opts.maxEventClients, logger },
  );
  const activity = new RecentActivity(store);
  // Off: the SDK is never loaded and nothing is added to the observers.
  const cpTracing = opts.controlPlaneTracing
    ? await startControlPlaneTracing({ ...opts.controlPlaneTracing, store, logger })
    : undefined;
  // No flag: a proxy-defaults Tracing entry turns them on (and off) at run time.
  const entryTracing =
    !cpTracing && opts.traffic ? followEntryTracing({ store, logger }) : undefined;
  const tracingObservers = cpTracing
    ? [cpTracing.observer]
    : entryTracing
      ? [entryTracing.observer]
      : [];
  const xds = new XdsServer({
    watcher: store,
    observer: combineObservers(
      counters,
      metrics,
      events,
      activity,
      releaseOnFirstStream,
      ...tracingObservers,
    ),
    logger,
    authenticator:
      security?.auth === 'token' ? new TokenAuthenticator(security.ca.tokens) : undefined,
    limits: opts.xdsLimits,
    transport: opts.xdsTransport,
  });
  streams.xds = xds;
  warmCodecsAfterFirstSnapshot(store, logger);

  // A configured policy or traffic configuration that has not loaded yet holds everything
  // back: serving without it would open what the policy or an intention closes.
  const policy = security?.policy;
  const traffic = opts.traffic;
  const held = (): boolean =>
    (policy !== undefined && !policy.current()) || (traffic !== undefined && !traffic.current());
  let heldCatalog: Catalog | undefined;
  const release = (): void => {
    if (held() || !heldCatalog) return;
    store.setCatalog(heldCatalog);
    heldCatalog = undefined;
  };
  if (policy?.current()) store.setPolicy(policy.current());
  policy?.onChange((p) => {
    store.setPolicy(p);
    release();
  });
  traffic?.onChange((t) => {
    store.setTraffic(t);
    release();
  });
  await traffic?.start();
  const trafficNow = traffic?.current();
  if (trafficNow) store.setTraffic(trafficNow);

  // Without --datacenter, the mesh is in the source's own datacenter (Consul's agent's), so
  // instances Consul reports in it and sidecars bootstrapped from it are local.
  const adoptSourceDatacenter = (): void => {
    if (opts.mesh?.datacenter !== undefined) return;
    const dc = source.localDatacenter?.();
    if (dc === undefined || dc === settings.datacenter) return;
    logger.info({ datacenter: dc, source: source.name }, 'datacenter taken from the source');
    settings = {
      ...settings,
      datacenter: dc,
      datacenters: settings.datacenters.filter((d) => d !== dc),
    };
    store.setSettings(settings);
  };

  let lastSourceError: string | undefined;
  let draining = false;
  // Started before the source, so the first snapshot is an event too.
  const eventStream = opts.eventStream
    ? await startEventStream(
        {
          hub: events,
          logger,
          registry: metrics.registry,
          leaves: security?.ca.certificates,
          problems: () => [
            ...configErrorsNow().problems,
            ...(lastSourceError
              ? [{ kind: 'source', name: source.name, message: lastSourceError }]
              : []),
          ],
        },
        opts.eventStream,
      )
    : undefined;
  const operatorAuth =
    security && (security.adminAuth ?? 'token') === 'token'
      ? new OperatorTokenAuthorizer(security.ca.tokens)
      : undefined;
  const admin = new AdminServer({
    registry: metrics.registry,
    store,
    streams: connected,
    events,
    activity,
    // Also the policy's and the source's last rejected change (an invalid catalog or policy
    // edit, a backend down), as the event stream reports the source's: otherwise
    // `lucid-mesh status` said "none" while the edit an operator just made was being ignored.
    configErrors: () => {
      const now = configErrorsNow();
      const problems = [...now.problems, ...policyProblems(policy)];
      if (lastSourceError) {
        const message = `${lastSourceError} (${store.ready ? 'the last good catalog stays in force' : 'not ready until it is fixed'})`;
        problems.push({ kind: 'source', name: source.name, message });
      }
      return { ...now, problems };
    },
    notReadyReason: () => {
      if (draining) return 'draining: shutting down, sidecars are moving to other replicas';
      if (store.ready) return undefined;
      if (policy && !policy.current()) {
        return `waiting for a valid authorization policy${lastErrorSuffix(undefined, policy)}`;
      }
      // A traffic provider with no error of its own, or one that cannot reach its backend while
      // the source cannot either (the same etcd or Consul down), is held back by what holds the
      // source: say that, not 'waiting for a valid traffic configuration'.
      if (traffic && !traffic.current()) {
        const suffix = lastErrorSuffix(traffic);
        const ownError = suffix !== '' && !traffic.failure?.();
        if (ownError || !lastSourceError) {
          return `waiting for a valid traffic configuration from ${traffic.name}${suffix}`;
        }
      }
      return `waiting for the first complete catalog from the ${source.name} source${lastSourceError ? `; last error: ${lastSourceError}` : ''}`;
    },
    auth: operatorAuth,
    authFailed: (reason) => metrics.adminAuthFailures.inc({ reason }),
    tls: security?.adminTls,
  });

  let adminPort: number;
  try {
    adminPort = await admin.listen(opts.host, opts.adminPort);
  } catch (err) {
    await eventStream?.stop();
    throw err;
  }
  let xdsPort: number;
  try {
    xdsPort = await xds.listen(opts.host, opts.xdsPort, opts.xdsTls);
  } catch (err) {
    await admin.close();
    await eventStream?.stop();
    throw err;
  }
  // Answers from the same mesh model as the admin API, so it follows every snapshot.
  const dns = opts.dns
    ? new DnsServer({ ...opts.dns, mesh: () => store.mesh, logger, registry: metrics.registry })
    : undefined;
  let dnsPort: number | undefined;
  try {
    dnsPort = await dns?.listen(opts.host, opts.dns!.port);
  } catch (err) {
    await Promise.all([xds.close(0), admin.close()]);
    await eventStream?.stop();
    throw err;
  }
  metrics.sourceWatched(source.name);
  await source.start({
    update(catalog) {
      lastSourceError = undefined;
      adoptSourceDatacenter();
      metrics.sourceLastSuccess.set({ source: source.name }, Date.now() / 1000);
      metrics.sourceFailing.set({ source: source.name }, 0);
      if (held()) heldCatalog = catalog;
      else store.setCatalog(catalog);
    },
    recovered() {
      lastSourceError = undefined;
      metrics.sourceFailing.set({ source: source.name }, 0);
    },
    error(err) {
      lastSourceError = err.message;
      metrics.sourceErrors.inc({ source: source.name });
      metrics.sourceFailing.set({ source: source.name }, 1);
      logger.warn(
        { source: source.name, error: err.message },
        store.ready ? 'source error; serving the last good catalog' : 'source error; not ready',
      );
    },
  });
  logger.info(
    {
      host: opts.host,
      xdsPort,
      adminPort,
      source: source.name,
      mtls: security?.mtls ?? false,
      auth: security?.auth ?? 'none',
      adminAuth: operatorAuth ? 'token' : 'none',
      adminTls: security?.adminTls !== undefined,
      policy: policy !== undefined,
    },
    'lucid-mesh control plane started',
  );

  return {
    store,
    xds,
    counters,
    metrics,
    events,
    ...(eventStream ? { eventStream } : {}),
    xdsPort,
    adminPort,
    ...(dnsPort !== undefined ? { dnsPort } : {}),
    async drain(timeoutMs) {
      draining = true;
      await xds.drain(timeoutMs);
    },
    async stop() {
      await source.stop();
      await traffic?.stop();
      await security?.policy?.stop?.();
      // Closing a shared CA state store also hands its leadership to another replica.
      await security?.ca.close();
      store.close();
      await Promise.all([xds.close(500), admin.close(), dns?.close()]);
      // Last: the disconnects of the closing streams are recorded too.
      await eventStream?.stop();
      await cpTracing?.stop();
      await entryTracing?.stop();
    },
  };
}
