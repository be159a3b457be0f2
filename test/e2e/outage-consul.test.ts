// A longer Consul outage under load (issue 13): a real Consul server agent, the control plane
// on a ConsulSource, real Envoy sidecars (web in SotW mode calling api; api's own sidecar,
// delta), and a 100 rps request loop web → api through both sidecars. The agent is frozen
// (SIGSTOP) for 60 s, then killed (SIGKILL) and started again with its data: it is not a -dev
// agent (those keep nothing) but a one-server agent with a data dir, so its catalog (raft) and
// its registrations (the agent's local state) survive the restart and nobody registers again.
// The restarted agent restores the sidecar's default checks critical until they run (up to
// their 10 s interval); api-1 is the only api instance until its checks have run, so without
// the source's restart grace (--consul-restart-grace) the loop fails for that long.
// Counted: failed requests over the whole loop, /ready answers that were not 200, samples of
// the web sidecar without a healthy api-1; timed: the restart until the agent has a leader,
// which checks flipped and for how long, and the first registration after it until Envoy.
// Writes test-results/reliability/outage-consul.json (docs/reliability.md).
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/app.js';
import type { ConsulSource } from '../../src/sources/consul/consul-source.js';
import { CONSUL_SETUP_TIMEOUT_MS, startConsul, type ConsulAgent } from '../support/consul.js';
import { startLoadLoop, startProbe } from '../support/load-loop.js';
import { clusterHosts, type Sidecar, startWebApiPair } from '../support/mesh.js';
import { expectNoHarm, msUntilInEnvoy } from '../support/outage.js';
import { freePorts } from '../support/ports.js';
import { consulTestSource, startSourceControlPlane } from '../support/source-control-plane.js';
import { startTrafficApp, type TrafficApp } from '../support/traffic-app.js';
import { describeMemory, sampleMemory, writeReliabilityResult } from '../support/reliability.js';
import { waitFor } from '../support/wait.js';

const OUTAGE_MS = 60_000;

/**
 * The check states of api's instances (service and sidecar) as Consul reports them, every 50 ms
 * from `since` until `until()` says so: each distinct state once, with its time (ms since
 * `since`) — the record of which checks a restart flipped, and for how long.
 */
async function sampleHealth(consul: ConsulAgent, since: number, until: () => boolean) {
  const seen: Array<{ at: number; state: string }> = [];
  let last = '';
  while (!until()) {
    let state: string;
    try {
      const parts: string[] = [];
      for (const svc of ['api', 'api-sidecar-proxy']) {
        const res = await consul.api('GET', `/v1/health/service/${svc}`);
        if (res.status !== 200) {
          parts.push(`${svc}: HTTP ${res.status}`);
          continue;
        }
        const entries = JSON.parse(res.body) as Array<{
          Service: { ID: string };
          Checks: Array<{ CheckID: string; Status: string; Output: string }>;
        }>;
        for (const e of entries)
          parts.push(
            `${e.Service.ID}: ${e.Checks.filter((c) => c.CheckID !== 'serfHealth')
              .map(
                (c) =>
                  `${c.CheckID.replace(/^service:/, '')}=${c.Status}${c.Status === 'critical' && c.Output === '' ? '(not run)' : ''}`,
              )
              .join(',')}`,
          );
      }
      state = parts.join('; ');
    } catch {
      state = 'down';
    }
    if (state !== last) {
      seen.push({ at: performance.now() - since, state });
      last = state;
    }
    await sleep(50);
  }
  return seen;
}

/** Hosts of a cluster that Envoy counts healthy (/clusters health_flags). */
async function healthyHosts(sidecar: Sidecar, cluster: string): Promise<string[]> {
  const hosts: string[] = [];
  for (const line of (await sidecar.envoy.clusters()).split('\n')) {
    const [name, host, key, value] = line.split('::');
    if (name === cluster && key === 'health_flags' && value === 'healthy') hosts.push(host!);
  }
  return hosts.sort();
}

