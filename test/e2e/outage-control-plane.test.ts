// Longer outages of the control plane itself, with `lucid-mesh serve` as a real process (file
// catalog, mTLS and proxy tokens on, a data directory) and two real Envoy sidecars (web → api)
// under a 100 rps request loop:
// - serve killed with -9 and kept down 30 s: Envoy keeps serving its last config; restarted on
//   the same ports and data directory, the sidecars reconnect without config churn;
// - the CA's directory made read-only (immutable: the tests run as root, where a mode of 0555
//   stops nothing) while leaves are due: renewals still reach Envoy, saving the leaf records
//   fails with a logged error and nothing half-written, and succeeds once writable again.
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileCaStore, openCa } from '../../src/ca/index.js';
import { spawnCli, type CliProcess } from '../support/cli-process.js';
import { httpGet, startHttpApp, type HttpApp } from '../support/http-app.js';
import { startLoadLoop } from '../support/load-loop.js';
import { rejectedUpdates, startWebApiPair, type Sidecar } from '../support/mesh.js';
import { freePorts } from '../support/ports.js';
import { describeMemory, serveMemory, writeReliabilityResult } from '../support/reliability.js';
import { waitFor } from '../support/wait.js';

/** `serve` on the mesh's catalog and data dir, mTLS and proxy tokens on, logging at info. */
function spawnServe(
  catalog: string,
  dataDir: string,
  ports: { xds: number; admin: number },
  env: Record<string, string>,
): CliProcess {
  return spawnCli(
    [
      'serve',
      ...['--catalog', catalog, '--host', '127.0.0.1', '--mtls', 'on', '--auth', 'token'],
      ...['--xds-port', String(ports.xds), '--admin-port', String(ports.admin)],
      ...['--data-dir', dataDir],
    ],
    { LOG_LEVEL: 'info', ...env },
  );
}

const alive = (p: CliProcess): boolean => p.child.exitCode === null && p.child.signalCode === null;

/** A mesh: serve (restartable), apps web and api, their sidecars, an operator token. */
interface Mesh {
  readonly dataDir: string;
  readonly catalogDir: string;
  serve: CliProcess;
  readonly ports: { xds: number; admin: number };
  readonly web: Sidecar;
  readonly api: Sidecar;
  readonly apps: HttpApp[];
  readonly operatorToken: string;
  restart(): CliProcess;
  stop(): Promise<void>;
}

async function startMesh(
  env: Record<string, string> = {},
  /** A data directory the caller owns (a tmpfs mount point): not removed by stop(). */
  ownDataDir?: string,
): Promise<Mesh> {
  const dataDir = ownDataDir ?? mkdtempSync(join(tmpdir(), 'lucid-outage-data-'));
  const catalogDir = mkdtempSync(join(tmpdir(), 'lucid-outage-catalog-'));
  const catalog = join(catalogDir, 'catalog.yaml');
  const [xds, admin, webSide, apiSide] = await freePorts(4);
  const ports = { xds: xds!, admin: admin! };
  const apps = await Promise.all([startHttpApp('web'), startHttpApp('api')]);
  const [webApp, apiApp] = apps;
  writeFileSync(
    catalog,
    `services:
  - name: web
    instances: [{ id: web-1, address: 127.0.0.1, port: ${webApp!.port}, sidecarPort: ${webSide} }]
  - name: api
    instances: [{ id: api-1, address: 127.0.0.1, port: ${apiApp!.port}, sidecarPort: ${apiSide} }]
`,
  );
  // Tokens from the same store serve will open (as `lucid-mesh token issue` would).
  const ca = await openCa({ dataDir, env: {} });
  const webToken = await ca.tokens.issue('web');
  const apiToken = await ca.tokens.issue('api');
  const operatorToken = await ca.tokens.issueOperator({ name: 'outage-test' });
  ca.stop();

  const started: { serve?: CliProcess; sidecars: Sidecar[] } = { sidecars: [] };
  const stop = async () => {
    const s = started.serve;
    if (s && alive(s)) {
      s.child.kill('SIGKILL');
      await s.exited;
    }
    await Promise.all(started.sidecars.map((c) => c.envoy.stop()));
    await Promise.all(apps.map((a) => a.close()));
    spawnSync('chattr', ['-i', join(dataDir, 'ca')]);
    if (!ownDataDir) rmSync(dataDir, { recursive: true, force: true });
    rmSync(catalogDir, { recursive: true, force: true });
  };
  try {
    started.serve = spawnServe(catalog, dataDir, ports, env);
    await waitReady(ports.admin, started.serve);
    // web → api through both sidecars (mTLS); on failure the pair is stopped already.
    const [web, api] = await startWebApiPair({
      xdsPort: ports.xds,
      webNodeId: 'web-1',
      apiNodeId: 'api-1',
      apiSidecarPort: apiSide!,
      timeoutMs: 30_000,
      tokens: { web: webToken, api: apiToken },
    });
    started.sidecars.push(web, api);
    const mesh: Mesh = {
      dataDir,
      catalogDir,
      serve: started.serve,
      ports,
      web,
      api,
      apps,
      operatorToken,
      restart() {
        mesh.serve = started.serve = spawnServe(catalog, dataDir, ports, env);
        return mesh.serve;
      },
      stop,
    };
    return mesh;
  } catch (err) {
    await stop();
    throw err;
  }
}

