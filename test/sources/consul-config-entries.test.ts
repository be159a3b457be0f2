// Traffic configuration from Consul config entries, against a real Consul agent (-dev, one
// per file: it is slow to start): every kind read with blocking queries and parsed, live
// writes and deletes, an entry Consul accepts but lucid-mesh rejects, unsupported fields, an
// outage and a restart, and the connection budget shared with the catalog watches.
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Catalog } from '../../src/catalog/model.js';
import {
  CONFIG_ENTRY_CONNECTIONS,
  ConsulTrafficSource,
  consulSourcesFromFlags,
  consulTrafficSourceOptionsFromFlags,
  type ConsulTrafficSourceOptions,
} from '../../src/sources/consul/config-entries.js';
import { ConsulFlagError } from '../../src/sources/consul/options.js';
import type { CatalogSink } from '../../src/sources/source.js';
import type { Logger } from '../../src/telemetry/logger.js';
import type { TrafficConfig } from '../../src/traffic/types.js';
import { CONSUL_SETUP_TIMEOUT_MS, startConsul, type ConsulAgent } from '../support/consul.js';
import { waitFor } from '../support/wait.js';

function captureLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: 'debug' },
    { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) },
  );
  return { logger, lines };
}

// Consul checks the chain on write: routing needs an http protocol, and a subset a router or
// splitter names must exist in a resolver. So: defaults, then resolvers, then the rest.
const PROXY_DEFAULTS = { Kind: 'proxy-defaults', Name: 'global', Config: { protocol: 'http' } };
const API_DEFAULTS = { Kind: 'service-defaults', Name: 'api', Protocol: 'http' };
const API_RESOLVER = {
  Kind: 'service-resolver',
  Name: 'api',
  DefaultSubset: 'v1',
  Subsets: {
    v1: { Filter: 'Service.Meta.version == v1' },
    v2: { Filter: 'Service.Meta.version == v2', OnlyPassing: true },
  },
  ConnectTimeout: '3s',
};
const API_ROUTER = {
  Kind: 'service-router',
  Name: 'api',
  Routes: [
    {
      Match: { HTTP: { PathPrefix: '/admin' } },
      Destination: { ServiceSubset: 'v2', NumRetries: 3, RetryOn: ['5xx'], RequestTimeout: '2s' },
    },
  ],
};
const API_SPLITTER = {
  Kind: 'service-splitter',
  Name: 'api',
  Splits: [
    { Weight: 90, ServiceSubset: 'v1' },
    { Weight: 10, ServiceSubset: 'v2' },
  ],
};
const API_INTENTIONS = {
  Kind: 'service-intentions',
  Name: 'api',
  Sources: [{ Name: 'web', Action: 'deny' }],
};
/** Consul stores a PathRegex without compiling it; lucid-mesh refuses one that is not a regex. */
const BAD_ROUTER = {
  Kind: 'service-router',
  Name: 'bad',
  Routes: [{ Match: { HTTP: { PathRegex: '/slow(' } } }],
};
/** What the problem says (the regex engine's own reason after it may vary). */
const BAD_MESSAGE = expect.stringMatching(
  /^service-router\/bad: Routes\[0\]\.Match\.HTTP\.PathRegex: expected a regular expression.*"\/slow\("/,
) as unknown;

/** Kinds in an order Consul lets them be deleted (dependants first). */
const DELETE_ORDER = [
  'service-intentions',
  'service-router',
  'service-splitter',
  'service-resolver',
  'service-defaults',
  'proxy-defaults',
];

