// A longer etcd outage under load (issue 13): real etcd, the control plane on an EtcdSource,
// real Envoy sidecars (web in SotW mode calling api, api's own sidecar in delta mode), and a
// 100 rps request loop web → api through both sidecars. etcd is killed (SIGKILL) and stays down
// for 60 s; it comes back, a change is made and the store compacted past the control plane's
// watch revision before the control plane reaches it again (it talks to etcd through a TCP
// proxy the test holds cut until then). Counted: failed requests over the whole loop, /ready
// answers that were not 200, snapshots built and Envoy membership changes after the recovery
// (the change must appear once: not missed, not applied twice).
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/app.js';
import type { EtcdSource } from '../../src/sources/etcd/etcd-source.js';
import { startEtcd, startTcpProxy, type EtcdHandle, type TcpProxy } from '../support/etcd.js';
import { startLoadLoop, startProbe } from '../support/load-loop.js';
import { clusterHosts, type Sidecar, startWebApiPair } from '../support/mesh.js';
import { expectNoHarm, msUntilInEnvoy } from '../support/outage.js';
import { freePorts } from '../support/ports.js';
import {
  etcdTestSource,
  QUICK_DEBOUNCE,
  startSourceControlPlane,
} from '../support/source-control-plane.js';
import { startTrafficApp, type TrafficApp } from '../support/traffic-app.js';
import { describeMemory, sampleMemory, writeReliabilityResult } from '../support/reliability.js';
import { waitFor } from '../support/wait.js';

const PREFIX = '/e2e-outage/';
const OUTAGE_MS = 60_000;
const instanceKey = (service: string, id: string) => `${PREFIX}services/${service}/${id}`;