async function waitReady(admin: number, serve: CliProcess): Promise<void> {
  await waitFor(
    async () => {
      const r = await httpGet(`http://127.0.0.1:${admin}/ready`).catch(() => undefined);
      return r?.status === 200;
    },
    {
      what: 'serve /ready',
      timeoutMs: 30_000,
      details: serve.output,
      failIf: () => (alive(serve) ? undefined : 'serve exited'),
    },
  );
}

/** Envoy's xDS counters, and the listener and cluster add/modify/remove counters. */
async function xdsCounters(sidecar: Sidecar): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const re =
    /(\.update_(attempt|success|rejected|failure|empty)|\.(listener|cluster)_(added|modified|removed)|control_plane\.connected_state)$/;
  for (const [name, value] of await sidecar.envoy.stats())
    if (re.test(name) && /^\d+$/.test(value)) out[name] = Number(value);
  return out;
}

function diff(before: Record<string, number>, after: Record<string, number>) {
  const changed: Record<string, string> = {};
  for (const name of new Set([...Object.keys(before), ...Object.keys(after)]))
    if (before[name] !== after[name])
      changed[name] = `${before[name] ?? '-'} → ${after[name] ?? '-'}`;
  return changed;
}

/** version_info of every dynamic resource Envoy holds, by kind/name. */
async function heldVersions(sidecar: Sidecar): Promise<Record<string, string>> {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const dump = (await sidecar.envoy.configDump()) as { configs: any[] };
  const out: Record<string, string> = {};
  for (const c of dump.configs) {
    const type = String(c['@type']).split('.').pop();
    const put = (kind: string, name: string | undefined, version: string | undefined) => {
      if (name) out[`${kind}/${name}`] = version ?? '';
    };
    if (type === 'ListenersConfigDump')
      for (const l of c.dynamic_listeners ?? [])
        put('listener', l.name, l.active_state?.version_info);
    if (type === 'ClustersConfigDump')
      for (const cl of c.dynamic_active_clusters ?? [])
        put('cluster', cl.cluster?.name, cl.version_info);
    if (type === 'RoutesConfigDump')
      for (const r of c.dynamic_route_configs ?? [])
        put('route', r.route_config?.name, r.version_info);
    if (type === 'EndpointsConfigDump')
      for (const e of c.dynamic_endpoint_configs ?? [])
        put('endpoints', e.endpoint_config?.cluster_name, e.version_info);
    if (type === 'SecretsConfigDump')
      for (const s of c.dynamic_active_secrets ?? []) put('secret', s.name, s.version_info);
  }
  return out;
}

