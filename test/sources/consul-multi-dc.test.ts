// The Consul source across datacenters: pure pieces (budget split, multi-datacenter mapping
// with locality, flags) and the whole source against two REAL Consul datacenters on loopback
// (two -dev server agents, -datacenter dc1 / dc2, WAN-joined), read through dc1's agent with
// ?dc=dc2: both datacenters' instances with their locality, changes in dc2, dc2 going away
// (kept until --remote-stale-after, then dropped, back when dc2 is), dc2 down at start.
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Catalog, Instance, Service } from '../../src/catalog/model.js';
import { consulSourcesFromFlags } from '../../src/sources/consul/config-entries.js';
import type { ConsulHealthEntry } from '../../src/sources/consul/client.js';
import {
  catalogConnectionsNeeded,
  dedicatedLimits,
  dedicatedPool,
} from '../../src/sources/consul/budget.js';
import { ConsulSource } from '../../src/sources/consul/consul-source.js';
import { mapConsulDatacenters } from '../../src/sources/consul/mapping.js';
import {
  ConsulFlagError,
  consulSourceOptionsFromFlags,
  type ConsulSourceOptions,
} from '../../src/sources/consul/options.js';
import type { CatalogSink } from '../../src/sources/source.js';
import type { Logger } from '../../src/telemetry/logger.js';
import { CONSUL_SETUP_TIMEOUT_MS, startConsul, type ConsulAgent } from '../support/consul.js';
import { waitFor } from '../support/wait.js';

