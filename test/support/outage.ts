// What the outage tests of a catalog source under a request loop (outage-consul, outage-etcd)
// share: the instance added after the recovery, timed into the caller's Envoy until it serves
// the loop, and what no outage may do to the mesh.
import { expect } from 'vitest';
import type { LoadCount, Probe } from './load-loop.js';
import { clusterHosts, rejectedUpdates, type Sidecar } from './mesh.js';
import type { TrafficApp } from './traffic-app.js';
import { waitFor } from './wait.js';

/**
 * Waits until `app` is an endpoint of `cluster` in `caller`'s Envoy (/clusters polled every
 * 10 ms), then until it has answered a request; returns the ms from `since` to the first.
 */
export async function msUntilInEnvoy(
  caller: Sidecar,
  cluster: string,
  app: TrafficApp,
  opts: { since: number; timeoutMs: number; details: () => string },
): Promise<number> {
  const host = `127.0.0.1:${app.port}`;
  await waitFor(async () => (await clusterHosts(caller.envoy, cluster)).includes(host), {
    what: `${app.name} in the caller's /clusters`,
    timeoutMs: opts.timeoutMs,
    intervalMs: 10,
    details: opts.details,
  });
  const ms = performance.now() - opts.since;
  const hitsAt = app.hits;
  await waitFor(() => app.hits > hitsAt, { what: `${app.name} serving the loop` });
  return ms;
}

/**
 * What no outage may do: fail a request of the loop, answer /ready with other than 200, have
 * an Envoy refuse an update, or NACK one.
 */
export async function expectNoHarm(
  loop: LoadCount,
  ready: Probe,
  sidecars: readonly Sidecar[],
  cp: { readonly counters: { readonly nacks: number } },
): Promise<void> {
  expect(loop.failures).toEqual([]);
  expect(loop.failed).toBe(0);
  expect(ready.bad, ready.badReasons.join('; ')).toBe(0);
  for (const s of sidecars) expect(await rejectedUpdates(s.envoy)).toBe(0);
  expect(cp.counters.nacks).toBe(0);
}