/** Serial of the sidecar's own certificate, as Envoy's /certs shows it. */
async function leafSerial(sidecar: Sidecar): Promise<string | undefined> {
  const certs = JSON.parse(await sidecar.envoy.admin('/certs')) as {
    certificates: Array<{ cert_chain?: Array<{ serial_number: string }> }>;
  };
  for (const c of certs.certificates) if (c.cert_chain?.[0]) return c.cert_chain[0].serial_number;
  return undefined;
}

interface ProxyRow {
  nodeId: string;
  types: Record<string, { status: string }>;
}
async function proxies(mesh: Mesh): Promise<ProxyRow[]> {
  const r = await httpGet(`http://127.0.0.1:${mesh.ports.admin}/v1/proxies`, {
    authorization: `Bearer ${mesh.operatorToken}`,
  });
  if (r.status !== 200) throw new Error(`/v1/proxies: ${r.status} ${r.body.slice(0, 200)}`);
  return (JSON.parse(r.body) as { proxies: ProxyRow[] }).proxies;
}

const countLines = (text: string, needle: string) =>
  text.split('\n').filter((l) => l.includes(needle)).length;

/**
 * For the tests that make saving fail while leaves are due: the leaf serials the CA has saved
 * in the data dir, those both Envoys hold, and serve's log lines of failed saves.
 */
function leafRecords(m: Mesh) {
  const store = new FileCaStore(m.dataDir);
  const saved = async () =>
    Object.fromEntries((await store.loadLeaves()).map((l) => [l.service, l.serial]));
  const held = async () => ({ web: await leafSerial(m.web), api: await leafSerial(m.api) });
  return {
    saved,
    held,
    failedSaves: () =>
      m.serve
        .output()
        .split('\n')
        .filter((l) => l.includes('saving leaf records failed')),
    /** Until the saved records name the leaves Envoy holds (other than web's `not`): them. */
    waitSaved: (what: string, timeoutMs: number, not?: string) =>
      waitFor(
        async () => {
          const s = await saved();
          const h = await held();
          return s.web === h.web && s.api === h.api && (not === undefined || s.web !== not)
            ? s
            : undefined;
        },
        { what, timeoutMs, details: m.serve.output },
      ),
    /** Until both Envoys hold leaves other than `before`. */
    waitRenewed: (before: { web?: string; api?: string }, what: string) =>
      waitFor(
        async () => {
          const h = await held();
          return h.web !== before.web && h.api !== before.api;
        },
        { what, timeoutMs: 25_000, details: m.serve.output },
      ),
  };
}

