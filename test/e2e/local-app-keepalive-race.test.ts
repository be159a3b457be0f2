// Issue 12's once-seen 503 ("upstream connect error or disconnect/reset before headers. reset
// reason: connection termination"): an app server closes an idle keep-alive connection on its
// own timer just as the sidecar sends the next request on it. The local app cluster's idle
// timeout (docs/local-app.md) has the sidecar close idle connections first.
//
// Real Envoy sidecars in front of real node:http apps, requests sent to the sidecars' inbound
// listeners. The race: rounds of parallel requests (one upstream connection each) with the
// idle gap between rounds swept across the app's 1 s keepAliveTimeout; with the sidecar's
// timeout below the app's, nothing fails and the app never closes a connection itself.
// Without it (localAppIdleTimeoutMs: 0, Envoy's behaviour before the fix) requests fail.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/app.js';
import { DEFAULT_LOCAL_APP_IDLE_TIMEOUT_MS } from '../../src/translate/clusters.js';
import { httpGet } from '../support/http-app.js';
import { startKeepAliveApp, type KeepAliveApp } from '../support/keepalive-app.js';
import { CatalogFile, startSidecar, startTestControlPlane, type Sidecar } from '../support/mesh.js';
import { freePort } from '../support/ports.js';

const APP_KEEPALIVE_MS = 100;
const ROUNDS = 30;
const PARALLEL = 12;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('local app idle timeout: no 503 from the app closing an idle keep-alive connection', () => {
  const catalog = new CatalogFile();
  let cp: RunningControlPlane | undefined;
  let raceApp: KeepAliveApp, nodeApp: KeepAliveApp;
  let race: Sidecar, node: Sidecar;
  let racePort: number, nodePort: number;
  /** The racing sidecar's setting: below when its app closes, as the default is below Node's. */
  let raceIdleTimeoutMs: number;
  /** Gaps swept over ±40 ms around when the app closes idle connections. */
  const gapMs = (round: number): number =>
    raceApp.closesIdleAfterMs - 40 + (80 * round) / (ROUNDS - 1);

  beforeAll(async () => {
    [raceApp, nodeApp] = await Promise.all([
      startKeepAliveApp(APP_KEEPALIVE_MS),
      startKeepAliveApp(), // Node's default keepAliveTimeout (5 s); the sidecar's default applies
    ]);
    const [xdsPort, p1, p2] = [await freePort(), await freePort(), await freePort()];
    [racePort, nodePort] = [p1, p2];
    raceIdleTimeoutMs = Math.round(raceApp.closesIdleAfterMs * 0.7);
    catalog.write({
      services: [
        {
          name: 'race',
          localAppIdleTimeoutMs: raceIdleTimeoutMs,
          instances: [{ id: 'race-1', address: '127.0.0.1', port: raceApp.port, sidecarPort: p1 }],
        },
        {
          name: 'node-app',
          instances: [{ id: 'node-1', address: '127.0.0.1', port: nodeApp.port, sidecarPort: p2 }],
        },
      ],
    });
    cp = await startTestControlPlane(catalog, { xds: xdsPort });
    [race, node] = await Promise.all([
      startSidecar({ nodeId: 'race-1', service: 'race', xdsPort, mode: 'sotw' }),
      startSidecar({ nodeId: 'node-1', service: 'node-app', xdsPort, mode: 'delta' }),
    ]);
    for (const [sidecar, port] of [
      [race, racePort],
      [node, nodePort],
    ] as const) {
      await sidecar.envoy.waitFor(
        async () => (await httpGet(`http://127.0.0.1:${port}/`).catch(() => undefined))?.status,
        `${sidecar.envoy.name}'s inbound listener answers`,
        20_000,
      );
    }
  });

  afterAll(async () => {
    await Promise.all([race?.envoy.stop(), node?.envoy.stop()]);
    await cp?.stop();
    await Promise.all([raceApp?.close(), nodeApp?.close()]);
    catalog.remove();
  });

  const stat = (sidecar: Sidecar, cluster: string, name: string) =>
    sidecar.envoy.stat(`cluster.local_app|${cluster}.${name}`).then((v) => v ?? 0);

  it(`${ROUNDS} rounds of ${PARALLEL} requests, idle gaps swept across the app's keep-alive timeout: 0 failed`, async () => {
    // Settle: the requests that waited for config may have left connections of any age.
    await sleep(raceApp.closesIdleAfterMs + 200);
    const appClosedBefore = raceApp.closedByApp;
    const failures: string[] = [];
    let sent = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const results = await Promise.all(
        Array.from({ length: PARALLEL }, () =>
          httpGet(`http://127.0.0.1:${racePort}/`).then(
            (r) => (r.status === 200 ? undefined : `${r.status} ${r.body}`),
            (e: Error) => e.message,
          ),
        ),
      );
      sent += PARALLEL;
      for (const f of results) if (f !== undefined) failures.push(`round ${round}: ${f}`);
      await sleep(gapMs(round));
    }
    const destroyedWithRequest = await stat(
      race,
      'race-1',
      'upstream_cx_destroy_remote_with_active_rq',
    );
    const idleClosed = await stat(race, 'race-1', 'upstream_cx_idle_timeout');
    const report =
      `${failures.length}/${sent} failed (app closes idle connections after ` +
      `${raceApp.closesIdleAfterMs} ms, sidecar after ${raceIdleTimeoutMs} ms); app closed ${raceApp.closedByApp - appClosedBefore} idle ` +
      `connections itself, the sidecar ${raceApp.closedByPeer}; Envoy upstream_cx_idle_timeout ` +
      `${idleClosed}, upstream_cx_destroy_remote_with_active_rq ${destroyedWithRequest}\n` +
      failures.slice(0, 5).join('\n');
    expect(failures, report).toEqual([]);
    expect(destroyedWithRequest, report).toBe(0);
    // The sidecar closed the idle connections, every round, before the app's timer could.
    expect(raceApp.closedByApp - appClosedBefore, report).toBe(0);
    expect(idleClosed, report).toBeGreaterThanOrEqual(ROUNDS);
  });

  it('by default the sidecar closes an idle connection to a Node app (5 s keepAliveTimeout) first', async () => {
    // Node 20.20 closes 1 s after the keepAliveTimeout it advertises: 6 s by default.
    expect(nodeApp.closesIdleAfterMs).toBeGreaterThan(DEFAULT_LOCAL_APP_IDLE_TIMEOUT_MS + 500);
    const before = { peer: nodeApp.closedByPeer, app: nodeApp.closedByApp };
    const idleBefore = await stat(node, 'node-1', 'upstream_cx_idle_timeout');
    expect((await httpGet(`http://127.0.0.1:${nodePort}/`)).status).toBe(200);
    // The default is 4 s; Node's own timer would fire at 5 s (6 s on Node 20.20).
    await node.envoy.waitFor(
      async () => nodeApp.closedByPeer > before.peer,
      'the sidecar closing its idle connection to the app',
      5_000,
    );
    expect(nodeApp.closedByApp).toBe(before.app);
    expect(await stat(node, 'node-1', 'upstream_cx_idle_timeout')).toBeGreaterThan(idleBefore);
  });
});
