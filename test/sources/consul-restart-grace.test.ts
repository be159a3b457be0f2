// The restart-grace rule (src/sources/consul/restart-grace.ts): which critical readings right
// after a Consul agent comes back keep an instance's published health, and for how long. The
// real restart under load is test/e2e/outage-consul.test.ts.
import { describe, expect, it } from 'vitest';
import type { Catalog, Health, Instance } from '../../src/catalog/model.js';
import type { ConsulHealthEntry } from '../../src/sources/consul/client.js';
import { mapConsulCatalog } from '../../src/sources/consul/mapping.js';
import { ConsulFlagError, consulSourceOptionsFromFlags } from '../../src/sources/consul/options.js';
import { applyRestartGrace, healthByInstance } from '../../src/sources/consul/restart-grace.js';

const inst = (id: string, health: Health, datacenter?: string): Instance => ({
  id,
  address: '127.0.0.1',
  port: 9000,
  health,
  tags: [],
  meta: {},
  ...(datacenter !== undefined ? { datacenter } : {}),
});

const catalogOf = (instances: Instance[], name = 'api'): Catalog => ({
  services: [{ name, protocol: 'http', instances }],
});

const NOW = 1_000_000;
const GRACE_END = NOW + 15_000;
const inGrace = (): number => GRACE_END;

function healthAfter(
  now: Catalog,
  published: Catalog,
  notRun: string[] = [],
  graceUntil: (dc: string | undefined) => number | undefined = inGrace,
) {
  const r = applyRestartGrace({
    catalog: now,
    published: healthByInstance(published),
    criticalNotRun: new Set(notRun),
    graceUntil,
    now: NOW,
  });
  return { health: healthByInstance(r.catalog), held: r.held, nextCheckAt: r.nextCheckAt };
}

describe('applyRestartGrace', () => {
  const before = catalogOf([inst('api-1', 'passing'), inst('api-2', 'passing')]);

  it('keeps the published health of an instance whose critical checks have not run yet', () => {
    const r = healthAfter(
      catalogOf([inst('api-1', 'critical'), inst('api-2', 'passing')]),
      before,
      ['api/api-1'],
    );
    expect(r.health.get('api/api-1')).toBe('passing');
    expect([...r.held]).toEqual([['api/api-1', 'check-not-run']]);
    expect(r.nextCheckAt).toBe(GRACE_END);
  });

  it('believes a check that ran and failed on one instance among healthy ones at once', () => {
    const r = healthAfter(catalogOf([inst('api-1', 'critical'), inst('api-2', 'passing')]), before);
    expect(r.health.get('api/api-1')).toBe('critical');
    expect(r.held.size).toBe(0);
    expect(r.nextCheckAt).toBeUndefined();
  });

  it('does not believe every instance of a service turning critical at once until the grace ends', () => {
    const all = catalogOf([inst('api-1', 'critical'), inst('api-2', 'critical')]);
    const r = healthAfter(all, before);
    expect(r.health.get('api/api-1')).toBe('passing');
    expect(r.health.get('api/api-2')).toBe('passing');
    expect(r.held.get('api/api-2')).toBe('whole-service-critical');
    // The grace over: published as Consul says.
    const over = healthAfter(all, before, [], () => NOW);
    expect(over.health.get('api/api-1')).toBe('critical');
    expect(over.held.size).toBe(0);
  });

  it('an instance held for a check that has not run does not make the rest "the whole service"', () => {
    // After a -dev agent restart: web-1's restored sidecar check has not run, web-2's app
    // fails its TTL check. web-1 is held; web-2's failure is believed.
    const r = healthAfter(
      catalogOf([inst('api-1', 'critical'), inst('api-2', 'critical')]),
      before,
      ['api/api-1'],
    );
    expect(r.health.get('api/api-1')).toBe('passing');
    expect(r.health.get('api/api-2')).toBe('critical');
    expect([...r.held]).toEqual([['api/api-1', 'check-not-run']]);
  });

  it('holds only what was published healthy: new instances and ones already critical are as read', () => {
    const published = catalogOf([inst('api-1', 'critical'), inst('api-2', 'warning')]);
    const r = healthAfter(
      catalogOf([inst('api-1', 'critical'), inst('api-2', 'critical'), inst('api-3', 'critical')]),
      published,
      ['api/api-1', 'api/api-2', 'api/api-3'],
    );
    expect(r.health.get('api/api-1')).toBe('critical');
    expect(r.health.get('api/api-2')).toBe('warning'); // its last published health, not passing
    expect(r.health.get('api/api-3')).toBe('critical');
    expect([...r.held.keys()]).toEqual(['api/api-2']);
  });

  it('applies per datacenter: only the one whose agent came back, and "whole service" per datacenter', () => {
    const published = catalogOf([
      inst('api-1', 'passing', 'dc1'),
      inst('api-2', 'passing', 'dc2'),
      inst('api-3', 'passing', 'dc2'),
    ]);
    const now = catalogOf([
      inst('api-1', 'critical', 'dc1'),
      inst('api-2', 'critical', 'dc2'),
      inst('api-3', 'passing', 'dc2'),
    ]);
    // dc1 in grace: api-1 is all of dc1's api, so held; dc2 not in grace: api-2 as read.
    const r = healthAfter(now, published, ['api/api-2'], (dc) =>
      dc === 'dc1' ? GRACE_END : undefined,
    );
    expect(r.health.get('api/api-1')).toBe('passing');
    expect(r.health.get('api/api-2')).toBe('critical');
    // dc2 in grace: api-2 held for its not-run check; the whole-service rule does not look
    // across datacenters (dc1's api-1 critical alone with a run check is believed).
    const r2 = healthAfter(now, published, ['api/api-2'], (dc) =>
      dc === 'dc2' ? GRACE_END : undefined,
    );
    expect(r2.health.get('api/api-1')).toBe('critical');
    expect(r2.health.get('api/api-2')).toBe('passing');
  });

  it('returns the same catalog object when it holds nothing', () => {
    const now = catalogOf([inst('api-1', 'passing'), inst('api-2', 'passing')]);
    const r = applyRestartGrace({
      catalog: now,
      published: healthByInstance(before),
      criticalNotRun: new Set(),
      graceUntil: inGrace,
      now: NOW,
    });
    expect(r.catalog).toBe(now);
  });
});

