// Health held over a Consul agent restart (--consul-restart-grace).
//
// A restarted Consul 1.16 agent restores its services from its data dir, but their checks come
// back critical until they run again: a TTL check without a saved state, and the default TCP
// and alias checks it adds back to a sidecar registration, whose first run is staggered over
// the check's interval (10 s for a sidecar's TCP check). Read as they are, every instance
// behind such a check leaves Envoy for up to that interval, though nothing is wrong with it
// (measured: 12-25 failed requests of 7,000 at 100 rps, test/e2e/outage-consul.test.ts).
//
// So for `graceMs` after the source sees the agent come back (its requests failed with a lost
// connection, a timeout or no leader, then succeeded; or its index went backwards), an
// instance that was published healthy and now reads critical keeps its published health when
// - each of its critical checks has not run yet (critical with no Output: Consul's state for a
//   check registered or restored and not run since; TTL checks excepted, they never run and a
//   TTL failed without a note is its app's word), or
// - every instance of its service in that datacenter reads critical at once (a restart, not
//   the whole service failing in the same moment, until the grace shows otherwise).
// A check that has run and fails on one instance among healthy ones is believed at once.
// Checks that pass need no hold; whatever is still critical when the grace ends is published.
import type { Catalog, Health, Instance, Service } from '../../catalog/model.js';

/** Why an instance's published health was kept. */
export type HoldReason = 'check-not-run' | 'whole-service-critical';

export interface RestartGraceInput {
  /** The catalog as Consul reports it now. */
  readonly catalog: Catalog;
  /** Health last published per "<service>/<instance id>". */
  readonly published: ReadonlyMap<string, Health>;
  /** "<service>/<instance id>" critical only by checks that have not run (mapping.ts). */
  readonly criticalNotRun: ReadonlySet<string>;
  /** When the grace of an instance's datacenter ends (ms), or undefined: no grace. */
  readonly graceUntil: (datacenter: string | undefined) => number | undefined;
  readonly now: number;
}

export interface RestartGraceResult {
  /** The catalog to publish: held instances with their published health. */
  readonly catalog: Catalog;
  /** Held instances ("<service>/<instance id>") and why. */
  readonly held: ReadonlyMap<string, HoldReason>;
  /** The earliest end of a grace that holds something: rebuild then to publish the truth. */
  readonly nextCheckAt?: number;
}

export function applyRestartGrace(input: RestartGraceInput): RestartGraceResult {
  const { catalog, published, criticalNotRun, graceUntil, now } = input;
  const held = new Map<string, HoldReason>();
  let nextCheckAt = Infinity;
  let changed = false;
  const services: Service[] = catalog.services.map((service) => {
    const byDc = new Map<string | undefined, Instance[]>();
    for (const i of service.instances) {
      const list = byDc.get(i.datacenter) ?? [];
      list.push(i);
      byDc.set(i.datacenter, list);
    }
    const replaced = new Map<Instance, Instance>();
    for (const [dc, instances] of byDc) {
      const until = graceUntil(dc);
      if (until === undefined || until <= now) continue;
      // An instance critical only by checks that have not run is not "down" for this rule:
      // with it held, the others failing is not the whole service failing at once.
      const allCritical = instances.every(
        (i) => i.health === 'critical' && !criticalNotRun.has(`${service.name}/${i.id}`),
      );
      for (const i of instances) {
        if (i.health !== 'critical') continue;
        const key = `${service.name}/${i.id}`;
        const before = published.get(key);
        if (before === undefined || before === 'critical') continue;
        const reason: HoldReason | undefined = criticalNotRun.has(key)
          ? 'check-not-run'
          : allCritical
            ? 'whole-service-critical'
            : undefined;
        if (reason === undefined) continue;
        held.set(key, reason);
        replaced.set(i, { ...i, health: before });
        nextCheckAt = Math.min(nextCheckAt, until);
      }
    }
    if (replaced.size === 0) return service;
    changed = true;
    return { ...service, instances: service.instances.map((i) => replaced.get(i) ?? i) };
  });
  if (!changed) return { catalog, held };
  return {
    catalog: { ...catalog, services },
    held,
    ...(nextCheckAt < Infinity ? { nextCheckAt } : {}),
  };
}

/** Health per "<service>/<instance id>" of a published catalog. */
export function healthByInstance(catalog: Catalog): Map<string, Health> {
  const out = new Map<string, Health>();
  for (const s of catalog.services)
    for (const i of s.instances) out.set(`${s.name}/${i.id}`, i.health);
  return out;
}