describe('control plane killed with -9 for 30 s', () => {
  let mesh: Mesh | undefined;
  beforeAll(async () => {
    mesh = await startMesh();
  }, 90_000);
  afterAll(async () => {
    await mesh?.stop();
  });

  it('Envoy keeps serving while it is down; restarted on the same ports and data dir: no config churn', async () => {
    const m = mesh!;
    // Settle: both proxies SYNCED on every type before the baseline is taken.
    await waitFor(
      async () => {
        const rows = await proxies(m);
        return (
          rows.length === 2 &&
          rows.every((r) => Object.values(r.types).every((t) => t.status === 'SYNCED'))
        );
      },
      { what: 'both proxies SYNCED', timeoutMs: 20_000, details: m.serve.output },
    );
    const before = { web: await xdsCounters(m.web), api: await xdsCounters(m.api) };
    const versionsBefore = { web: await heldVersions(m.web), api: await heldVersions(m.api) };
    const serialsBefore = { web: await leafSerial(m.web), api: await leafSerial(m.api) };

    // 75 s of load at 100 rps; it covers the outage and the restart, and stops by itself.
    const load = startLoadLoop(m.web, 'api', { rps: 100, maxMs: 75_000, timeoutMs: 3_000 });
    try {
      const answered = () => load.count().total - load.count().failed;
      await waitFor(() => answered() >= 200, { what: '2 s of load', timeoutMs: 10_000 });
      const memoryBefore = await serveMemory(m.ports.admin);
      const killedAt = Date.now();
      m.serve.child.kill('SIGKILL');
      await m.serve.exited;
      await Promise.all(
        [m.web, m.api].map((s) =>
          s.envoy.waitFor(
            async () => (await s.envoy.stat('control_plane.connected_state')) === 0,
            'Envoy notices the control plane is gone',
          ),
        ),
      );
      const loopAtKill = load.now();
      await new Promise((r) => setTimeout(r, 30_000 - (Date.now() - killedAt)));
      const downFor = Date.now() - killedAt;
      const loopAtRestart = load.now();

      const restartedAt = Date.now();
      const serve = m.restart();
      await waitReady(m.ports.admin, serve);
      const readyMs = Date.now() - restartedAt;
      // Envoy's retry backoff (no retry policy in the bootstrap: 0.5 s up to 30 s) decides when
      // it comes back.
      await Promise.all(
        [m.web, m.api].map((s) =>
          s.envoy.waitFor(
            async () => (await s.envoy.stat('control_plane.connected_state')) === 1,
            'Envoy reconnects',
            45_000,
          ),
        ),
      );
      const reconnectMs = Date.now() - restartedAt;
      let lastRows: ProxyRow[] = [];
      await waitFor(
        async () => {
          const rows = (lastRows = await proxies(m));
          return (
            rows.length === 2 &&
            rows.every(
              (r) =>
                r.types.secrets?.status === 'SYNCED' &&
                Object.values(r.types).every((t) => t.status !== 'STALE' && t.status !== 'NACKED'),
            )
          );
        },
        {
          what: 'both proxies back and ACKed',
          timeoutMs: 20_000,
          details: () => `${JSON.stringify(lastRows)}\n${serve.output()}`,
        },
      );
      // Leaf keys are not kept on disk: the restarted CA issues new leaves, and Envoy gets them.
      const issued = () =>
        Object.fromEntries(
          serve
            .output()
            .split('\n')
            .filter((l) => l.includes('leaf certificate issued'))
            .map((l) => JSON.parse(l) as { service: string; serial: string })
            .map((j) => [j.service, j.serial]),
        ) as Record<string, string | undefined>;
      await waitFor(
        async () =>
          (await leafSerial(m.web)) === issued().web && (await leafSerial(m.api)) === issued().api,
        {
          what: "Envoy holds the restarted CA's leaves",
          timeoutMs: 15_000,
          details: () => `${JSON.stringify(issued())}\n${serve.output()}`,
        },
      );
      const newLeavesMs = Date.now() - restartedAt;
      const proxyRows = await proxies(m);
      const after = { web: await xdsCounters(m.web), api: await xdsCounters(m.api) };
      const versionsAfter = { web: await heldVersions(m.web), api: await heldVersions(m.api) };
      const serialsAfter = { web: await leafSerial(m.web), api: await leafSerial(m.api) };
      const loopAtReconnect = load.now();
      const tally = await load.done;
      const whileDown = load.count(loopAtKill, loopAtRestart);
      const sentWhileDown = whileDown.total;
      const failedWhileDown = whileDown.failed;

      const changedVersions = (side: 'web' | 'api') =>
        Object.keys({ ...versionsBefore[side], ...versionsAfter[side] }).filter(
          (k) => versionsBefore[side][k] !== versionsAfter[side][k],
        );
      console.log(
        JSON.stringify(
          {
            downForMs: downFor,
            sentWhileDown,
            failedWhileDown,
            restartReadyMs: readyMs,
            newLeavesInEnvoyMs: newLeavesMs,
            envoyReconnectMs: reconnectMs,
            requests: { sent: tally.total, failed: tally.failed },
            sentAfterReconnect: load.count(loopAtReconnect).total,
            counterChanges: { web: diff(before.web, after.web), api: diff(before.api, after.api) },
            changedVersions: { web: changedVersions('web'), api: changedVersions('api') },
            leafSerials: { before: serialsBefore, after: serialsAfter },
            issuedAfterRestart: serve
              .output()
              .split('\n')
              .filter((l) => l.includes('leaf certificate issued'))
              .map((l) => {
                const j = JSON.parse(l) as { service: string; serial: string; time: number };
                return { service: j.service, serial: j.serial, at: j.time - restartedAt };
              }),
            streamsOpened: serve
              .output()
              .split('\n')
              .filter((l) => l.includes('xds stream opened'))
              .map((l) => {
                const j = JSON.parse(l) as { node: string; time: number };
                return { node: j.node, at: j.time - restartedAt };
              }),
            secretsSent: (
              JSON.parse(
                (
                  await httpGet(`http://127.0.0.1:${m.ports.admin}/v1/proxies`, {
                    authorization: `Bearer ${m.operatorToken}`,
                  })
                ).body,
              ) as { proxies: Array<{ nodeId: string; types: { secrets: unknown } }> }
            ).proxies.map((p) => ({ node: p.nodeId, secrets: p.types.secrets })),
            envoySecretVersions: {
              before: {
                web: versionsBefore.web['secret/default'],
                api: versionsBefore.api['secret/default'],
              },
              after: {
                web: versionsAfter.web['secret/default'],
                api: versionsAfter.api['secret/default'],
              },
            },
            proxyStatus: proxyRows.map((r) => ({
              nodeId: r.nodeId,
              types: Object.fromEntries(Object.entries(r.types).map(([k, t]) => [k, t.status])),
            })),
          },
          null,
          2,
        ),
      );
      const memoryAfter = await serveMemory(m.ports.admin);
      expect(tally.failures).toEqual([]);
      expect(tally.failed).toBe(0);
      expect(tally.total).toBeGreaterThan(7_400);
      expect(sentWhileDown).toBeGreaterThan(2_500);
      for (const side of ['web', 'api'] as const) {
        const s = side === 'web' ? m.web : m.api;
        expect(await rejectedUpdates(s.envoy)).toBe(0);
        expect(after[side]['cluster_manager.cds.update_rejected'] ?? 0).toBe(0);
        // Nothing added, modified or removed: a reconnect re-sends identical versions.
        for (const name of [
          'cluster_manager.cluster_added',
          'cluster_manager.cluster_modified',
          'cluster_manager.cluster_removed',
          'listener_manager.listener_added',
          'listener_manager.listener_modified',
          'listener_manager.listener_removed',
        ])
          expect(after[side][name], `${side} ${name}`).toBe(before[side][name]);
        // Every listener, cluster, route and endpoint set at the version it had.
        expect(changedVersions(side).filter((k) => !k.startsWith('secret/'))).toEqual([]);
      }
      const churn = (side: 'web' | 'api') =>
        changedVersions(side).filter((k) => !k.startsWith('secret/')).length;
      writeReliabilityResult({
        id: 'outage-control-plane-kill',
        section: 'outages',
        test: 'test/e2e/outage-control-plane.test.ts',
        fault:
          '`lucid-mesh serve` (file catalog, mTLS and proxy tokens on, a data directory) killed with -9 and kept down 30 s, ' +
          'then started again on the same ports and data directory; two Envoys (web SotW, api delta) under a 100 rps loop ' +
          'web → api through both',
        behaviour:
          'Envoy keeps serving its last config (`control_plane.connected_state` 0, retrying about once a second). ' +
          'Restarted, the sidecars reconnect and are re-sent listeners, clusters, routes and endpoints with the same ' +
          'versions (content hashes): nothing added, modified or removed, nothing rejected. Leaf keys are not kept on ' +
          'disk, so the restarted CA issues a new leaf per service (same root) and SDS delivers it: the only resource ' +
          'whose version changes.',
        figures:
          `${tally.failed} failed of ${tally.total} requests (${failedWhileDown} of ${sentWhileDown} while it was down ` +
          `${(downFor / 1000).toFixed(1)} s). Restart → \`/ready\` ${(readyMs / 1000).toFixed(1)} s, both Envoys reconnected ` +
          `${(reconnectMs / 1000).toFixed(1)} s, new leaves in Envoy ${(newLeavesMs / 1000).toFixed(1)} s. Versions changed apart ` +
          `from the leaf: web ${churn('web')}, api ${churn('api')}. ` +
          `${describeMemory(memoryBefore, memoryAfter, 'serve before the kill → the restarted one at the end', 'heap used')}.`,
        failedRequests: tally.failed,
        totalRequests: tally.total,
        recoveryMs: reconnectMs,
        memoryBefore,
        memoryAfter,
      });
    } finally {
      await load.stop();
    }
  }, 150_000);
});

