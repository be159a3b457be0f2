// The Consul source: pure pieces (index handling, rate limit, backoff, mapping) and the whole
// source against a real Consul agent (-dev, free loopback ports): mapping, blocking-query
// watches, errors, recovery, the connection cap. No Envoy here; test/e2e/consul-mesh.test.ts
// runs the mesh.
import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { renderBootstrap } from '../../src/bootstrap/render.js';
import type { Catalog, Service } from '../../src/catalog/model.js';
import { bootstrapCommand } from '../../src/cli/bootstrap-command.js';
import {
  ConsulClient,
  ConsulRequestError,
  type ConsulHealthEntry,
  type QueryResult,
} from '../../src/sources/consul/client.js';
import { ConsulSource } from '../../src/sources/consul/consul-source.js';
import { mapConsulCatalog } from '../../src/sources/consul/mapping.js';
import {
  ConsulFlagError,
  consulSourceOptionsFromFlags,
  type ConsulSourceOptions,
} from '../../src/sources/consul/options.js';
import {
  BlockingWatch,
  TokenBucket,
  backoffDelay,
  nextIndex,
} from '../../src/sources/consul/watch.js';
import type { CatalogSink } from '../../src/sources/source.js';
import type { Logger } from '../../src/telemetry/logger.js';
import { runCommand } from '../support/run-command.js';
import { CONSUL_SETUP_TIMEOUT_MS, startConsul, type ConsulAgent } from '../support/consul.js';
import { waitFor } from '../support/wait.js';

class RecordingSink implements CatalogSink {
  readonly updates: Catalog[] = [];
  readonly errors: Error[] = [];
  update(catalog: Catalog): void {
    this.updates.push(catalog);
  }
  error(err: Error): void {
    this.errors.push(err);
  }
  get latest(): Catalog | undefined {
    return this.updates[this.updates.length - 1];
  }
  service(name: string): Service | undefined {
    return this.latest?.services.find((s) => s.name === name);
  }
}

function captureLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: 'debug' },
    { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) },
  );
  return { logger, lines };
}

// --- pure pieces ------------------------------------------------------------------------------