describe('ConsulTrafficSource against a real Consul agent', () => {
  let consul: ConsulAgent;
  const stops: Array<() => Promise<void>> = [];

  const write = async (entry: Record<string, unknown>): Promise<void> => {
    const res = await consul.api('PUT', '/v1/config', entry);
    if (res.status !== 200 || res.body.trim() !== 'true') {
      throw new Error(`consul config write ${entry.Kind}/${entry.Name}: ${res.status} ${res.body}`);
    }
  };
  const remove = async (kind: string, name: string): Promise<void> => {
    const res = await consul.api('DELETE', `/v1/config/${kind}/${name}`);
    if (res.status !== 200) throw new Error(`consul config delete ${kind}/${name}: ${res.body}`);
  };
  const clear = async (): Promise<void> => {
    for (const kind of DELETE_ORDER) {
      const res = await consul.api('GET', `/v1/config/${kind}`);
      for (const e of (JSON.parse(res.body) ?? []) as Array<{ Name: string }>)
        await remove(kind, e.Name);
    }
  };
  const writeAll = async (): Promise<void> => {
    for (const e of [PROXY_DEFAULTS, API_DEFAULTS, API_RESOLVER, API_ROUTER, API_SPLITTER])
      await write(e);
    await write(API_INTENTIONS);
    await write(BAD_ROUTER);
  };

  const newSource = (
    extra: Partial<ConsulTrafficSourceOptions> = {},
    logger: Logger = captureLogger().logger,
  ): { source: ConsulTrafficSource; changes: TrafficConfig[] } => {
    const source = new ConsulTrafficSource(
      {
        connection: { secure: false, host: '127.0.0.1', port: consul.httpPort },
        backoffMinMs: 100,
        backoffMaxMs: 500,
        waitMs: 20_000,
        ...extra,
      },
      logger,
    );
    stops.push(() => source.stop());
    const changes: TrafficConfig[] = [];
    source.onChange((c) => changes.push(c));
    return { source, changes };
  };

  beforeAll(async () => {
    consul = await startConsul();
  }, CONSUL_SETUP_TIMEOUT_MS);
  beforeEach(async () => {
    if (!consul.running()) await consul.start();
    await clear();
  });
  afterEach(async () => {
    await Promise.all(stops.splice(0).map((stop) => stop()));
  });
  afterAll(async () => {
    await Promise.all(stops.splice(0).map((stop) => stop()));
    await consul?.stop();
  });

  it('reads every kind once before current() is defined; each entry parsed; a rejected entry listed while the rest applies', async () => {
    await writeAll();
    // Consul accepts a field lucid-mesh does not implement: listed as unsupported.
    await write({
      Kind: 'service-defaults',
      Name: 'web',
      Protocol: 'http',
      MaxInboundConnections: 5,
    });

    const { logger, lines } = captureLogger();
    const { source, changes } = newSource({}, logger);
    expect(source.current()).toBeUndefined();
    const t0 = Date.now();
    await source.start();
    const config = await waitFor(() => source.current(), { what: 'the first configuration' });
    const loadMs = Date.now() - t0;
    expect(loadMs).toBeLessThan(2_000);
    expect(changes).toEqual([config]);

    expect(config.proxyDefaults).toEqual({
      Kind: 'proxy-defaults',
      Name: 'global',
      Config: { protocol: 'http' },
    });
    expect([...config.serviceDefaults.keys()]).toEqual(['api', 'web']);
    expect(config.serviceDefaults.get('api')).toEqual(API_DEFAULTS);
    expect(config.resolvers.get('api')).toMatchObject({
      DefaultSubset: 'v1',
      Subsets: {
        v1: { Filter: 'Service.Meta.version == v1', OnlyPassing: false },
        v2: { Filter: 'Service.Meta.version == v2', OnlyPassing: true },
      },
      ConnectTimeout: 3000,
    });
    expect(config.routers.get('api')?.Routes).toEqual([
      {
        Match: { HTTP: { PathPrefix: '/admin', Methods: [], Header: [], QueryParam: [] } },
        Destination: {
          ServiceSubset: 'v2',
          NumRetries: 3,
          RetryOn: ['5xx'],
          RequestTimeout: 2000,
          RetryOnConnectFailure: false,
          RetryOnStatusCodes: [],
        },
      },
    ]);
    expect(config.splitters.get('api')?.Splits.map((s) => [s.Weight, s.ServiceSubset])).toEqual([
      [90, 'v1'],
      [10, 'v2'],
    ]);
    expect(config.intentions.get('api')?.Sources).toEqual([{ Name: 'web', Action: 'deny' }]);
    expect(config.unsupported).toEqual([
      { kind: 'service-defaults', name: 'web', field: 'MaxInboundConnections' },
    ]);

    // The router Consul accepted but lucid-mesh rejects: left out, listed, logged once.
    expect([...config.routers.keys()]).toEqual(['api']);
    expect(source.problems()).toEqual([
      { kind: 'service-router', name: 'bad', message: BAD_MESSAGE },
    ]);
    const rejected = lines.filter((l) => String(l.msg).startsWith('consul config entry rejected'));
    expect(rejected).toHaveLength(1);
    expect(rejected[0]).toMatchObject({ level: 40, kind: 'service-router', name: 'bad' });
    expect(lines.filter((l) => l.field === 'MaxInboundConnections' && l.level === 40)).toHaveLength(
      1,
    );
    expect(source.status()).toMatchObject({ synced: true, updates: 1 });
    expect(source.status().kinds['service-router']).toEqual({ read: true, entries: 2 });
    // Six long polls, one per kind, and nothing else.
    await sleep(200);
    expect(source.status().requestsInFlight).toBe(CONFIG_ENTRY_CONNECTIONS);
  });

  it('consul config write applies live, an unchanged write changes nothing, delete stops an entry applying', async () => {
    await writeAll();
    const { source, changes } = newSource();
    await source.start();
    const first = await waitFor(() => source.current(), { what: 'the first configuration' });

    // A changed router: within a second, the rest of the configuration keeps its objects.
    let t0 = Date.now();
    await write({
      ...API_ROUTER,
      Routes: [{ ...API_ROUTER.Routes[0], Match: { HTTP: { PathPrefix: '/ops' } } }],
    });
    const second = await waitFor(
      () =>
        source.current()?.routers.get('api')?.Routes[0]?.Match?.HTTP?.PathPrefix === '/ops' &&
        source.current(),
      { what: 'the changed router', intervalMs: 10 },
    );
    const writeMs = Date.now() - t0;
    expect(writeMs).toBeLessThan(1_000);
    expect(changes).toHaveLength(2);
    expect(changes[1]).toBe(second);
    expect(second.resolvers.get('api')).toBe(first.resolvers.get('api'));
    expect(second.splitters).toBe(first.splitters);
    expect(second.proxyDefaults).toBe(first.proxyDefaults);

    // The same entry written again (Consul bumps its ModifyIndex): no change.
    await write({
      ...API_ROUTER,
      Routes: [{ ...API_ROUTER.Routes[0], Match: { HTTP: { PathPrefix: '/ops' } } }],
    });
    await sleep(500);
    expect(changes).toHaveLength(2);
    expect(source.current()).toBe(second);

    // Deleted: it stops applying.
    t0 = Date.now();
    await remove('service-intentions', 'api');
    await waitFor(() => source.current()?.intentions.size === 0, {
      what: 'the intentions gone',
      intervalMs: 10,
    });
    const deleteMs = Date.now() - t0;
    expect(deleteMs).toBeLessThan(1_000);
    await remove('service-router', 'api');
    await waitFor(() => !source.current()?.routers.has('api'), { what: 'the router gone' });
    expect(source.current()?.splitters.has('api')).toBe(true);

    // The rejected entry fixed: it applies and its problem goes.
    await write({ ...BAD_ROUTER, Routes: [{ Match: { HTTP: { PathRegex: '/slow.*' } } }] });
    await waitFor(() => source.current()?.routers.has('bad'), { what: 'the fixed router' });
    expect(source.problems()).toEqual([]);
    // Broken again: it stops applying (Consul holds it; lucid-mesh cannot use it).
    await write(BAD_ROUTER);
    await waitFor(() => !source.current()?.routers.has('bad'), { what: 'the broken router out' });
    expect(source.problems()).toEqual([
      { kind: 'service-router', name: 'bad', message: BAD_MESSAGE },
    ]);
  });

  it('Consul down: the last good configuration stays, nothing fires; a restarted Consul is read again', async () => {
    await writeAll();
    const { logger, lines } = captureLogger();
    const { source, changes } = newSource({}, logger);
    await source.start();
    const before = await waitFor(() => source.current(), { what: 'the first configuration' });

    await consul.stop();
    await waitFor(
      () => Object.values(source.status().kinds).every((k) => k.failing !== undefined),
      { what: 'every kind failing' },
    );
    await sleep(1_500);
    expect(source.current()).toBe(before);
    expect(changes).toHaveLength(1);
    expect(source.problems()).toEqual([
      { kind: 'service-router', name: 'bad', message: BAD_MESSAGE },
    ]);
    expect(lines.some((l) => String(l.msg).startsWith('Consul config entry read failed'))).toBe(
      true,
    );

    // A -dev agent starts empty: what it holds after the restart is what applies.
    const t0 = Date.now();
    await consul.start();
    await write(PROXY_DEFAULTS);
    await write(API_DEFAULTS);
    await write({ ...API_ROUTER, Routes: [{ Destination: { NumRetries: 1 } }] });
    const after = await waitFor(
      () =>
        source.current()?.routers.get('api')?.Routes[0]?.Destination?.NumRetries === 1 &&
        source.current(),
      { what: 'the entries of the restarted Consul', timeoutMs: 15_000 },
    );
    const recoverMs = Date.now() - t0;
    expect(recoverMs).toBeLessThan(15_000);
    expect([...after.routers.keys()]).toEqual(['api']);
    // Each kind keeps its last good entries until it is read again (within the backoff).
    await waitFor(
      () => Object.values(source.status().kinds).every((k) => k.failing === undefined),
      { what: 'every kind recovered' },
    );
    await waitFor(() => source.problems().length === 0, { what: 'the bad router gone' });
    const now = source.current()!;
    expect(now.resolvers.size + now.splitters.size + now.intentions.size).toBe(0);
    expect([...now.routers.keys()]).toEqual(['api']);
    expect(lines.map((l) => l.msg)).toContain('Consul config entries readable again');

    // Blocking again on the new agent's index: a live write arrives at once.
    await write(API_INTENTIONS);
    await waitFor(() => source.current()?.intentions.has('api'), {
      what: 'a write after the restart',
      timeoutMs: 2_000,
    });
  });

  it('not ready while Consul is unreachable at start; loads once it is up', async () => {
    await consul.stop();
    const { source, changes } = newSource();
    const t0 = Date.now();
    await source.start(); // resolves after the first (failed) attempt of every kind
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(source.current()).toBeUndefined();
    expect(source.status().synced).toBe(false);
    await sleep(500);
    expect(changes).toEqual([]);
    await consul.start();
    await write(PROXY_DEFAULTS);
    const config = await waitFor(() => source.current(), {
      what: 'the first configuration',
      timeoutMs: 15_000,
    });
    expect(config.proxyDefaults?.Config.protocol).toBe('http');
  });

  it("proxy-defaults AccessLogs as Consul stores and prints it (Consul's own field) reach the configuration", async () => {
    await write({
      ...PROXY_DEFAULTS,
      AccessLogs: { Enabled: true, Type: 'file', Path: '/var/log/envoy/access.log' },
    });
    const { source } = newSource();
    await source.start();
    const config = await waitFor(() => source.current(), { what: 'the first configuration' });
    expect(config.proxyDefaults?.AccessLogs).toEqual({
      Enabled: true,
      Type: 'file',
      Path: '/var/log/envoy/access.log',
    });
    expect(config.unsupported).toEqual([]);
  });

  it('AccessLogs Type otlp: refused by Consul; Config.lucid_access_logs_type otlp says it instead', async () => {
    const refused = await consul.api('PUT', '/v1/config', {
      ...PROXY_DEFAULTS,
      AccessLogs: { Enabled: true, Type: 'otlp' },
    });
    expect(refused.status).not.toBe(200);
    expect(refused.body).toContain('invalid access log type: otlp');
    await write({
      ...PROXY_DEFAULTS,
      Config: { protocol: 'http', lucid_access_logs_type: 'otlp' },
      AccessLogs: { Enabled: true },
    });
    const { source } = newSource();
    await source.start();
    const config = await waitFor(() => source.current(), { what: 'the first configuration' });
    expect(config.proxyDefaults?.AccessLogs).toEqual({ Enabled: true, Type: 'otlp' });
    expect(config.unsupported).toEqual([]);
    expect(source.problems()).toEqual([]);
  });

  it("proxy-defaults tracing in Consul's opaque Config (lucid_tracing_*) reaches the configuration; a top-level Tracing is refused by Consul", async () => {
    // Consul 1.16 decodes entries strictly: lucid-mesh's Tracing field cannot be stored there.
    const refused = await consul.api('PUT', '/v1/config', {
      ...PROXY_DEFAULTS,
      Tracing: { Collector: 'jaeger:4317' },
    });
    expect(refused.status).toBe(400);
    expect(refused.body).toContain('invalid config key "Tracing"');
    // Numbers in Config come back as JSON numbers, strings as strings: both are read.
    await write({
      ...PROXY_DEFAULTS,
      Config: {
        protocol: 'http',
        lucid_tracing_collector: 'jaeger.observability:4317',
        lucid_tracing_sample_percent: 10,
      },
    });
    const { source } = newSource();
    await source.start();
    const config = await waitFor(() => source.current(), { what: 'the first configuration' });
    expect(config.proxyDefaults?.Tracing).toEqual({
      Provider: 'opentelemetry',
      Collector: { host: 'jaeger.observability', port: 4317 },
      SamplingPercent: 10,
    });
    expect(config.unsupported).toEqual([]);
    expect(source.problems()).toEqual([]);
    // A live edit (the percent as a string, as HCL users often write it) is applied too.
    await write({
      ...PROXY_DEFAULTS,
      Config: { lucid_tracing_collector: '127.0.0.1:4317', lucid_tracing_sample_percent: '2.5' },
    });
    const edited = await waitFor(
      () => source.current()?.proxyDefaults?.Tracing?.SamplingPercent === 2.5 && source.current(),
      { what: 'the edited tracing' },
    );
    expect(edited.proxyDefaults?.Tracing?.Collector).toEqual({ host: '127.0.0.1', port: 4317 });
    // Removing the keys turns the sidecars' tracing off again.
    await write(PROXY_DEFAULTS);
    await waitFor(
      () =>
        source.current()?.proxyDefaults !== undefined && !source.current()?.proxyDefaults?.Tracing,
      { what: 'tracing gone' },
    );
  });
});