describe('mapping: which critical instances have checks that have not run', () => {
  // As Consul 1.16 reports a restarted agent's sidecar: its default TCP check restored
  // critical with no output, until its first run (seen in the outage test's log).
  const entries = (): ConsulHealthEntry[] => [
    {
      Node: { Node: 't', Address: '127.0.0.1' },
      Service: { ID: 'api-1', Service: 'api', Port: 9001 },
      Checks: [
        { CheckID: 'serfHealth', Status: 'passing', Output: 'Agent alive and reachable' },
        { CheckID: 'service:api-1', Status: 'passing', Output: '' },
      ],
    },
  ];
  const sidecar = (tcp: { Status: string; Output: string }): ConsulHealthEntry[] => [
    {
      Node: { Node: 't', Address: '127.0.0.1' },
      Service: {
        ID: 'api-1-sidecar-proxy',
        Service: 'api-sidecar-proxy',
        Kind: 'connect-proxy',
        Port: 21000,
        Proxy: { DestinationServiceName: 'api', DestinationServiceID: 'api-1' },
      },
      Checks: [
        { CheckID: 'service:api-1-sidecar-proxy:1', Type: 'tcp', ...tcp },
        {
          CheckID: 'service:api-1-sidecar-proxy:2',
          Status: 'passing',
          Output: 'All checks passing.',
        },
      ],
    },
  ];
  const map = (tcp: { Status: string; Output: string }) =>
    mapConsulCatalog(
      new Map([
        ['api', entries()],
        ['api-sidecar-proxy', sidecar(tcp)],
      ]),
      { warningAs: 'passing' },
    );

  it('critical with no output: not run', () => {
    const r = map({ Status: 'critical', Output: '' });
    expect(r.catalog.services[0]!.instances[0]!.health).toBe('critical');
    expect(r.criticalNotRun).toEqual(['api/api-1-sidecar-proxy']);
  });

  it('critical with the output of a run: a real failure', () => {
    const r = map({
      Status: 'critical',
      Output: 'dial tcp 127.0.0.1:21000: connect: connection refused',
    });
    expect(r.catalog.services[0]!.instances[0]!.health).toBe('critical');
    expect(r.criticalNotRun).toEqual([]);
  });

  it('a TTL check critical without output: its app said so (or never spoke), not a restart artefact', () => {
    const r = mapConsulCatalog(
      new Map([
        [
          'api',
          [
            {
              Node: { Node: 't', Address: '127.0.0.1' },
              Service: { ID: 'api-1', Service: 'api', Port: 9001 },
              Checks: [{ CheckID: 'service:api-1', Type: 'ttl', Status: 'critical', Output: '' }],
            },
          ],
        ],
      ]),
      { warningAs: 'passing' },
    );
    expect(r.catalog.services[0]!.instances[0]!.health).toBe('critical');
    expect(r.criticalNotRun).toEqual([]);
  });

  it('passing: nothing to say', () => {
    expect(
      map({ Status: 'passing', Output: 'TCP connect 127.0.0.1:21000: Success' }).criticalNotRun,
    ).toEqual([]);
  });
});

describe('--consul-restart-grace', () => {
  it('defaults to 15 s, takes 0 (off), and names the flag and value when wrong', () => {
    expect(consulSourceOptionsFromFlags({}, {}).restartGraceMs).toBe(15_000);
    expect(consulSourceOptionsFromFlags({ consulRestartGrace: '0' }, {}).restartGraceMs).toBe(0);
    expect(consulSourceOptionsFromFlags({ consulRestartGrace: '30s' }, {}).restartGraceMs).toBe(
      30_000,
    );
    expect(() => consulSourceOptionsFromFlags({ consulRestartGrace: 'soon' }, {})).toThrow(
      new ConsulFlagError(
        '--consul-restart-grace',
        'expected a duration 0ms-10m like 500ms, 30s or 5m, got "soon"',
      ),
    );
    expect(() => consulSourceOptionsFromFlags({ consulRestartGrace: '11m' }, {})).toThrow(
      /--consul-restart-grace: .*got "11m"/,
    );
  });
});