describe('blocking-query index handling', () => {
  it('blocks on the last index, resets when it goes backwards, never blocks on < 1', () => {
    expect(nextIndex(0, 5)).toEqual({ index: 5, reset: false });
    expect(nextIndex(5, 5)).toEqual({ index: 5, reset: false });
    expect(nextIndex(5, 9)).toEqual({ index: 9, reset: false });
    expect(nextIndex(9, 3)).toEqual({ index: 0, reset: true });
    expect(nextIndex(0, 0)).toEqual({ index: 1, reset: false });
    expect(nextIndex(1, 0)).toEqual({ index: 0, reset: true });
  });

  function fakeWatch(answers: Array<number | Error>, perWatchRate = 1000) {
    const asked: number[] = [];
    const data: Array<{ body: number; changed: boolean; reset: boolean }> = [];
    const errors: Array<{ kind: string; failures: number }> = [];
    let i = 0;
    const watch = new BlockingWatch<number>({
      name: 'fake',
      waitMs: 5000,
      sharedLimiter: new TokenBucket(1000, 1000),
      perWatchRate,
      backoffMinMs: 1,
      backoffMaxMs: 2,
      fetch: async (q): Promise<QueryResult<number>> => {
        asked.push(q.index ?? 0);
        const a = answers[Math.min(i, answers.length - 1)]!;
        i++;
        if (i > answers.length) {
          // Past the script: behave like an idle blocking query until stopped.
          await new Promise<void>((resolve) =>
            q.signal?.addEventListener('abort', () => resolve()),
          );
          throw new ConsulRequestError('aborted', 'aborted');
        }
        if (a instanceof Error) throw a;
        return { body: a, index: a };
      },
      onData: (body, info) => data.push({ body, changed: info.changed, reset: info.reset }),
      onError: (err, failures) => errors.push({ kind: err.kind, failures }),
    });
    return { watch, asked, data, errors };
  }

  it('follows X-Consul-Index: index 0 first, then the last index; backwards → 0; errors → 0', async () => {
    const boom = new ConsulRequestError('connect ECONNREFUSED', 'unreachable');
    const { watch, asked, data, errors } = fakeWatch([5, 5, 7, 3, 4, boom, boom, 8]);
    watch.start();
    await waitFor(() => asked.length >= 9, { what: 'the scripted answers', timeoutMs: 2000 });
    await watch.stop();
    expect(asked).toEqual([0, 5, 5, 7, 0, 4, 0, 0, 8]);
    expect(data.map((d) => [d.body, d.changed, d.reset])).toEqual([
      [5, true, false],
      [5, false, false], // the wait expired, nothing changed
      [7, true, false],
      [3, true, true], // went backwards: re-read from 0
      [4, true, false],
      [8, true, false], // after errors: a non-blocking read first
    ]);
    expect(errors).toEqual([
      { kind: 'unreachable', failures: 1 },
      { kind: 'unreachable', failures: 2 },
    ]);
  });

  it('resync() abandons the blocking request and reads the current state at index 0', async () => {
    const asked: number[] = [];
    const errors: string[] = [];
    const watch = new BlockingWatch<number>({
      name: 'fake',
      waitMs: 5000,
      sharedLimiter: new TokenBucket(1000, 1000),
      backoffMinMs: 1,
      backoffMaxMs: 2,
      fetch: async (q) => {
        asked.push(q.index ?? 0);
        if ((q.index ?? 0) > 0) {
          await new Promise((_, reject) =>
            q.signal?.addEventListener('abort', () =>
              reject(new ConsulRequestError('aborted', 'aborted')),
            ),
          );
        }
        return { body: 7, index: 7 };
      },
      onData: () => undefined,
      onError: (err) => errors.push(err.message),
    });
    watch.start();
    await waitFor(() => asked.length === 2, { what: 'blocking on 7' });
    watch.resync();
    await waitFor(() => asked.length === 4, { what: 'blocking on 7 again' });
    await watch.stop();
    expect(asked).toEqual([0, 7, 0, 7]);
    expect(errors).toEqual([]);
  });

  it('retryNow() ends the backoff pause at once (the service list answers again)', async () => {
    const asked: number[] = [];
    const watch = new BlockingWatch<number>({
      name: 'fake',
      waitMs: 5000,
      sharedLimiter: new TokenBucket(1000, 1000),
      backoffMinMs: 60_000,
      backoffMaxMs: 60_000,
      fetch: async (q) => {
        asked.push(Date.now());
        if (asked.length === 1) throw new ConsulRequestError('boom', 'unreachable');
        await new Promise((resolve) => q.signal?.addEventListener('abort', resolve));
        throw new ConsulRequestError('aborted', 'aborted');
      },
      onData: () => undefined,
      onError: () => undefined,
    });
    watch.start();
    await waitFor(() => watch.failing, { what: 'the first failure' });
    await sleep(100);
    expect(asked).toHaveLength(1); // pausing for 30-60 s
    watch.retryNow();
    await waitFor(() => asked.length === 2, { what: 'the retry', timeoutMs: 1000 });
    await watch.stop(); // also while a request is open
  });

  it('does not busy-loop when Consul answers at once every time', async () => {
    const answers = Array.from({ length: 1000 }, () => 1);
    const { watch, asked } = fakeWatch(answers, 10);
    watch.start();
    await sleep(600);
    await watch.stop();
    // Burst of 10, then 10 per second: about 16 in 600 ms, not hundreds.
    expect(asked.length).toBeGreaterThan(5);
    expect(asked.length).toBeLessThanOrEqual(17);
  });

  it('token bucket and backoff stay within their bounds', async () => {
    const bucket = new TokenBucket(20, 2);
    const t0 = Date.now();
    for (let i = 0; i < 6; i++) await bucket.take();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150); // 2 free, 4 more at 50 ms each
    for (let attempt = 0; attempt < 40; attempt++) {
      const d = backoffDelay(attempt, 250, 10_000);
      const ceiling = Math.min(10_000, 250 * 2 ** attempt);
      expect(d).toBeGreaterThanOrEqual(ceiling / 2);
      expect(d).toBeLessThanOrEqual(ceiling);
    }
  });
});