describe('Consul catalog and config entries within one connection budget', () => {
  let consul: ConsulAgent;
  const stops: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    consul = await startConsul();
    for (let i = 0; i < 8; i++) {
      await consul.register({ Name: `svc-${i}`, ID: `svc-${i}-1`, Port: 9000 + i });
    }
  }, CONSUL_SETUP_TIMEOUT_MS);
  afterEach(async () => {
    await Promise.all(stops.splice(0).map((stop) => stop()));
  });
  afterAll(async () => {
    await Promise.all(stops.splice(0).map((stop) => stop()));
    await consul?.stop();
  });

  it('--consul-max-connections covers both: six config-entry watches come off the catalog', async () => {
    const flags = { consul: consul.address, consulMaxConnections: '16', consulWait: '20s' };
    const { catalog, traffic } = consulSourcesFromFlags(flags, captureLogger().logger, {});
    stops.push(
      () => traffic.stop(),
      () => catalog.stop(),
    );
    const catalogs: Catalog[] = [];
    const sink: CatalogSink = { update: (c) => void catalogs.push(c), error: () => undefined };
    await catalog.start(sink);
    await traffic.start();
    await waitFor(() => catalogs.at(-1)?.services.length === 8 && traffic.current(), {
      what: 'the catalog and the traffic configuration',
    });
    // 16 = 6 config-entry watches + the catalog's list, trigger and 4 refetch slots + 4 services.
    expect(catalog.stats()).toMatchObject({
      maxConnections: 16,
      dedicatedWatches: 4,
      overflowServices: 4,
    });
    await sleep(300);
    const inFlight = (): number =>
      catalog.stats().requestsInFlight + traffic.status().requestsInFlight;
    expect(traffic.status().requestsInFlight).toBe(CONFIG_ENTRY_CONNECTIONS);
    expect(inFlight()).toBeLessThanOrEqual(16);

    // Both keep working at the cap: a service change and a config write arrive.
    await consul.register({ Name: 'svc-7', ID: 'svc-7-1', Port: 9977 });
    await consul.api('PUT', '/v1/config', PROXY_DEFAULTS);
    await waitFor(
      () =>
        catalogs.at(-1)?.services.find((s) => s.name === 'svc-7')?.instances[0]?.port === 9977 &&
        traffic.current()?.proxyDefaults !== undefined,
      { what: 'both changes' },
    );
    expect(inFlight()).toBeLessThanOrEqual(16);
  });

  it('a budget too small for both is a flag error; the traffic options follow the catalog flags', () => {
    expect(() =>
      consulSourcesFromFlags({ consulMaxConnections: '12' }, captureLogger().logger, {}),
    ).toThrow(ConsulFlagError);
    expect(() =>
      consulSourcesFromFlags({ consulMaxConnections: '12' }, captureLogger().logger, {}),
    ).toThrow(/^--consul-max-connections: expected at least 13 with traffic configuration/);
    expect(
      consulTrafficSourceOptionsFromFlags(
        { consul: 'https://c.example:8501', consulWait: '30s', consulToken: 't' },
        {},
      ),
    ).toMatchObject({
      connection: { secure: true, host: 'c.example', port: 8501, token: 't' },
      waitMs: 30_000,
    });
  });
});
