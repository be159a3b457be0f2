// Traffic configuration from etcd, against a real etcd (one per file, a key prefix per test):
// `<prefix>config/<kind>/<name>` keys listed then watched, each parsed on its own; bad JSON,
// a key disagreeing with its entry and a field lucid-mesh rejects are problems while the rest
// applies; live changes and deletes; a cut connection with a compaction meanwhile, an etcd
// restart and an unreachable etcd at start keep the last good configuration.
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  EtcdTrafficSource,
  etcdTrafficSourceFromFlags,
  type EtcdTrafficSourceOptions,
} from '../../src/sources/etcd/config-entries.js';
import { configEntryKey } from '../../src/sources/etcd/layout.js';
import type { Logger } from '../../src/telemetry/logger.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import type { TrafficConfig } from '../../src/traffic/types.js';
import { startEtcd, startTcpProxy, type EtcdHandle, type TcpProxy } from '../support/etcd.js';
import { waitFor } from '../support/wait.js';

let etcd: EtcdHandle;
const proxies: TcpProxy[] = [];
const sources: EtcdTrafficSource[] = [];
let seq = 0;

beforeAll(async () => {
  etcd = await startEtcd('traffic-test');
});

afterEach(async () => {
  await Promise.all(sources.splice(0).map((s) => s.stop()));
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  if (etcd && !etcd.running()) await etcd.restart();
});

afterAll(async () => {
  await Promise.all(sources.splice(0).map((s) => s.stop()));
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  await etcd?.remove();
});

const newPrefix = (): string => `/traffic${++seq}/`;

async function put(prefix: string, kind: string, name: string, value: unknown): Promise<void> {
  await etcd.client
    .put(configEntryKey(prefix, kind, name))
    .value(typeof value === 'string' ? value : JSON.stringify(value));
}

async function del(prefix: string, kind: string, name: string): Promise<void> {
  await etcd.client.delete().key(configEntryKey(prefix, kind, name));
}

function captureLogs(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: 'debug' },
    { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) },
  );
  return { logger, lines };
}

async function startSource(
  prefix: string,
  opts: Partial<EtcdTrafficSourceOptions> = {},
  logger: Logger = silentLogger,
): Promise<{ source: EtcdTrafficSource; changes: TrafficConfig[] }> {
  const source = new EtcdTrafficSource(
    { endpoints: [etcd.endpoint], prefix, retryMinMs: 100, retryMaxMs: 500, ...opts },
    logger,
  );
  sources.push(source);
  const changes: TrafficConfig[] = [];
  source.onChange((c) => changes.push(c));
  await source.start();
  return { source, changes };
}

const until = <T>(what: string, check: () => T | undefined | false, timeoutMs = 10_000) =>
  waitFor(check, { what, timeoutMs, intervalMs: 10 });

const ROUTER = {
  Kind: 'service-router',
  Name: 'api',
  Routes: [
    {
      Match: { HTTP: { PathPrefix: '/admin', Header: [{ Name: 'x-canary', Exact: '1' }] } },
      Destination: { ServiceSubset: 'v2', RetryBackoff: { BaseInterval: '25ms' } },
    },
  ],
};
const RESOLVER = {
  Kind: 'service-resolver',
  Name: 'api',
  Subsets: { v1: { Filter: '"v1" in Service.Tags' }, v2: { Filter: '"v2" in Service.Tags' } },
  LoadBalancer: { Policy: 'least_request' },
};
/** Kind and Name left out: the key gives them. */
const DEFAULTS_WITHOUT_KIND = { Protocol: 'http', MaxInboundConnections: 10 };