describe('mapping Consul health entries to the catalog', () => {
  const node = { Node: 'n1', Address: '10.0.0.1' };
  const passing = (id: string) => ({ CheckID: id, Status: 'passing' });
  const entry = (
    service: Partial<ConsulHealthEntry['Service']> & { ID: string; Service: string },
    checks: Array<{ CheckID: string; Status: string }> = [passing('serfHealth')],
    n = node,
  ): ConsulHealthEntry => ({ Node: n, Service: { Port: 80, ...service }, Checks: checks });

  it('joins sidecar registrations, falls back to the node address, maps warning', () => {
    const byService = new Map<string, ConsulHealthEntry[]>([
      [
        'web',
        [
          entry({ ID: 'web-1', Service: 'web', Port: 8080, Tags: ['v1'], Meta: { a: 'b' } }),
          entry({ ID: 'web-2', Service: 'web', Address: '10.0.0.9', Port: 8081 }, [
            { CheckID: 'c', Status: 'warning' },
          ]),
        ],
      ],
      [
        'web-sidecar-proxy',
        [
          entry(
            {
              ID: 'web-1-sidecar-proxy',
              Service: 'web-sidecar-proxy',
              Kind: 'connect-proxy',
              Port: 21000,
              Proxy: {
                DestinationServiceName: 'web',
                DestinationServiceID: 'web-1',
                LocalServicePort: 8080,
              },
            },
            [passing('serfHealth'), passing('listening')],
          ),
        ],
      ],
      ['consul', [entry({ ID: 'consul', Service: 'consul', Port: 8300 })]],
    ]);
    const { catalog, problems } = mapConsulCatalog(byService, { warningAs: 'passing' });
    expect(problems).toEqual([]);
    expect(catalog).toEqual({
      services: [
        {
          name: 'web',
          protocol: 'http',
          instances: [
            {
              id: 'web-1-sidecar-proxy',
              address: '10.0.0.1',
              port: 8080,
              sidecarPort: 21000,
              health: 'passing',
              tags: ['v1'],
              meta: { a: 'b' },
            },
            { id: 'web-2', address: '10.0.0.9', port: 8081, health: 'passing', tags: [], meta: {} },
          ],
        },
      ],
    });
    const strict = mapConsulCatalog(byService, { warningAs: 'critical' });
    expect(strict.catalog.services[0]!.instances.find((i) => i.id === 'web-2')?.health).toBe(
      'critical',
    );
  });

  it("the sidecar's Proxy.LocalServiceAddress is where it reaches the app; a hostname is reported", () => {
    const sidecar = (app: string, address: string) =>
      entry({
        ID: `${app}-sidecar-proxy`,
        Service: 'web-sidecar-proxy',
        Kind: 'connect-proxy',
        Port: 21000,
        Proxy: {
          DestinationServiceName: 'web',
          DestinationServiceID: app,
          LocalServiceAddress: address,
          LocalServicePort: 8080,
        },
      });
    const byService = new Map<string, ConsulHealthEntry[]>([
      ['web', ['web-1', 'web-2', 'web-3'].map((id) => entry({ ID: id, Service: 'web' }))],
      [
        'web-sidecar-proxy',
        [sidecar('web-1', '10.1.2.3'), sidecar('web-2', '127.0.0.1'), sidecar('web-3', 'app')],
      ],
    ]);
    const { catalog, problems } = mapConsulCatalog(byService, { warningAs: 'passing' });
    expect(catalog.services[0]!.instances.map((i) => [i.id, i.localAppAddress])).toEqual([
      ['web-1-sidecar-proxy', '10.1.2.3'],
      ['web-2-sidecar-proxy', undefined],
      ['web-3-sidecar-proxy', undefined],
    ]);
    expect(problems).toEqual([
      'consul service "web" instance "web-3-sidecar-proxy": Proxy.LocalServiceAddress: expected an IP address, got "app"; 127.0.0.1 used',
    ]);
  });

  it("a sidecar's failing check makes the instance critical", () => {
    const { catalog } = mapConsulCatalog(
      new Map([
        ['web', [entry({ ID: 'web-1', Service: 'web' })]],
        [
          'web-sidecar-proxy',
          [
            entry(
              {
                ID: 'web-1-sidecar-proxy',
                Service: 'web-sidecar-proxy',
                Kind: 'connect-proxy',
                Port: 21000,
                Proxy: { DestinationServiceName: 'web', DestinationServiceID: 'web-1' },
              },
              [{ CheckID: 'listening', Status: 'critical' }],
            ),
          ],
        ],
      ]),
      { warningAs: 'passing' },
    );
    expect(catalog.services[0]!.instances[0]).toMatchObject({
      id: 'web-1-sidecar-proxy',
      port: 80,
      health: 'critical',
    });
  });

  it('Meta.protocol and outbound_port; bad instances and services are skipped and named', () => {
    const { catalog, problems } = mapConsulCatalog(
      new Map([
        [
          'db',
          [
            entry({ ID: 'db-1', Service: 'db', Meta: { protocol: 'tcp', outbound_port: '15432' } }),
            entry({ ID: 'db-2', Service: 'db', Meta: { protocol: 'tcp', outbound_port: 'x' } }),
          ],
        ],
        ['cache', [entry({ ID: 'cache-1', Service: 'cache', Meta: { protocol: 'tcp' } })]],
        ['rpc', [entry({ ID: 'rpc-1', Service: 'rpc', Meta: { protocol: 'grpc' } })]],
        [
          'odd',
          [
            entry({ ID: 'odd-1', Service: 'odd', Address: 'db.example.com' }),
            entry({ ID: 'odd-2', Service: 'odd', Meta: { protocol: 'udp' } }),
            entry({ ID: 'odd-3', Service: 'odd', Port: 0 }),
            entry({ ID: 'odd-4', Service: 'odd' }),
          ],
        ],
        ['Bad_Name', [entry({ ID: 'b-1', Service: 'Bad_Name' })]],
      ]),
      { warningAs: 'passing' },
    );
    expect(catalog.services.map((s) => [s.name, s.protocol, s.outboundPort])).toEqual([
      // A tcp service without a local port is kept (its cluster stays reachable).
      ['cache', 'tcp', undefined],
      ['db', 'tcp', 15432],
      ['odd', 'http', undefined],
      ['rpc', 'grpc', undefined],
    ]);
    expect(catalog.services[1]!.instances.map((i) => i.id)).toEqual(['db-1']);
    expect(catalog.services[2]!.instances.map((i) => i.id)).toEqual(['odd-4']);
    const text = problems.join('\n');
    expect(text).toContain(
      'consul service "db" instance "db-2": Meta.outbound_port: expected integer 1-65535, got "x"',
    );
    expect(text).toContain(
      'consul service "cache": tcp (from Meta.protocol) without Meta.outbound_port: served without a local listener',
    );
    expect(text).toContain(
      'consul service "odd" instance "odd-1": address: expected an IPv4 or IPv6 address, got "db.example.com"',
    );
    expect(text).toContain('consul service "odd" instance "odd-2": Meta.protocol: expected one of');
    expect(text).toContain('consul service "odd" instance "odd-3": port: expected integer 1-65535');
    expect(text).toContain('consul service "Bad_Name": name: expected a DNS label');
  });
});