describe('the CA directory read-only while leaves are due', () => {
  // 0.0002 days = 17.28 s; renewal at 60–90 % of that: every 10–16 s.
  const TTL_DAYS = '0.0002';
  let mesh: Mesh | undefined;
  beforeAll(async () => {
    mesh = await startMesh({ CERT_VALIDITY_DAYS: TTL_DAYS });
  }, 90_000);
  afterAll(async () => {
    await mesh?.stop();
  });

  it('renewals keep reaching Envoy, the save fails with a logged error and nothing half-written; writable again, it saves', async () => {
    const m = mesh!;
    const caDir = join(m.dataDir, 'ca');
    const leaves = leafRecords(m);
    // Both leaves recorded before the directory goes read-only.
    await leaves.waitSaved('leaf records saved', 20_000);
    const load = startLoadLoop(m.web, 'api', { rps: 100, maxMs: 60_000, timeoutMs: 3_000 });
    const memoryBefore = await serveMemory(m.ports.admin);
    let chattrOn = false;
    try {
      const frozen = spawnSync('chattr', ['+i', caDir], { encoding: 'utf8' });
      expect(frozen.status, frozen.stderr).toBe(0);
      chattrOn = true;
      const frozenAt = Date.now();
      const savedAtFreeze = await leaves.saved();
      const heldAtFreeze = await leaves.held();
      const failedSaves = () => leaves.failedSaves().length;
      const renewals = () => countLines(m.serve.output(), 'leaf certificate renewed');
      const renewalsAtFreeze = renewals();

      // Both services renewed while read-only: Envoy holds the new leaves.
      await leaves.waitRenewed(heldAtFreeze, 'both leaves renewed while read-only');
      await waitFor(() => failedSaves() >= 1, {
        what: 'the failed save logged',
        timeoutMs: 10_000,
        details: m.serve.output,
      });
      const errorLine = leaves.failedSaves()[0]!;
      const heldReadOnly = await leaves.held();
      const leftovers = readdirSync(caDir).filter((f) => f.endsWith('.tmp'));
      const savedReadOnly = await leaves.saved();
      const failedWhileReadOnly = load.count().failed;
      const readOnlyFor = Date.now() - frozenAt;

      spawnSync('chattr', ['-i', caDir]);
      chattrOn = false;
      const thawedAt = Date.now();
      const failedSavesAtThaw = failedSaves();
      // The next renewal saves the records (the failed save itself is not retried).
      const saved = await leaves.waitSaved(
        'leaf records saved after the directory is writable',
        25_000,
        heldReadOnly.web,
      );
      const savedAfterMs = Date.now() - thawedAt;
      const tally = await load.stop();
      console.log(
        JSON.stringify(
          {
            readOnlyForMs: readOnlyFor,
            errorLine: JSON.parse(errorLine) as unknown,
            failedSavesWhileReadOnly: failedSavesAtThaw,
            renewalsWhileReadOnly: renewals() - renewalsAtFreeze,
            leftoverTempFiles: leftovers,
            recordsWhileReadOnly: {
              saved: savedReadOnly,
              atFreeze: savedAtFreeze,
              envoyHeld: heldReadOnly,
            },
            savedAfterWritableMs: savedAfterMs,
            savedAfter: saved,
            requests: { sent: tally.total, failed: tally.failed },
            failedWhileReadOnly,
          },
          null,
          2,
        ),
      );
      expect(leftovers).toEqual([]);
      // The store still loads, with the records as they were before the directory froze.
      expect(savedReadOnly).toEqual(savedAtFreeze);
      expect(errorLine).toMatch(/EPERM|EACCES|EROFS|read-only|not permitted/);
      expect(readdirSync(caDir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
      expect(tally.failures).toEqual([]);
      expect(tally.failed).toBe(0);
      expect(await rejectedUpdates(m.web.envoy)).toBe(0);
      expect(await rejectedUpdates(m.api.envoy)).toBe(0);
      const memoryAfter = await serveMemory(m.ports.admin);
      writeReliabilityResult({
        id: 'outage-data-dir-read-only',
        section: 'outages',
        test: 'test/e2e/outage-control-plane.test.ts',
        fault:
          'The CA directory made read-only (`chattr +i`: as root a mode of 0555 stops nothing) while leaves are due ' +
          '(`CERT_VALIDITY_DAYS=0.0002`: 17 s leaves, renewed every 10–16 s), under a 100 rps loop',
        behaviour:
          'Renewing a leaf needs no disk (keys stay in memory): the renewed leaves reach Envoy. Saving `leaves.json` ' +
          "fails and is logged at warn, `saving leaf records failed` with `EPERM: operation not permitted, chmod '<data-dir>/ca'` " +
          "(it fails at the directory's chmod, before any temp file). The failed save is not retried by itself: the next " +
          'issue or renewal saves again. Meanwhile `leaves.json` keeps the records from before (it loads; it names ' +
          'serials no longer served).',
        figures:
          `Read-only ${(readOnlyFor / 1000).toFixed(1)} s: ${failedSavesAtThaw} failed saves, ${renewals() - renewalsAtFreeze} ` +
          `renewals reached Envoy, ${leftovers.length} temp files. Writable again → saved in ${(savedAfterMs / 1000).toFixed(1)} s. ` +
          `${tally.failed} failed of ${tally.total} requests. ` +
          `${describeMemory(memoryBefore, memoryAfter, 'serve process', 'heap used')}.`,
        failedRequests: tally.failed,
        totalRequests: tally.total,
        recoveryMs: savedAfterMs,
        memoryBefore,
        memoryAfter,
      });
    } finally {
      if (chattrOn) spawnSync('chattr', ['-i', caDir]);
      await load.stop();
    }
  }, 120_000);
});

describe('the data directory full (a 1 MiB tmpfs) while leaves are due', () => {
  const TTL_DAYS = '0.0002';
  const base = mkdtempSync(join(tmpdir(), 'lucid-outage-full-'));
  const dataDir = join(base, 'data');
  let mounted = false;
  let mesh: Mesh | undefined;
  beforeAll(async () => {
    mkdirSync(dataDir);
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dataDir], {
      encoding: 'utf8',
    });
    if (m.status !== 0) throw new Error(`mount tmpfs: ${m.stderr}`);
    mounted = true;
    mesh = await startMesh({ CERT_VALIDITY_DAYS: TTL_DAYS }, dataDir);
  }, 90_000);
  afterAll(async () => {
    await mesh?.stop();
    if (mounted) spawnSync('umount', [dataDir]);
    rmSync(base, { recursive: true, force: true });
  });

  it('renewals keep reaching Envoy, the save fails with ENOSPC and leaves no temp file; with space again, it saves', async () => {
    const m = mesh!;
    const caDir = join(m.dataDir, 'ca');
    const leaves = leafRecords(m);
    await leaves.waitSaved('leaf records saved', 20_000);
    const load = startLoadLoop(m.web, 'api', { rps: 100, maxMs: 60_000, timeoutMs: 3_000 });
    const memoryBefore = await serveMemory(m.ports.admin);
    const filler = join(m.dataDir, 'filler');
    try {
      // Fill the file system to the last block.
      const fd = openSync(filler, 'w');
      const chunk = Buffer.alloc(4096, 1);
      let filled = 0;
      try {
        for (;;) filled += writeSync(fd, chunk);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      } finally {
        closeSync(fd);
      }
      const fullAt = Date.now();
      const savedAtFull = await leaves.saved();
      const heldAtFull = await leaves.held();
      const { failedSaves } = leaves;
      const failedBefore = failedSaves().length;
      await leaves.waitRenewed(heldAtFull, 'both leaves renewed while full');
      await waitFor(() => failedSaves().length > failedBefore, {
        what: 'the failed save logged',
        timeoutMs: 10_000,
        details: m.serve.output,
      });
      const errorLine = failedSaves()[failedBefore]!;
      const leftovers = readdirSync(caDir).filter((f) => f.endsWith('.tmp'));
      const savedWhileFull = await leaves.saved();
      const heldWhileFull = await leaves.held();
      const fullFor = Date.now() - fullAt;
      rmSync(filler);
      const freedAt = Date.now();
      const saved = await leaves.waitSaved(
        'leaf records saved with space again',
        25_000,
        heldWhileFull.web,
      );
      const savedAfterMs = Date.now() - freedAt;
      const tally = await load.stop();
      console.log(
        JSON.stringify(
          {
            fillerBytes: filled,
            fullForMs: fullFor,
            errorLine: JSON.parse(errorLine) as unknown,
            failedSavesWhileFull: failedSaves().length - failedBefore,
            leftoverTempFiles: leftovers.map((f) => ({ f, bytes: statSync(join(caDir, f)).size })),
            recordsWhileFull: {
              saved: savedWhileFull,
              atFull: savedAtFull,
              envoyHeld: heldWhileFull,
            },
            savedAfterSpaceMs: savedAfterMs,
            savedAfter: saved,
            leftoverTempFilesAfter: readdirSync(caDir).filter((f) => f.endsWith('.tmp')),
            requests: { sent: tally.total, failed: tally.failed },
          },
          null,
          2,
        ),
      );
      expect(errorLine).toContain('ENOSPC');
      expect(savedWhileFull).toEqual(savedAtFull);
      expect(tally.failures).toEqual([]);
      expect(tally.failed).toBe(0);
      expect(leftovers).toEqual([]);
      const memoryAfter = await serveMemory(m.ports.admin);
      writeReliabilityResult({
        id: 'outage-data-dir-full',
        section: 'outages',
        test: 'test/e2e/outage-control-plane.test.ts',
        fault:
          'The data directory full (a 1 MiB tmpfs filled to the last block) while leaves are due, under a 100 rps loop',
        behaviour:
          'As read-only, except the error (`ENOSPC: no space left on device, write`) comes after the temp file was ' +
          'created: the half-written temp file is removed (`writeTemp` in src/ca/file-store.ts; before the fix found ' +
          'here, each failed save left a zero-byte `leaves.json.<pid>.<hex>.tmp` behind, and the same path serves every ' +
          'write of the store: roots, keys, token log). With space again, the next renewal saves.',
        figures:
          `Full ${(fullFor / 1000).toFixed(1)} s: ${failedSaves().length - failedBefore} failed saves, ${leftovers.length} temp ` +
          `files. Space again → saved in ${(savedAfterMs / 1000).toFixed(1)} s. ${tally.failed} failed of ${tally.total} ` +
          `requests. ${describeMemory(memoryBefore, memoryAfter, 'serve process', 'heap used')}.`,
        failedRequests: tally.failed,
        totalRequests: tally.total,
        recoveryMs: savedAfterMs,
        memoryBefore,
        memoryAfter,
      });
    } finally {
      rmSync(filler, { force: true });
      await load.stop();
    }
  }, 120_000);
});