describe('EtcdTrafficSource (real etcd)', () => {
  it('lists every entry, each parsed on its own: bad JSON, a key disagreeing with its entry and a rejected field are problems, the rest applies', async () => {
    const prefix = newPrefix();
    await put(prefix, 'service-router', 'api', ROUTER);
    await put(prefix, 'service-resolver', 'api', RESOLVER);
    await put(prefix, 'service-defaults', 'api', DEFAULTS_WITHOUT_KIND);
    await put(prefix, 'proxy-defaults', 'global', { Config: { protocol: 'http' } });
    await put(prefix, 'service-splitter', 'web', '{"Splits": [');
    await put(prefix, 'service-router', 'web', { ...ROUTER, Name: 'api' });
    await put(prefix, 'service-intentions', 'db', { Kind: 'service-router', Name: 'db' });
    await put(prefix, 'service-router', 'pay', {
      Routes: [{ Destination: { NumRetries: -1 } }],
    });
    await put(prefix, 'mesh', 'mesh', { TransparentProxy: { MeshDestinationsOnly: true } });
    await put(prefix, 'frobnicator', 'x', {});
    await etcd.client.put(`${prefix}config/service-router/a/b`).value('{}');
    await etcd.client.put(`${prefix}services/api/api-1`).value('{"not": "ours"}');

    const { logger, lines } = captureLogs();
    const t0 = Date.now();
    const { source, changes } = await startSource(prefix, { pageSize: 3 }, logger);
    const loadMs = Date.now() - t0;
    const config = source.current()!;
    expect(config).toBeDefined();
    expect(loadMs).toBeLessThan(2_000);
    expect(changes).toEqual([config]);

    expect([...config.routers.keys()]).toEqual(['api']);
    expect(config.routers.get('api')?.Routes[0]).toEqual({
      Match: {
        HTTP: {
          PathPrefix: '/admin',
          Methods: [],
          Header: [{ Name: 'x-canary', Exact: '1', Invert: false }],
          QueryParam: [],
        },
      },
      Destination: {
        ServiceSubset: 'v2',
        RetryBackoff: { BaseInterval: 25 },
        RetryOn: [],
        RetryOnConnectFailure: false,
        RetryOnStatusCodes: [],
      },
    });
    expect(config.resolvers.get('api')?.LoadBalancer?.Policy).toBe('least_request');
    expect(config.serviceDefaults.get('api')).toEqual({
      Kind: 'service-defaults',
      Name: 'api',
      Protocol: 'http',
    });
    expect(config.proxyDefaults?.Config).toEqual({ protocol: 'http' });
    expect(config.splitters.size + config.intentions.size).toBe(0);
    expect(config.unsupported).toEqual([
      { kind: 'mesh', name: 'mesh', field: '' },
      { kind: 'service-defaults', name: 'api', field: 'MaxInboundConnections' },
    ]);

    const key = (kind: string, name: string) => configEntryKey(prefix, kind, name);
    const problems = new Map(source.problems().map((p) => [`${p.kind}/${p.name}`, p.message]));
    expect([...problems.keys()]).toEqual([
      'service-router/a/b',
      'service-router/pay',
      'service-router/web',
      'service-splitter/web',
      'service-intentions/db',
      'frobnicator/x',
    ]);
    expect(problems.get('service-splitter/web')).toMatch(
      new RegExp(`^service-splitter/web: not JSON: .* \\(at ${key('service-splitter', 'web')}\\)$`),
    );
    expect(problems.get('service-router/web')).toBe(
      `service-router/web: Name: "api" does not match the name in the key ("web") (at ${key('service-router', 'web')})`,
    );
    expect(problems.get('service-intentions/db')).toBe(
      `service-intentions/db: Kind: "service-router" does not match the kind in the key ("service-intentions") (at ${key('service-intentions', 'db')})`,
    );
    expect(problems.get('service-router/pay')).toBe(
      'service-router/pay: Routes[0].Destination.NumRetries: expected integer ≥ 0, got -1',
    );
    expect(problems.get('service-router/a/b')).toMatch(
      /expected a key \/traffic\d+\/config\/<kind>\/<name>/,
    );
    expect(problems.get('frobnicator/x')).toMatch(/^frobnicator\/x: Kind: expected one of/);
    // Each logged once, naming the key.
    const rejected = lines.filter((l) => String(l.msg).startsWith('etcd config entry rejected'));
    expect(rejected.map((l) => l.origin)).toHaveLength(6);
    expect(rejected.find((l) => l.name === 'pay')).toMatchObject({
      level: 40,
      origin: key('service-router', 'pay'),
    });
    await until('watching', () => source.status().watching);
    expect(source.status()).toMatchObject({ lists: 1, keys: 11, updates: 1, failures: 0 });
  });

  it('watches: a put applies within a second, an unchanged put changes nothing, a delete stops an entry applying, a bad edit drops it', async () => {
    const prefix = newPrefix();
    await put(prefix, 'service-router', 'api', ROUTER);
    await put(prefix, 'service-resolver', 'api', RESOLVER);
    const { source, changes } = await startSource(prefix);
    const first = source.current()!;

    let t0 = Date.now();
    await put(prefix, 'service-splitter', 'api', {
      Kind: 'service-splitter',
      Name: 'api',
      Splits: [
        { Weight: 33.33, ServiceSubset: 'v1' },
        { Weight: 66.67, ServiceSubset: 'v2' },
      ],
    });
    const second = await until(
      'the splitter',
      () => source.current()?.splitters.has('api') && source.current(),
    );
    const putMs = Date.now() - t0;
    expect(putMs).toBeLessThan(1_000);
    expect(second.routers.get('api')).toBe(first.routers.get('api'));
    expect(second.resolvers).toBe(first.resolvers);

    // The same value written again (a new revision): nothing changes.
    await put(prefix, 'service-router', 'api', ROUTER);
    await new Promise((r) => setTimeout(r, 300));
    expect(source.current()).toBe(second);
    expect(changes).toHaveLength(2);

    // Changed, then broken (skipped and listed), then fixed, then deleted.
    await put(prefix, 'service-router', 'api', { ...ROUTER, Routes: [] });
    await until(
      'the emptied router',
      () => source.current()?.routers.get('api')?.Routes.length === 0,
    );
    await put(prefix, 'service-router', 'api', '{ nope');
    await until('the broken router out', () => !source.current()?.routers.has('api'));
    expect(source.problems()).toMatchObject([{ kind: 'service-router', name: 'api' }]);
    await put(prefix, 'service-router', 'api', ROUTER);
    await until('the router back', () => source.current()?.routers.has('api'));
    expect(source.problems()).toEqual([]);
    t0 = Date.now();
    await del(prefix, 'service-router', 'api');
    await until('the router deleted', () => !source.current()?.routers.has('api'));
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(source.current()?.splitters.has('api')).toBe(true);
  });

  it('cut off while entries change and etcd compacts: the last good stays, then it catches up in one change', async () => {
    const prefix = newPrefix();
    const proxy = await startTcpProxy(etcd.clientPort);
    proxies.push(proxy);
    await put(prefix, 'service-router', 'api', ROUTER);
    await put(prefix, 'service-router', 'pay', { Routes: [{ Destination: { NumRetries: -1 } }] });
    const { logger, lines } = captureLogs();
    const { source, changes } = await startSource(prefix, { endpoints: [proxy.endpoint] }, logger);
    const before = source.current()!;

    await proxy.cut();
    await until('the cut noticed', () => source.status().failures > 0);
    await del(prefix, 'service-router', 'api');
    await put(prefix, 'service-resolver', 'api', RESOLVER);
    for (let i = 1; i <= 5; i++)
      await put(prefix, 'service-resolver', 'web', {
        ...RESOLVER,
        Name: 'web',
        ConnectTimeout: `${i}s`,
      });
    const compacted = await etcd.compact();
    await new Promise((r) => setTimeout(r, 500));
    expect(source.current()).toBe(before);
    expect(changes).toHaveLength(1);

    await proxy.restore();
    const after = await until(
      'caught up',
      () => source.current()?.resolvers.has('web') && source.current(),
    );
    expect([...after.routers.keys()]).toEqual([]);
    expect(after.resolvers.get('web')?.ConnectTimeout).toBe(5_000);
    expect(changes).toHaveLength(2); // straight to the current state
    expect(source.status().revision).toBeGreaterThanOrEqual(compacted);
    expect(source.status().lists).toBeGreaterThanOrEqual(2);
    // The bad entry, seen again by the re-list, is not logged again.
    expect(
      lines.filter((l) => String(l.msg).startsWith('etcd config entry rejected')),
    ).toHaveLength(1);
    expect(
      lines.some((l) =>
        String(l.msg).startsWith(
          'etcd unreachable or watch interrupted; keeping the last good traffic configuration',
        ),
      ),
    ).toBe(true);

    await put(prefix, 'service-router', 'api', ROUTER);
    await until('live again', () => source.current()?.routers.has('api'));
  });

  it('survives an etcd restart: the last good stays while it is down, later changes apply', async () => {
    const prefix = newPrefix();
    await put(prefix, 'service-router', 'api', ROUTER);
    const { source, changes } = await startSource(prefix);
    const before = source.current()!;
    await etcd.stop();
    await until('the outage noticed', () => source.status().failures > 0);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(source.current()).toBe(before);
    expect(changes).toHaveLength(1);

    const t0 = Date.now();
    await etcd.restart();
    await until('re-listed', () => source.status().lists >= 2 && source.status().watching);
    const recoverMs = Date.now() - t0;
    expect(recoverMs).toBeLessThan(10_000);
    expect(source.current()).toBe(before); // the same entries: no change
    await put(prefix, 'service-resolver', 'api', RESOLVER);
    await until('a change after the restart', () => source.current()?.resolvers.has('api'));
    expect(source.current()?.routers.get('api')).toBe(before.routers.get('api'));
  });

  it('not ready while etcd is unreachable at start; loads once it is reachable', async () => {
    const prefix = newPrefix();
    await put(prefix, 'service-router', 'api', ROUTER);
    const proxy = await startTcpProxy(etcd.clientPort);
    proxies.push(proxy);
    await proxy.cut();
    const { source, changes } = await startSource(prefix, { endpoints: [proxy.endpoint] });
    expect(source.current()).toBeUndefined();
    await new Promise((r) => setTimeout(r, 500));
    expect(changes).toEqual([]);
    await proxy.restore();
    await until('the first configuration', () => source.current()?.routers.has('api'));
    expect(changes).toHaveLength(1);
  });

  it('from flags: the catalog flags, entries under <--etcd-prefix>config/', async () => {
    const prefix = newPrefix();
    await put(prefix, 'service-defaults', 'api', { Protocol: 'grpc' });
    const source = etcdTrafficSourceFromFlags(
      { etcd: etcd.endpoint, etcdPrefix: prefix.slice(0, -1) },
      silentLogger,
    );
    sources.push(source);
    expect(source.root).toBe(`${prefix}config/`);
    await source.start();
    expect(source.current()?.serviceDefaults.get('api')?.Protocol).toBe('grpc');
  });
  it('proxy-defaults Tracing and service-defaults AccessLogs (lucid-mesh fields) from etcd keys', async () => {
    const prefix = newPrefix();
    await put(prefix, 'proxy-defaults', 'global', {
      Tracing: { Collector: 'jaeger:4317', SamplingPercent: 5 },
    });
    await put(prefix, 'service-defaults', 'api', {
      AccessLogs: { Enabled: true, Type: 'stderr', TextFormat: '%RESPONSE_CODE%' },
    });
    const { source } = await startSource(prefix);
    const config = await until('the first configuration', () => source.current());
    expect(config.proxyDefaults?.Tracing).toEqual({
      Provider: 'opentelemetry',
      Collector: { host: 'jaeger', port: 4317 },
      SamplingPercent: 5,
    });
    expect(config.serviceDefaults.get('api')?.AccessLogs).toEqual({
      Enabled: true,
      Type: 'stderr',
      TextFormat: '%RESPONSE_CODE%',
    });
  });
});