describe('consul flags', () => {
  it('validates and names the flag and value', () => {
    const bad = (flags: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): string => {
      try {
        consulSourceOptionsFromFlags(flags, env);
      } catch (err) {
        expect(err).toBeInstanceOf(ConsulFlagError);
        return (err as Error).message;
      }
      throw new Error(`accepted ${JSON.stringify(flags)}`);
    };
    expect(bad({ consul: 'unix:///tmp/consul.sock' })).toContain('--consul: unix sockets');
    expect(bad({ consul: 'ftp://x:1' })).toContain('--consul: expected an http:// or https://');
    expect(bad({ consulWait: '5' })).toBe(
      '--consul-wait: expected a duration 1s-10m like 500ms, 30s or 5m, got "5"',
    );
    expect(bad({ consulWait: '11m' })).toContain('got "11m"');
    expect(bad({ consulWarning: 'healthy' })).toBe(
      '--consul-warning: expected one of passing | warning | critical, got "healthy"',
    );
    expect(bad({ consulMaxConnections: '2' })).toContain(
      '--consul-max-connections: expected an integer 4-10000, got "2"',
    );
    expect(bad({ consulRateLimit: 'fast' })).toContain('--consul-rate-limit');
    expect(bad({ consulSslVerify: 'maybe' })).toContain(
      '--consul-ssl-verify: expected true or false',
    );
    expect(bad({ consulCacert: '/nonexistent.pem', consul: 'https://c:8501' })).toContain(
      '--consul-cacert: cannot read "/nonexistent.pem": ENOENT',
    );
    expect(bad({}, { CONSUL_HOST: 'consul', CONSUL_PORT: 'http' })).toContain('CONSUL_PORT');

    const ok = consulSourceOptionsFromFlags({ consulWait: '1m30s', consulWarning: 'critical' }, {});
    expect(ok).toMatchObject({
      connection: { secure: false, host: '127.0.0.1', port: 8500 },
      waitMs: 90_000,
      warningAs: 'critical',
      maxConnections: 128,
    });
    // The seeds' CONSUL_HOST/CONSUL_PORT, when CONSUL_HTTP_ADDR (--consul) is not set.
    expect(
      consulSourceOptionsFromFlags({}, { CONSUL_HOST: 'consul', CONSUL_PORT: '8501' }).connection,
    ).toMatchObject({ host: 'consul', port: 8501 });
    expect(
      consulSourceOptionsFromFlags({ consul: 'https://[::1]:8501', consulDc: 'eu1' }, {})
        .connection,
    ).toMatchObject({ secure: true, host: '::1', port: 8501, datacenter: 'eu1' });
  });
});

// --- against a real Consul ----------------------------------------------------------------------