class RecordingSink implements CatalogSink {
  readonly updates: Array<{ at: number; catalog: Catalog }> = [];
  readonly errors: Error[] = [];
  update(catalog: Catalog): void {
    this.updates.push({ at: Date.now(), catalog });
  }
  error(err: Error): void {
    this.errors.push(err);
  }
  get latest(): Catalog | undefined {
    return this.updates.at(-1)?.catalog;
  }
  service(name: string): Service | undefined {
    return this.latest?.services.find((s) => s.name === name);
  }
  instance(service: string, id: string): Instance | undefined {
    return this.service(service)?.instances.find((i) => i.id === id);
  }
  /** Instance ids of the latest catalog in one datacenter, sorted. */
  idsIn(datacenter: string): string[] {
    return (this.latest?.services ?? [])
      .flatMap((s) => s.instances)
      .filter((i) => i.datacenter === datacenter)
      .map((i) => i.id)
      .sort();
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

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

// --- pure pieces ------------------------------------------------------------------------------

describe('connection budget across datacenters', () => {
  it('reserves list, trigger and refetch connections per datacenter', () => {
    expect(catalogConnectionsNeeded(0)).toBe(7); // 6 local + 1 service watch
    expect(catalogConnectionsNeeded(2)).toBe(15); // + 4 per remote datacenter
    expect(dedicatedPool(122, 0)).toBe(116);
    expect(dedicatedPool(122, 2)).toBe(108);
  });

  it('the local datacenter first; the remote ones share the rest max-min fair', () => {
    expect(dedicatedLimits(108, [50])).toEqual([50]);
    expect(dedicatedLimits(108, [200])).toEqual([108]);
    // Local takes 50; 58 left: dc3 needs only 5, dc2 gets the other 53.
    expect(dedicatedLimits(108, [50, 100, 5])).toEqual([50, 53, 5]);
    // Both remote ones want more than they can have: an equal split (rounding to the later).
    expect(dedicatedLimits(108, [50, 100, 100])).toEqual([50, 29, 29]);
    expect(dedicatedLimits(108, [51, 100, 100])).toEqual([51, 28, 29]);
    // A big local datacenter leaves the remote ones to their change trigger.
    expect(dedicatedLimits(108, [300, 10, 10])).toEqual([108, 0, 0]);
  });
});

describe('mapping several datacenters', () => {
  const entry = (
    id: string,
    service: string,
    opts: {
      meta?: Record<string, string>;
      node?: string;
      nodeMeta?: Record<string, string>;
    } = {},
  ): ConsulHealthEntry => ({
    Node: { Node: opts.node ?? 'n1', Address: '10.0.0.1', Meta: opts.nodeMeta ?? {} },
    Service: { ID: id, Service: service, Port: 80, Meta: opts.meta ?? {} },
    Checks: [{ CheckID: 'serfHealth', Status: 'passing' }],
  });

  it('datacenter from where it was read; region/zone from Meta, else Node.Meta; ids unique across datacenters', () => {
    const { catalog, problems } = mapConsulDatacenters(
      [
        {
          datacenter: 'dc1',
          byService: new Map([
            [
              'api',
              [
                entry('api-1', 'api', {
                  meta: { zone: 'z1a' },
                  nodeMeta: { region: 'r1', zone: 'z1b' },
                }),
              ],
            ],
            ['web', [entry('web-1', 'web')]],
            // A meshed instance: the sidecar registration's Meta comes before the node's.
            ['pay', [entry('pay-1', 'pay', { nodeMeta: { region: 'r1', zone: 'z1b' } })]],
            [
              'pay-sidecar-proxy',
              [
                {
                  Node: { Node: 'n1', Address: '10.0.0.1', Meta: { region: 'r1', zone: 'z1b' } },
                  Service: {
                    ID: 'pay-1-sidecar-proxy',
                    Service: 'pay-sidecar-proxy',
                    Kind: 'connect-proxy',
                    Port: 21000,
                    Meta: { zone: 'z1c' },
                    Proxy: { DestinationServiceName: 'pay', DestinationServiceID: 'pay-1' },
                  },
                  Checks: [],
                },
              ],
            ],
          ]),
        },
        {
          datacenter: 'dc2',
          byService: new Map([
            [
              'api',
              [
                entry('api-2', 'api', { node: 'n2', nodeMeta: { region: 'r2', zone: 'z2' } }),
                // Same node name as in dc1, another datacenter: no confusion.
                entry('api-3', 'api', { meta: { region: 'r2', zone: '' } }),
              ],
            ],
            // An id dc1 already has (in another service): the remote one is skipped.
            ['cache', [entry('web-1', 'cache'), entry('cache-2', 'cache')]],
            ['odd', [entry('odd-1', 'odd', { nodeMeta: { zone: 'no spaces' } })]],
          ]),
        },
      ],
      { warningAs: 'passing' },
    );
    const located = (s: string) =>
      catalog.services
        .find((x) => x.name === s)
        ?.instances.map((i) => [i.id, i.datacenter, i.region, i.zone]);
    expect(located('api')).toEqual([
      ['api-1', 'dc1', 'r1', 'z1a'],
      ['api-2', 'dc2', 'r2', 'z2'],
      ['api-3', 'dc2', 'r2', undefined],
    ]);
    expect(located('web')).toEqual([['web-1', 'dc1', undefined, undefined]]);
    expect(located('pay')).toEqual([['pay-1-sidecar-proxy', 'dc1', 'r1', 'z1c']]);
    expect(located('cache')).toEqual([['cache-2', 'dc2', undefined, undefined]]);
    expect(located('odd')).toEqual([]); // its only instance is skipped
    expect(problems).toEqual([
      'consul datacenter "dc2" service "odd" instance "odd-1": Node.Meta.zone: expected a name (a-z, 0-9, . _ -), got "no spaces"; instance skipped',
      'consul datacenter "dc2" service "cache" instance "web-1": id: duplicate (also in service "web" of datacenter "dc1"); ids are Envoy node ids and must be unique across datacenters; instance skipped',
    ]);
  });
});

describe('--consul-datacenters and --remote-stale-after', () => {
  const parse = (flags: Record<string, unknown>): ConsulSourceOptions =>
    consulSourceOptionsFromFlags(flags, {});
  const bad = (flags: Record<string, unknown>): string => {
    try {
      parse(flags);
    } catch (err) {
      expect(err).toBeInstanceOf(ConsulFlagError);
      return (err as Error).message;
    }
    throw new Error(`accepted ${JSON.stringify(flags)}`);
  };

  it('parses the list (the local datacenter is implied and left out) and the stale time', () => {
    expect(parse({})).toMatchObject({ remoteStaleAfterMs: 60_000 });
    expect(parse({}).remoteDatacenters).toBeUndefined();
    expect(parse({ consulDatacenters: ' dc2, dc3,,dc2 ', remoteStaleAfter: '2s' })).toMatchObject({
      remoteDatacenters: ['dc2', 'dc3'],
      remoteStaleAfterMs: 2000,
    });
    expect(parse({ consulDc: 'dc1', consulDatacenters: 'dc1,dc2' }).remoteDatacenters).toEqual([
      'dc2',
    ]);
    expect(bad({ consulDatacenters: 'dc2,dc 3' })).toBe(
      '--consul-datacenters: expected datacenter names (letters, digits, . _ -) separated by commas, got "dc 3" in "dc2,dc 3"',
    );
    expect(bad({ remoteStaleAfter: '5' })).toBe(
      '--remote-stale-after: expected a duration 1s-60m like 500ms, 30s or 5m, got "5"',
    );
    expect(bad({ consulDatacenters: 'dc2,dc3', consulMaxConnections: '14' })).toMatch(
      /^--consul-max-connections: expected at least 15 with --consul-datacenters dc2,dc3/,
    );
    // With the traffic config entries (6 more connections) on the same budget.
    expect(() =>
      consulSourcesFromFlags(
        { consulDatacenters: 'dc2', consulMaxConnections: '16' },
        captureLogger().logger,
        {},
      ),
    ).toThrow(/^--consul-max-connections: expected at least 17 with traffic configuration/);
  });
});

// --- two real datacenters ---------------------------------------------------------------------

describe('ConsulSource across two WAN-joined Consul datacenters', () => {
  let dc1: ConsulAgent | undefined;
  let dc2: ConsulAgent | undefined;
  const sources: ConsulSource[] = [];
  const ttl = (id: string) => ({ CheckID: id, TTL: '10m', Status: 'passing' });

  const a1 = (): ConsulAgent => dc1!;
  const a2 = (): ConsulAgent => dc2!;

  const newSource = (extra: Partial<ConsulSourceOptions> = {}, logger?: Logger): ConsulSource => {
    const source = new ConsulSource(
      {
        connection: { secure: false, host: '127.0.0.1', port: a1().httpPort },
        remoteDatacenters: ['dc2'],
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

  /** dc2's registrations (again after a restart: a -dev agent forgets them). */
  const registerDc2 = async (): Promise<void> => {
    await a2().register({ Name: 'api', ID: 'api-dc2-1', Port: 8080, Check: ttl('api-dc2-1-ttl') });
    await a2().register({
      Name: 'api',
      ID: 'api-dc2-2',
      Address: '127.0.0.3',
      Port: 8080,
      Meta: { zone: 'eu-west-1b' },
      Check: ttl('api-dc2-2-ttl'),
    });
  };

  /** dc1's agent forwards ?dc=dc2 (the WAN federation has formed). */
  const dc2Readable = async (): Promise<boolean> => {
    const res = await a1().api('GET', '/v1/catalog/services?dc=dc2');
    return res.status === 200;
  };

  beforeAll(async () => {
    dc1 = await startConsul({
      datacenter: 'dc1',
      node: 'n1',
      nodeMeta: { region: 'us-east', zone: 'us-east-1a' },
    });
    dc2 = await startConsul({
      datacenter: 'dc2',
      node: 'n2',
      nodeMeta: { region: 'eu-west', zone: 'eu-west-1a' },
      retryJoinWan: [dc1.wanAddress],
    });
    await waitFor(dc2Readable, { what: 'dc2 readable through dc1 (?dc=dc2)', timeoutMs: 30_000 });
    await a1().register({
      Name: 'api',
      ID: 'api-dc1-1',
      Port: 8080,
      Meta: { zone: 'us-east-1c' },
      Check: ttl('api-dc1-1-ttl'),
    });
    await a1().register({
      Name: 'web',
      ID: 'web-1',
      Port: 9090,
      Check: ttl('web-1-ttl'),
      Connect: { SidecarService: { Port: 21000, Checks: [{ TTL: '10m', Status: 'passing' }] } },
    });
    await registerDc2();
  }, CONSUL_SETUP_TIMEOUT_MS);
  afterEach(async () => {
    await Promise.all(sources.splice(0).map((s) => s.stop()));
  });
  afterAll(async () => {
    await Promise.all(sources.splice(0).map((s) => s.stop()));
    await Promise.allSettled([dc2?.stop(), dc1?.stop()]);
  });

  it('one first catalog with both datacenters, each instance located; an id taken in dc1 is skipped in dc2', async () => {
    // A dc2 instance whose id dc1 already uses, and one whose zone is not a name.
    await a2().register({ Name: 'api', ID: 'api-dc1-1', Port: 9191 });
    await a2().register({ Name: 'odd', ID: 'odd-1', Port: 7070, Meta: { zone: 'a b' } });
    try {
      const { logger, lines } = captureLogger();
      const sink = new RecordingSink();
      // dc1 named as well: it is the local one, watched once.
      const source = newSource({ remoteDatacenters: ['dc1', 'dc2'] }, logger);
      await source.start(sink);
      await waitFor(() => sink.latest, { what: 'the first catalog' });
      await sleep(300);
      expect(sink.updates).toHaveLength(1); // complete at once, not local first then dc2
      const located = sink.service('api')?.instances.map((i) => ({
        id: i.id,
        address: i.address,
        datacenter: i.datacenter,
        region: i.region,
        zone: i.zone,
      }));
      expect(located).toEqual([
        // Meta.zone wins over the node's; the region is the node's.
        {
          id: 'api-dc1-1',
          address: '127.0.0.1',
          datacenter: 'dc1',
          region: 'us-east',
          zone: 'us-east-1c',
        },
        {
          id: 'api-dc2-1',
          address: '127.0.0.1',
          datacenter: 'dc2',
          region: 'eu-west',
          zone: 'eu-west-1a',
        },
        {
          id: 'api-dc2-2',
          address: '127.0.0.3',
          datacenter: 'dc2',
          region: 'eu-west',
          zone: 'eu-west-1b',
        },
      ]);
      expect(sink.service('web')?.instances).toEqual([
        {
          id: 'web-1-sidecar-proxy',
          address: '127.0.0.1',
          port: 9090,
          sidecarPort: 21000,
          health: 'passing',
          tags: [],
          meta: {},
          datacenter: 'dc1',
          region: 'us-east',
          zone: 'us-east-1a',
        },
      ]);
      expect(sink.service('odd')?.instances).toEqual([]);
      const problems = lines
        .filter((l) => l.msg === 'Consul entry skipped or adjusted')
        .map((l) => l.problem);
      expect(problems).toEqual([
        'consul datacenter "dc2" service "odd" instance "odd-1": Meta.zone: expected a name (a-z, 0-9, . _ -), got "a b"; instance skipped',
        'consul datacenter "dc2" service "api" instance "api-dc1-1": id: duplicate (also in service "api" of datacenter "dc1"); ids are Envoy node ids and must be unique across datacenters; instance skipped',
      ]);
      expect(source.stats()).toMatchObject({
        datacenter: 'dc1',
        synced: true,
        failingWatches: 0,
        overflowServices: 0,
        datacenters: {
          dc1: { local: true, synced: true, services: 3 },
          dc2: { local: false, synced: true, reachable: true, dropped: false, services: 2 },
        },
      });
      expect(Object.keys(source.stats().datacenters)).toEqual(['dc1', 'dc2']);
      expect(sink.errors).toEqual([]);
    } finally {
      await a2().deregister('api-dc1-1');
      await a2().deregister('odd-1');
    }
  });

  it('registration and health changes in dc2 reach the catalog (blocking queries through dc1)', async () => {
    const sink = new RecordingSink();
    const source = newSource();
    await source.start(sink);
    await waitFor(() => sink.instance('api', 'api-dc2-1'), { what: 'the first catalog' });

    const registered: number[] = [];
    const checked: number[] = [];
    for (let i = 0; i < 5; i++) {
      const id = `api-dc2-new-${i}`;
      const t0 = Date.now();
      await a2().register({ Name: 'api', ID: id, Port: 8100 + i });
      await waitFor(() => sink.instance('api', id), { what: id, timeoutMs: 5000, intervalMs: 5 });
      registered.push(Date.now() - t0);
      const t1 = Date.now();
      await a2().setCheck('api-dc2-1-ttl', i % 2 === 0 ? 'fail' : 'pass');
      const want = i % 2 === 0 ? 'critical' : 'passing';
      await waitFor(() => sink.instance('api', 'api-dc2-1')?.health === want, {
        what: `api-dc2-1 ${want}`,
        timeoutMs: 5000,
        intervalMs: 5,
      });
      checked.push(Date.now() - t1);
      await a2().deregister(id);
      await waitFor(() => !sink.instance('api', id), { what: `${id} gone`, intervalMs: 5 });
    }
    await a2().setCheck('api-dc2-1-ttl', 'pass');
    console.log(
      `dc2 change → catalog, read through dc1's agent (?dc=dc2), 5 each: ` +
        `check status median ${median(checked)} ms (max ${Math.max(...checked)}); ` +
        `new plain instance median ${median(registered)} ms (max ${Math.max(...registered)}, incl. the 250 ms sidecar grace)`,
    );
    expect(median(checked)).toBeLessThan(500);
    expect(median(registered)).toBeLessThan(1000);
    expect(sink.errors).toEqual([]);
  });

  it('a small connection budget: dc1 first, dc2 on its change trigger, and changes still arrive', async () => {
    const sink = new RecordingSink();
    // 12 = dc1's 6 reserved + dc2's 4 reserved + 2 service watches, both dc1's.
    const source = newSource({ maxConnections: 12 });
    await source.start(sink);
    await waitFor(() => sink.instance('api', 'api-dc2-2'), { what: 'the first catalog' });
    expect(source.stats().datacenters).toMatchObject({
      dc1: { services: 3, dedicatedWatches: 2, overflowServices: 1 },
      dc2: { services: 1, dedicatedWatches: 0, overflowServices: 1 },
    });
    await a2().register({ Name: 'api', ID: 'api-dc2-3', Port: 8083 });
    await waitFor(() => sink.instance('api', 'api-dc2-3'), { what: 'api-dc2-3', timeoutMs: 5000 });
    await a2().setCheck('api-dc2-2-ttl', 'fail');
    await waitFor(() => sink.instance('api', 'api-dc2-2')?.health === 'critical', {
      what: 'api-dc2-2 critical',
      timeoutMs: 5000,
    });
    expect(source.stats().requestsInFlight).toBeLessThanOrEqual(12);
    await a2().setCheck('api-dc2-2-ttl', 'pass');
    await a2().deregister('api-dc2-3');
    await waitFor(() => sink.latest && !sink.instance('api', 'api-dc2-3'), { what: 'cleanup' });
  });

  it('dc2 gone: its instances kept until --remote-stale-after, then dropped, dc1 unaffected; back when dc2 is', async () => {
    const { logger, lines } = captureLogger();
    const sink = new RecordingSink();
    const source = newSource({ remoteStaleAfterMs: 2000 }, logger);
    await source.start(sink);
    await waitFor(() => sink.idsIn('dc2').length === 2, { what: 'the first catalog' });
    const dc1Before = sink.idsIn('dc1');
    const dc1Service = sink.service('web');
    expect(dc1Before).toEqual(['api-dc1-1', 'web-1-sidecar-proxy']);

    const stoppedAt = Date.now();
    await a2().stop();
    await sleep(Math.max(0, stoppedAt + 1200 - Date.now()));
    // Within the stale time: dc2's last good instances stay.
    expect(sink.idsIn('dc2')).toEqual(['api-dc2-1', 'api-dc2-2']);
    expect(source.stats().datacenters.dc2).toMatchObject({ reachable: false, dropped: false });
    await waitFor(() => sink.idsIn('dc2').length === 0, {
      what: 'dc2 dropped',
      timeoutMs: 10_000,
      intervalMs: 10,
    });
    const droppedAfter = Date.now() - stoppedAt;
    expect(droppedAfter).toBeGreaterThanOrEqual(1900);
    expect(droppedAfter).toBeLessThan(4000);
    expect(sink.idsIn('dc1')).toEqual(dc1Before);
    expect(sink.service('web')).toEqual(dc1Service);
    expect(source.stats().datacenters.dc2).toMatchObject({ dropped: true, synced: false });
    const drop = lines.find((l) => String(l.msg).startsWith('Consul datacenter "dc2" unreadable'));
    expect(drop?.msg).toMatch(
      /^Consul datacenter "dc2" unreadable for 2(\.\d+)?s \(--remote-stale-after 2s\); dropping its 2 instances until it is read again$/,
    );
    // Reported to the sink too: the control plane counts it in lucid_mesh_source_errors_total.
    expect(sink.errors.some((e) => e.message.startsWith('consul: Consul datacenter "dc2"'))).toBe(
      true,
    );
    // dc1 kept being served: every catalog since the stop has dc1's instances.
    const since = sink.updates.filter((u) => u.at >= stoppedAt);
    for (const u of since) {
      const ids = u.catalog.services
        .flatMap((s) => s.instances)
        .filter((i) => i.datacenter === 'dc1')
        .map((i) => i.id)
        .sort();
      expect(ids).toEqual(dc1Before);
    }

    // dc2 back (a -dev agent starts empty and rejoins the WAN by itself): its instances return.
    await a2().start();
    await registerDc2();
    const registeredAt = Date.now();
    await waitFor(() => sink.idsIn('dc2').length === 2, {
      what: 'dc2 back in the catalog',
      timeoutMs: 30_000,
      intervalMs: 10,
    });
    console.log(
      `dc2 stopped → its instances dropped after ${droppedAfter} ms (--remote-stale-after 2s); ` +
        `dc2 restarted and re-registered → back in the catalog after ${Date.now() - registeredAt} ms`,
    );
    expect(source.stats().datacenters.dc2).toMatchObject({
      dropped: false,
      synced: true,
      reachable: true,
    });
    expect(lines.map((l) => l.msg)).toContain(
      'Consul datacenter read again; its instances are back in the catalog',
    );
    expect(sink.idsIn('dc1')).toEqual(dc1Before);
  });

  it('dc2 down at start does not hold back the first catalog; dc2 joins when it is up', async () => {
    await a2().stop();
    try {
      const sink = new RecordingSink();
      const source = newSource({ remoteStaleAfterMs: 2000 });
      const t0 = Date.now();
      await source.start(sink);
      await waitFor(() => sink.latest, { what: 'the first catalog', timeoutMs: 10_000 });
      const firstAfter = Date.now() - t0;
      console.log(`dc2 down at start: the first catalog (dc1) after ${firstAfter} ms`);
      expect(firstAfter).toBeLessThan(2000);
      expect(sink.idsIn('dc1')).toEqual(['api-dc1-1', 'web-1-sidecar-proxy']);
      expect(sink.idsIn('dc2')).toEqual([]);
      expect(
        sink.errors.some((e) => e.message.startsWith('consul: datacenter "dc2": 1 of 1 watches')),
      ).toBe(true);
      expect(source.stats().datacenters.dc2).toMatchObject({ synced: false, reachable: false });

      await a2().start();
      await registerDc2();
      await waitFor(() => sink.idsIn('dc2').length === 2, {
        what: 'dc2 joining',
        timeoutMs: 30_000,
      });
    } finally {
      if (!a2().running()) {
        await a2().start();
        await registerDc2();
      }
    }
  });
});