describe('Consul frozen for 60 s, then killed and restarted with its data, under a 100 rps loop', () => {
  let consul: ConsulAgent;
  let cp: RunningControlPlane;
  let source: ConsulSource;
  let webApp: TrafficApp, api1: TrafficApp, api2: TrafficApp;
  let web: Sidecar, apiSidecar: Sidecar;
  let apiSidecarPort: number;

  // TTL checks that start passing (no wait for a TCP check to see the Envoy listen); the agent
  // keeps a TTL check's state across a restart.
  const ttl = { TTL: '10m', Status: 'passing' };

  beforeAll(async () => {
    [webApp, api1, api2] = await Promise.all([
      startTrafficApp('web-1'),
      startTrafficApp('api-1'),
      startTrafficApp('api-2'),
    ]);
    const [webSidecarPort, sidecarPort, xdsPort] = (await freePorts(3)) as [number, number, number];
    apiSidecarPort = sidecarPort;
    consul = await startConsul({ persistent: true });
    for (const [name, id, app, port] of [
      ['web', 'web-1', webApp, webSidecarPort],
      ['api', 'api-1', api1, apiSidecarPort],
    ] as const)
      await consul.register({
        Name: name,
        ID: id,
        Address: '127.0.0.1',
        Port: app.port,
        Check: ttl,
        Connect: { SidecarService: { Port: port, Checks: [ttl] } },
      });
    // A TTL check's state is saved (and restored by a restarted agent) only once it has been
    // updated, as an app's heartbeat does; a check restored without it starts critical.
    for (const id of ['web-1', 'web-1-sidecar-proxy', 'api-1', 'api-1-sidecar-proxy'])
      await consul.setCheck(`service:${id}`, 'pass');
    source = consulTestSource(consul, 10_000);
    cp = await startSourceControlPlane(source, { xdsPort });
    [web, apiSidecar] = await startWebApiPair({
      xdsPort,
      webNodeId: 'web-1-sidecar-proxy',
      apiNodeId: 'api-1-sidecar-proxy',
      apiSidecarPort,
      timeoutMs: 30_000,
    });
  }, CONSUL_SETUP_TIMEOUT_MS);

  afterAll(async () => {
    await Promise.all([web?.envoy.stop(), apiSidecar?.envoy.stop()]);
    await cp?.stop();
    await consul?.remove();
    await Promise.all([webApp?.close(), api1?.close(), api2?.close()]);
  });

  it('0 failed requests, /ready stays 200 across the freeze and the restart; the first registration after it reaches Envoy', async () => {
    const loop = startLoadLoop(web, 'api', { rps: 100, maxMs: 150_000 });
    const ready = startProbe(`http://127.0.0.1:${cp.adminPort}/ready`, 500, 150_000);
    const memoryBefore = sampleMemory();
    let sampling = true;
    try {
      await sleep(2_000);
      const version = cp.store.snapshot?.version;

      const frozenAt = loop.now();
      consul.pause();
      await sleep(OUTAGE_MS);
      const frozen = loop.count(frozenAt, loop.now());
      expect(cp.store.ready).toBe(true);
      expect(cp.store.snapshot?.version).toBe(version);
      const failingWhileFrozen = source.stats().failingWatches;

      // Killed while frozen, then started again on the same data dir and ports.
      const killedAt = loop.now();
      await consul.kill();
      const restartStarted = performance.now();
      const sampler = sampleHealth(consul, restartStarted, () => !sampling);
      // api-1 as the web sidecar sees it, every 100 ms, until its restored checks have run.
      const api1Host = `127.0.0.1:${apiSidecarPort}`;
      let api1Unhealthy = 0;
      let envoySamples = 0;
      const envoySampler = (async () => {
        while (sampling) {
          const hosts = await healthyHosts(web, 'api').catch(() => undefined);
          envoySamples++;
          if (hosts && !hosts.includes(api1Host)) api1Unhealthy++;
          await sleep(100);
        }
      })();
      await consul.start();
      const leaderMs = performance.now() - restartStarted;
      // Its registrations came back from its data dir: nobody registers again.
      const services = JSON.parse((await consul.api('GET', '/v1/agent/services')).body) as Record<
        string,
        unknown
      >;
      expect(Object.keys(services).sort()).toEqual([
        'api-1',
        'api-1-sidecar-proxy',
        'web-1',
        'web-1-sidecar-proxy',
      ]);
      await waitFor(() => source.stats().failingWatches === 0, {
        what: 'every Consul watch recovered',
        timeoutMs: 15_000,
        details: () => JSON.stringify(source.stats()),
      });
      // api-1 is the only api instance: wait until Consul has run every check it restored
      // (the sidecar's TCP check runs within its 10 s interval) and reports it passing.
      await waitFor(
        async () => {
          const res = await consul.api('GET', '/v1/health/service/api-sidecar-proxy');
          const entries = JSON.parse(res.body) as Array<{
            Checks: Array<{ CheckID: string; Status: string; Output: string }>;
          }>;
          const checks = entries.flatMap((e) => e.Checks);
          return (
            checks.some((c) => c.CheckID.endsWith(':1')) &&
            checks.every((c) => c.Status === 'passing')
          );
        },
        { what: "api-1's restored checks passing in Consul", timeoutMs: 30_000, intervalMs: 100 },
      );
      const checksPassMs = performance.now() - restartStarted;
      await sleep(500);
      sampling = false;
      const health = await sampler;
      await envoySampler;
      const afterRestart = loop.count(killedAt);

      // The first catalog change after the recovery: a new api instance (not meshed).
      const registeredAt = performance.now();
      await consul.register({
        Name: 'api',
        ID: 'api-2',
        Address: '127.0.0.1',
        Port: api2.port,
        Check: ttl,
      });
      const toEnvoyMs = await msUntilInEnvoy(web, 'api', api2, {
        since: registeredAt,
        timeoutMs: 20_000,
        details: () => JSON.stringify(source.stats()),
      });
      await sleep(2_000);
      const total = await loop.stop();
      await ready.stop();
      const memoryAfter = sampleMemory();
      const afterKill = loop.count(killedAt);
      const stats = source.stats();

      // What Consul reported after the restart: api-1's sidecar checks restored critical
      // and not run ("(not run)"), for how long.
      const flipped = health.filter((h) => /critical\(not run\)/.test(h.state));
      const flipFrom = flipped[0]?.at;
      const flipTo = health.find(
        (h) => flipFrom !== undefined && h.at > flipFrom && !/critical/.test(h.state),
      )?.at;
      const flipText =
        flipFrom === undefined
          ? 'no restored critical check seen'
          : `api-1's sidecar TCP check restored critical (not run) ${(flipFrom / 1000).toFixed(1)}–${((flipTo ?? checksPassMs) / 1000).toFixed(1)} s after the restart began`;
      console.log(
        `[outage consul] agent SIGSTOPped ${OUTAGE_MS / 1000} s at 100 rps: ${frozen.failed} failed ` +
          `of ${frozen.total} while frozen (${failingWhileFrozen} watches failing by then); ` +
          `SIGKILLed and restarted on its data dir: leader after ${leaderMs.toFixed(0)} ms; ${flipText}; ` +
          `held by the restart grace: ${stats.heldByRestartGraceTotal} (reconnects seen ${stats.reconnects}); ` +
          `api-1 not healthy in the web sidecar in ${api1Unhealthy} of ${envoySamples} samples; ` +
          `${afterRestart.failed} failed of ${afterRestart.total} from the kill until the checks passed ` +
          `(${(checksPassMs / 1000).toFixed(1)} s after the restart began); ` +
          `${afterKill.failed} failed of ${afterKill.total} from the kill to the end; ` +
          `${total.failed} of ${total.total} over the whole loop (${(loop.now() / 1000).toFixed(0)} s); ` +
          `/ready: ${ready.bad} not 200 of ${ready.total}. First registration after the restart ` +
          `→ Envoy /clusters in ${toEnvoyMs.toFixed(0)} ms. First failure: ${total.failures[0] ?? 'none'}; ` +
          `${describeMemory(memoryBefore, memoryAfter)}; api checks in Consul from the restart: ` +
          health.map((h) => `${h.at.toFixed(0)} ms ${h.state}`).join(' | '),
      );
      // The scenario happened: Consul reported api-1 critical by a check it had not run, and the
      // source held it (without the grace, api-1 left Envoy for that time: 503s). The source's
      // count is the proof: this test's own health poll can miss a critical window of under a
      // second (seen in CI: held 1, poll first answered after the check had run).
      expect(
        stats.heldByRestartGraceTotal,
        'Consul restored no critical check the source had to hold: the restart was not exercised',
      ).toBeGreaterThanOrEqual(1);
      expect(api1Unhealthy).toBe(0);
      // Frozen, restarted, restored checks: not one request failed.
      expect(frozen.failed).toBe(0);
      expect(frozen.total).toBeGreaterThan(5_900);
      await expectNoHarm(total, ready, [web, apiSidecar], cp);
      expect(total.total).toBeGreaterThan(6_500); // ~68 s at 100 rps; a quicker restart ends it sooner
      expect(await clusterHosts(web.envoy, 'api')).toEqual(
        [api1Host, `127.0.0.1:${api2.port}`].sort(),
      );

      writeReliabilityResult({
        id: 'outage-consul',
        section: 'components',
        test: 'test/e2e/outage-consul.test.ts',
        fault:
          'Consul agent frozen (SIGSTOP) for 60 s, then killed (SIGKILL) and started again on its data dir ' +
          '(a one-server agent, not `-dev`: its catalog and its agent registrations survive; nobody registers again)',
        behaviour:
          'Keeps serving the last good catalog (snapshot version unchanged, `/ready` 200) while its watches fail and ' +
          "retry on their backoff. The restarted agent restores the sidecar's default TCP and alias checks, the TCP " +
          'one critical with no output until its first run: the source saw the agent come back and, for ' +
          '`--consul-restart-grace` (15 s), kept api-1 (the only api instance) at its last health instead of ' +
          'dropping it from Envoy. The first registration after the restart reaches Envoy.',
        figures:
          `Frozen: ${frozen.failed} failed of ${frozen.total}. Restart → leader ${(leaderMs / 1000).toFixed(1)} s; ${flipText}; ` +
          `${stats.heldByRestartGraceTotal} instance held; api-1 unhealthy in the web sidecar in ${api1Unhealthy} of ${envoySamples} samples. ` +
          `${total.failed} failed of ${total.total} over the whole loop. First registration after the restart → Envoy ` +
          `\`/clusters\` ${(toEnvoyMs / 1000).toFixed(2)} s. \`/ready\`: ${ready.bad} not 200 of ${ready.total}. ` +
          `${describeMemory(memoryBefore, memoryAfter)}.`,
        failedRequests: total.failed,
        totalRequests: total.total,
        recoveryMs: Math.round(toEnvoyMs),
        memoryBefore,
        memoryAfter,
      });
    } finally {
      sampling = false;
      // A frozen agent is thawed so nothing stays stopped if the test failed mid-outage.
      consul.resume();
      await loop.stop();
      await ready.stop();
    }
  }, 200_000);
});