describe('ConsulSource against a real Consul agent', () => {
  let consul: ConsulAgent;
  const sources: ConsulSource[] = [];

  const newSource = (extra: Partial<ConsulSourceOptions> = {}, logger?: Logger): ConsulSource => {
    const source = new ConsulSource(
      {
        connection: { secure: false, host: '127.0.0.1', port: consul.httpPort },
        backoffMinMs: 100,
        backoffMaxMs: 500,
        waitMs: 20_000,
        ...extra,
      },
      logger ?? captureLogger().logger,
    );
    sources.push(source);
    return source;
  };

  const ttl = (id: string, status = 'passing') => ({ CheckID: id, TTL: '10m', Status: status });

  beforeAll(async () => {
    consul = await startConsul();
  }, CONSUL_SETUP_TIMEOUT_MS);
  afterEach(async () => {
    await Promise.all(sources.splice(0).map((s) => s.stop()));
  });
  afterAll(async () => {
    await consul?.stop();
  });

  it('first update after the full sync: plain services, sidecar registrations, protocols; bad entries skipped and logged', async () => {
    await consul.register({
      Name: 'api',
      ID: 'api-1',
      Address: '127.0.0.2',
      Port: 8080,
      Tags: ['v1', 'blue'],
      Meta: { version: '1.2.3' },
      Check: ttl('api-1-ttl'),
    });
    await consul.register({
      Name: 'api',
      ID: 'api-2',
      Port: 8081,
      Check: ttl('api-2-ttl', 'warning'),
    });
    await consul.register({
      Name: 'web',
      ID: 'web-1',
      Port: 9090,
      Meta: { protocol: 'grpc' },
      Check: ttl('web-1-ttl'),
      Connect: { SidecarService: { Port: 21001 } },
    });
    await consul.register({
      Name: 'db',
      ID: 'db-1',
      Port: 5432,
      Meta: { protocol: 'tcp', outbound_port: '15432' },
    });
    await consul.register({ Name: 'cache', ID: 'cache-1', Port: 6379, Meta: { protocol: 'tcp' } });
    await consul.register({ Name: 'odd', ID: 'odd-1', Address: 'odd.example.com', Port: 80 });
    await consul.register({ Name: 'odd', ID: 'odd-2', Port: 81 });

    const { logger, lines } = captureLogger();
    const sink = new RecordingSink();
    const source = newSource({}, logger);
    await source.start(sink);
    await waitFor(() => sink.updates.length > 0, { what: 'the first catalog' });
    await sleep(300);
    expect(sink.updates).toHaveLength(1); // one complete catalog, not a trickle of partial ones
    expect(sink.errors).toEqual([]);
    const catalog = sink.latest!;
    expect(catalog.services.map((s) => s.name)).toEqual(['api', 'cache', 'db', 'odd', 'web']);
    expect(sink.service('api')).toEqual({
      name: 'api',
      protocol: 'http',
      instances: [
        {
          id: 'api-1',
          address: '127.0.0.2',
          port: 8080,
          health: 'passing',
          tags: ['v1', 'blue'],
          meta: { version: '1.2.3' },
          datacenter: 'dc1', // the agent's (a -dev agent's is dc1)
        },
        // No service address: the node's. warning → passing by default.
        {
          id: 'api-2',
          address: '127.0.0.1',
          port: 8081,
          health: 'passing',
          tags: [],
          meta: {},
          datacenter: 'dc1',
        },
      ],
    });
    expect(sink.service('db')).toMatchObject({ protocol: 'tcp', outboundPort: 15432 });
    // The sidecar registration is not a service; it makes web-1 a meshed instance whose id is
    // the sidecar's service id (the Envoy node id). Critical: Consul's default "Connect Sidecar
    // Listening" check fails, nothing listens on 21001 here.
    expect(sink.service('web')).toEqual({
      name: 'web',
      protocol: 'grpc',
      instances: [
        {
          id: 'web-1-sidecar-proxy',
          address: '127.0.0.1',
          port: 9090,
          sidecarPort: 21001,
          health: 'critical',
          tags: [],
          meta: { protocol: 'grpc' },
          datacenter: 'dc1',
        },
      ],
    });
    expect(sink.service('odd')?.instances.map((i) => i.id)).toEqual(['odd-2']);
    const problems = lines
      .filter((l) => l.msg === 'Consul entry skipped or adjusted')
      .map((l) => l.problem);
    expect(problems).toContain(
      'consul service "odd" instance "odd-1": address: expected an IPv4 or IPv6 address, got "odd.example.com"; instance skipped',
    );
    expect(problems.join('\n')).toContain(
      'consul service "cache": tcp (from Meta.protocol) without Meta.outbound_port: served without a local listener',
    );
    expect(source.stats()).toMatchObject({
      synced: true,
      overflowServices: 0,
      failingWatches: 0,
      datacenter: 'dc1',
    });
  });

  it('blocking queries: a check change arrives within a second, and an idle catalog costs no requests', async () => {
    const sink = new RecordingSink();
    const source = newSource();
    await source.start(sink);
    await waitFor(() => sink.latest, { what: 'the first catalog' });

    const t0 = Date.now();
    await consul.setCheck('api-1-ttl', 'fail');
    await waitFor(
      () => sink.service('api')?.instances.find((i) => i.id === 'api-1')?.health === 'critical',
      { what: 'api-1 critical', timeoutMs: 5000, intervalMs: 10 },
    );
    expect(Date.now() - t0).toBeLessThan(1000);
    await consul.setCheck('api-1-ttl', 'pass');
    await waitFor(
      () => sink.service('api')?.instances.find((i) => i.id === 'api-1')?.health === 'passing',
      { what: 'api-1 passing again', timeoutMs: 5000, intervalMs: 10 },
    );

    await sleep(200);
    const before = source.stats().requestsTotal;
    await sleep(1500);
    expect(source.stats().requestsTotal - before).toBeLessThanOrEqual(1);
    // One blocking query per service name (web-sidecar-proxy included) plus the list.
    expect(source.stats().requestsInFlight).toBe(source.stats().dedicatedWatches + 1);
  });

  it('an app registered with its sidecar appears meshed from the start; deregistration removes it', async () => {
    const sink = new RecordingSink();
    const source = newSource();
    await source.start(sink);
    await waitFor(() => sink.latest, { what: 'the first catalog' });
    const seen = sink.updates.length;

    await consul.register({
      Name: 'pay',
      ID: 'pay-1',
      Port: 7070,
      Check: ttl('pay-1-ttl'),
      Connect: { SidecarService: { Port: 21002, Checks: [{ TTL: '10m', Status: 'passing' }] } },
    });
    await waitFor(() => sink.service('pay'), { what: 'pay listed' });
    const payInstances = sink.updates
      .slice(seen)
      .flatMap((c) => c.services.filter((s) => s.name === 'pay').flatMap((s) => s.instances));
    expect(payInstances.map((i) => [i.id, i.sidecarPort, i.health])).toEqual([
      ['pay-1-sidecar-proxy', 21002, 'passing'],
    ]);

    await consul.deregister('pay-1'); // also removes the sidecar Consul created for it
    await waitFor(() => sink.latest && !sink.service('pay'), { what: 'pay removed' });
  });

  it('Consul down: errors reported, no catalog pushed, the last one kept; recovers after a restart', async () => {
    await consul.register({
      Name: 'api',
      ID: 'api-1',
      Address: '127.0.0.2',
      Port: 8080,
      Check: ttl('api-1-ttl'),
    });
    const { logger, lines } = captureLogger();
    const sink = new RecordingSink();
    // A short restart grace: the check failed right after the restart below is held that long.
    const source = newSource({ restartGraceMs: 1_000 }, logger);
    await source.start(sink);
    await waitFor(() => sink.service('api'), { what: 'the first catalog' });
    const before = sink.updates.length;
    const last = sink.latest!;

    await consul.stop();
    await waitFor(() => sink.errors.length > 0, { what: 'an error reported' });
    // The first failure may be Consul's own shutdown answer (HTTP 500), then ECONNREFUSED.
    expect(sink.errors[0]!.message).toMatch(
      /^consul: \d+ of \d+ watches failing, keeping the last good catalog; Consul http:\/\/127\.0\.0\.1:\d+: GET \/v1\//,
    );
    await sleep(2000);
    expect(sink.updates.length).toBe(before); // nothing pushed, certainly not an empty catalog
    expect(source.stats().failingWatches).toBeGreaterThan(0);
    // Errors are reported to the sink at most every few seconds, not once per retry.
    expect(sink.errors.length).toBeLessThanOrEqual(2);

    // A restarted -dev agent has an empty catalog: register again.
    await consul.start();
    await consul.register({
      Name: 'api',
      ID: 'api-1',
      Address: '127.0.0.2',
      Port: 8080,
      Check: ttl('api-1-ttl'),
    });
    await consul.register({ Name: 'late', ID: 'late-1', Port: 8181 });
    await waitFor(() => sink.service('late'), {
      what: 'a change after the restart',
      timeoutMs: 15_000,
    });
    await waitFor(() => source.stats().failingWatches === 0, { what: 'every watch recovered' });
    expect(lines.map((l) => l.msg)).toContain('Consul reachable again');
    expect(last.services.length).toBeGreaterThan(0);

    // And the watches work again (blocking on the new agent's index). api-1 is the whole
    // service and its check is failed without output: the restart grace may hold it first.
    const failedAt = Date.now();
    await consul.setCheck('api-1-ttl', 'fail');
    await waitFor(() => sink.service('api')?.instances[0]?.health === 'critical', {
      what: 'a check change after the restart',
      timeoutMs: 4000,
    });
    expect(source.stats().reconnects).toBeGreaterThanOrEqual(1);
    expect(Date.now() - failedAt).toBeLessThan(4000);
    await consul.setCheck('api-1-ttl', 'pass');
  });

  it('not ready while Consul is unreachable at start; loads once it is up', async () => {
    await consul.stop();
    const sink = new RecordingSink();
    const source = newSource();
    await source.start(sink);
    await waitFor(() => sink.errors.length > 0, { what: 'an error reported' });
    expect(sink.errors[0]!.message).toContain('no catalog yet (waiting for the first full read)');
    expect(sink.updates).toEqual([]);
    await consul.start();
    await consul.register({ Name: 'api', ID: 'api-1', Port: 8080 });
    await waitFor(() => sink.service('api'), { what: 'the first catalog', timeoutMs: 15_000 });
  });
});