describe('etcd down for 60 s, back after a compaction, under a 100 rps loop', () => {
  let etcd: EtcdHandle;
  let proxy: TcpProxy;
  let cp: RunningControlPlane;
  let source: EtcdSource;
  let webApp: TrafficApp, api1: TrafficApp, api2: TrafficApp;
  let web: Sidecar, apiSidecar: Sidecar;
  let apiSidecarPort: number;

  beforeAll(async () => {
    [etcd, webApp, api1, api2] = await Promise.all([
      startEtcd('outage'),
      startTrafficApp('web-1'),
      startTrafficApp('api-1'),
      startTrafficApp('api-2'),
    ]);
    proxy = await startTcpProxy(etcd.clientPort);
    const [webSidecarPort, sidecarPort, xdsPort] = (await freePorts(3)) as [number, number, number];
    apiSidecarPort = sidecarPort;
    await etcd.client
      .put(instanceKey('web', 'web-1'))
      .value(
        JSON.stringify({ address: '127.0.0.1', port: webApp.port, sidecarPort: webSidecarPort }),
      );
    await etcd.client
      .put(instanceKey('api', 'api-1'))
      .value(
        JSON.stringify({ address: '127.0.0.1', port: api1.port, sidecarPort: apiSidecarPort }),
      );

    source = etcdTestSource(proxy.endpoint, PREFIX);
    cp = await startSourceControlPlane(source, { xdsPort, ...QUICK_DEBOUNCE });
    [web, apiSidecar] = await startWebApiPair({
      xdsPort,
      webNodeId: 'web-1',
      apiNodeId: 'api-1',
      apiSidecarPort,
      timeoutMs: 20_000,
    });
  }, 60_000);

  afterAll(async () => {
    await Promise.all([web?.envoy.stop(), apiSidecar?.envoy.stop()]);
    await cp?.stop();
    await Promise.all([webApp?.close(), api1?.close(), api2?.close(), proxy?.close()]);
    await etcd?.remove();
  });

  it('0 failed requests; the change made after the restart and compacted past reaches Envoy once', async () => {
    const loop = startLoadLoop(web, 'api', { rps: 100, maxMs: 100_000 });
    const ready = startProbe(`http://127.0.0.1:${cp.adminPort}/ready`, 500, 100_000);
    const memoryBefore = sampleMemory();
    try {
      await sleep(2_000);
      const version = cp.store.snapshot?.version;
      const before = source.status();
      const membership0 = (await web.envoy.stat('cluster.api.membership_change')) ?? 0;

      // etcd gone (SIGKILL), and the control plane cut off until the test lets it through.
      const downAt = loop.now();
      await etcd.kill();
      await proxy.cut();
      await sleep(OUTAGE_MS);
      const upAt = loop.now();
      const outage = loop.count(downAt, upAt);
      expect(cp.store.ready).toBe(true);
      expect(cp.store.snapshot?.version).toBe(version);
      expect(source.status().failures).toBeGreaterThan(0);

      // Back, with its data; a change, then compaction past the control plane's watch revision.
      await etcd.restart();
      expect(await etcd.client.get(instanceKey('api', 'api-1')).string()).not.toBeNull();
      // An instance added and removed again (never to be seen), then api-2 added.
      await etcd.client
        .put(instanceKey('api', 'api-tmp'))
        .value(JSON.stringify({ address: '127.0.0.1', port: 1 }));
      await etcd.client.delete().key(instanceKey('api', 'api-tmp'));
      await etcd.client
        .put(instanceKey('api', 'api-2'))
        .value(JSON.stringify({ address: '127.0.0.1', port: api2.port }));
      const compactedAt = await etcd.compact();
      expect(compactedAt).toBeGreaterThan(before.revision + 2);
      const built0 = cp.store.counters.snapshotsBuilt;

      await proxy.restore();
      const restoredAt = performance.now();
      const toEnvoyMs = await msUntilInEnvoy(web, 'api', api2, {
        since: restoredAt,
        timeoutMs: 15_000,
        details: () => JSON.stringify(source.status()),
      });
      await waitFor(() => source.status().watching, { what: 'the etcd watch established' });
      await sleep(3_000);
      const total = await loop.stop();
      await ready.stop();
      const memoryAfter = sampleMemory();

      const after = source.status();
      const builds = cp.store.counters.snapshotsBuilt - built0;
      const membership =
        ((await web.envoy.stat('cluster.api.membership_change')) ?? 0) - membership0;
      console.log(
        `[outage etcd] etcd SIGKILLed for ${OUTAGE_MS / 1000} s at 100 rps: ` +
          `${outage.failed} failed of ${outage.total} during the outage, ${total.failed} of ` +
          `${total.total} over the whole loop (${(loop.now() / 1000).toFixed(0)} s); /ready: ` +
          `${ready.bad} not 200 of ${ready.total}. Restarted with its data, api-2 written and the ` +
          `store compacted to revision ${compactedAt} (watch was at ${before.revision}); ` +
          `control plane let through → api-2 in Envoy /clusters in ${toEnvoyMs.toFixed(0)} ms; ` +
          `re-lists ${after.lists - before.lists}, compacted watches ${after.compactions - before.compactions}, ` +
          `snapshots built ${builds}, Envoy api membership changes ${membership}; ` +
          describeMemory(memoryBefore, memoryAfter),
      );
      await expectNoHarm(total, ready, [web, apiSidecar], cp);
      expect(total.total).toBeGreaterThan(6_000);
      // Nothing missed: the re-list saw api-2 (and api-1 kept); nothing applied twice: one
      // catalog change → one snapshot, one membership change in Envoy, api-tmp never appeared.
      expect(after.lists - before.lists).toBeGreaterThanOrEqual(1);
      expect(await clusterHosts(web.envoy, 'api')).toEqual(
        [`127.0.0.1:${apiSidecarPort}`, `127.0.0.1:${api2.port}`].sort(),
      );
      expect(builds).toBe(1);
      expect(membership).toBe(1);

      writeReliabilityResult({
        id: 'outage-etcd',
        section: 'components',
        test: 'test/e2e/outage-etcd.test.ts',
        fault:
          "etcd killed (SIGKILL) for 60 s; restarted on its data; an instance added and removed, api-2 added, and the store compacted past the control plane's watch revision before the control plane could reach it again (a TCP proxy the test held cut)",
        behaviour:
          'Keeps the last good catalog (snapshot version unchanged, `/ready` 200) while its list and watch fail and retry. ' +
          'Once let through it re-lists (it re-lists after any failure, so the watch is not resumed from the compacted ' +
          'revision) and delivers the new state once.',
        figures:
          `${outage.failed} failed of ${outage.total} requests during the outage; ${total.failed} of ${total.total} over the whole loop. ` +
          `Compacted to revision ${compactedAt} (watch at ${before.revision}); let through → api-2 in Envoy \`/clusters\` ` +
          `${(toEnvoyMs / 1000).toFixed(2)} s. ${after.lists - before.lists} re-list, ${after.compactions - before.compactions} ` +
          `compacted watches, ${builds} snapshot built, ${membership} Envoy membership change for api (the removed instance ` +
          `never appeared, nothing applied twice). \`/ready\`: ${ready.bad} not 200 of ${ready.total}. ` +
          `${describeMemory(memoryBefore, memoryAfter)}.`,
        failedRequests: total.failed,
        totalRequests: total.total,
        recoveryMs: Math.round(toEnvoyMs),
        memoryBefore,
        memoryAfter,
      });
    } finally {
      await loop.stop();
      await ready.stop();
    }
  }, 150_000);
});