describe('lucid-mesh bootstrap --consul-service-id', () => {
  let consul: ConsulAgent;
  const run = (args: string[]) => runCommand(bootstrapCommand, args);

  const xds = ['--xds', '127.0.0.1:18000'];

  beforeAll(async () => {
    consul = await startConsul();
    await consul.register({
      Name: 'web',
      ID: 'web-1',
      Port: 9090,
      Connect: {
        SidecarService: {
          Port: 21000,
          // Ports of its own, as every sidecar sharing a host with others needs.
          Proxy: {
            Config: {
              lucid_admin_port: 16000,
              lucid_outbound_port: '16001',
              lucid_dns_port: 16053,
            },
          },
        },
      },
    });
    await consul.register({
      Name: 'api',
      ID: 'api-1',
      Port: 8080,
      Connect: { SidecarService: {} },
    });
    await consul.register({ Name: 'plain', ID: 'plain-1', Port: 8081 });
  }, CONSUL_SETUP_TIMEOUT_MS);
  afterAll(async () => {
    await consul?.stop();
  });

  it('fills node id, service and ports from the sidecar registration (by proxy or app id)', async () => {
    const expected = renderBootstrap({
      nodeId: 'web-1-sidecar-proxy',
      service: 'web',
      xds: '127.0.0.1:18000',
      adminPort: 16000,
      outboundPort: 16001,
      dnsPort: 16053,
      // The registration's datacenter (the dev agent's).
      datacenter: 'dc1',
    });
    for (const id of ['web-1-sidecar-proxy', 'web-1']) {
      const r = await run(['--consul-service-id', id, '--consul', consul.address, ...xds]);
      expect(r).toEqual({ code: 0, stdout: expected, stderr: '' });
    }
    // Defaults when the registration has no ports; flags given explicitly win.
    const api = await run([
      '--consul-service-id',
      'api-1',
      '--consul',
      `http://${consul.address}`,
      '--outbound-port',
      '17001',
      ...xds,
    ]);
    expect(api.stdout).toBe(
      renderBootstrap({
        nodeId: 'api-1-sidecar-proxy',
        service: 'api',
        xds: '127.0.0.1:18000',
        outboundPort: 17001,
        datacenter: 'dc1',
      }),
    );
  });

  it('warns when another sidecar on the same agent has the same outbound or DNS port', async () => {
    // Two sidecars on one host left at the defaults: the second one's outbound listener is
    // refused (no SO_REUSEPORT), and they share :15053 (DNS keeps it).
    await consul.register({
      Name: 'mail',
      ID: 'mail-1',
      Port: 2525,
      Connect: { SidecarService: {} },
    });
    try {
      const r = await run(['--consul-service-id', 'api-1', '--consul', consul.address, ...xds]);
      expect(r.code).toBe(0);
      expect(r.stderr.trim().split('\n')).toEqual([
        expect.stringMatching(
          /^lucid-mesh bootstrap: warning: outbound port 15001 is also that of "mail-1-sidecar-proxy", registered with this Consul agent .*only the first sidecar on the host to start binds 127\.0\.0\.1:15001 and the others' outbound listener is refused.*Proxy\.Config\.lucid_outbound_port/,
        ),
        expect.stringMatching(
          /^lucid-mesh bootstrap: warning: DNS port 15053 is also that of "mail-1-sidecar-proxy", .*share 127\.0\.0\.1:15053 and queries reach either one.*Proxy\.Config\.lucid_dns_port/,
        ),
      ]);
      // Its own ports (web's registration names them) or --dns-port 0: nothing to say.
      const web = await run(['--consul-service-id', 'web-1', '--consul', consul.address, ...xds]);
      expect(web.stderr).toBe('');
      const own = await run([
        '--consul-service-id',
        'api-1',
        '--consul',
        consul.address,
        '--outbound-port',
        '17001',
        '--dns-port',
        '0',
        ...xds,
      ]);
      expect(own).toMatchObject({ code: 0, stderr: '' });
    } finally {
      await consul.deregister('mail-1');
    }
  });

  it.each([
    [
      ['--consul-service-id', 'nope'],
      1,
      /no service "nope" is registered with the Consul agent at http:\/\/127\.0\.0\.1:\d+/,
    ],
    [
      ['--consul-service-id', 'plain-1'],
      1,
      /"plain-1" is not a sidecar registration \(Kind "", expected "connect-proxy"\) and has no "plain-1-sidecar-proxy"/,
    ],
    [
      ['--consul-service-id', 'web-1', '--consul', '127.0.0.1:1'],
      1,
      /--consul-service-id: Consul http:\/\/127\.0\.0\.1:1: GET \/v1\/agent\/services .*ECONNREFUSED/,
    ],
    [
      ['--consul-service-id', 'web-1', '--consul', 'unix:///x'],
      2,
      /--consul: unix sockets are not supported/,
    ],
    [
      ['--consul-service-id', 'web-1', '--admin-port', '16001'],
      2,
      /--outbound-port: expected a port different from --admin-port/,
    ],
  ])('%j -> exit %i', async (args, code, message) => {
    const withAddr = args.includes('--consul') ? args : [...args, '--consul', consul.address];
    const r = await run([...withAddr, ...xds]);
    expect(r.code).toBe(code);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^lucid-mesh bootstrap: [^\n]+\n$/);
    expect(r.stderr).toMatch(message);
  });
});

describe('ConsulSource and the per-client connection cap', () => {
  let consul: ConsulAgent;
  const sources: ConsulSource[] = [];
  beforeAll(async () => {
    // Consul counts every connection from 127.0.0.1 against this cap.
    consul = await startConsul({ maxConnsPerClient: 24 });
    for (let i = 0; i < 14; i++) {
      const n = String(i).padStart(2, '0');
      await consul.register({
        Name: `svc-${n}`,
        ID: `svc-${n}-1`,
        Port: 9000 + i,
        Check: { CheckID: `svc-${n}-ttl`, TTL: '10m', Status: 'passing' },
      });
    }
  }, CONSUL_SETUP_TIMEOUT_MS);
  afterEach(async () => {
    await Promise.all(sources.splice(0).map((s) => s.stop()));
  });
  afterAll(async () => {
    await consul?.stop();
  });

  it('more services than connections: the overflow is refreshed on every change, nothing stalls', async () => {
    const { logger, lines } = captureLogger();
    const sink = new RecordingSink();
    // 10 connections: the list, the trigger, 4 refetch slots, 4 per-service watches.
    const source = new ConsulSource(
      {
        connection: { secure: false, host: '127.0.0.1', port: consul.httpPort },
        maxConnections: 10,
        waitMs: 20_000,
      },
      logger,
    );
    sources.push(source);
    await source.start(sink);
    await waitFor(() => sink.latest?.services.length === 14, { what: 'all 14 services' });
    expect(source.stats()).toMatchObject({
      services: 14,
      dedicatedWatches: 4,
      overflowServices: 10,
    });
    expect(
      lines.some((l) =>
        String(l.msg).startsWith('more Consul services than blocking-query connections'),
      ),
    ).toBe(true);

    // A health change of an overflow service (svc-13: names are assigned in order).
    await consul.setCheck('svc-13-ttl', 'fail');
    await waitFor(() => sink.service('svc-13')?.instances[0]?.health === 'critical', {
      what: 'svc-13 critical',
      timeoutMs: 3000,
    });
    // A registration change (new port) of an overflow service.
    await consul.register({ Name: 'svc-12', ID: 'svc-12-1', Port: 9912 });
    await waitFor(() => sink.service('svc-12')?.instances[0]?.port === 9912, {
      what: 'svc-12 on its new port',
      timeoutMs: 3000,
    });
    // A dedicated service goes away: an overflow service takes its slot.
    await consul.deregister('svc-00-1');
    await waitFor(() => sink.latest && !sink.service('svc-00'), { what: 'svc-00 removed' });
    expect(source.stats()).toMatchObject({
      services: 13,
      dedicatedWatches: 4,
      overflowServices: 9,
    });
    expect(source.stats().requestsInFlight).toBeLessThanOrEqual(10);
    expect(sink.errors).toEqual([]);
  });

  it('asking for more connections than Consul allows is reported, not a silent stall', async () => {
    // Occupy most of Consul's budget for this IP, as other clients on the host would.
    const hogs = Array.from(
      { length: 20 },
      () => new ConsulClient({ secure: false, host: '127.0.0.1', port: consul.httpPort }),
    );
    const abort = new AbortController();
    setMaxListeners(hogs.length + 1, abort.signal);
    const held = hogs.map((c) =>
      c
        .servicesList({ index: 1_000_000, waitMs: 30_000, signal: abort.signal })
        .catch(() => undefined),
    );
    try {
      await sleep(300);
      const sink = new RecordingSink();
      const source = new ConsulSource(
        {
          connection: { secure: false, host: '127.0.0.1', port: consul.httpPort },
          maxConnections: 64,
          waitMs: 20_000,
          backoffMaxMs: 1000,
        },
        captureLogger().logger,
      );
      sources.push(source);
      await source.start(sink);
      await waitFor(
        () => sink.errors.some((e) => e.message.includes('http_max_conns_per_client')),
        {
          what: 'the connection cap reported',
          timeoutMs: 10_000,
        },
      );
    } finally {
      abort.abort();
      await Promise.all(held);
      for (const c of hogs) c.destroy();
    }
  });
});
