// Replicas sharing a state store must serve the same mesh settings: `lucid-mesh serve` processes
// on a real etcd and a real Consul. Two replicas with the same flags start; a third with another
// --scope and --intentions-default exits 2 with one line naming both settings and both values;
// started with --allow-settings-change it runs, and the others' log and gauge show the mismatch.
// After that first replica of a rolling change, a replica with the new settings starts without
// the override and one with the old settings is refused; once the changed replicas are gone the
// gauge is back at 0.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, spawnCli, type CliProcess } from '../../support/cli-process.js';
import { CONSUL_SETUP_TIMEOUT_MS, startConsul, type ConsulAgent } from '../../support/consul.js';
import { startEtcd, type EtcdHandle } from '../../support/etcd.js';
import { httpGet } from '../../support/http-app.js';
import { CatalogFile } from '../../support/mesh.js';
import { freePorts } from '../../support/ports.js';
import { waitFor } from '../../support/wait.js';

const tmp = (what: string) => mkdtempSync(join(tmpdir(), `lucid-replica-settings-${what}-`));

interface Serve extends CliProcess {
  readonly adminPort: number;
}

interface Store {
  readonly kind: 'etcd' | 'consul';
  readonly flags: () => string[];
  /** The keys under `prefix` as the store lists them. */
  readonly keys: (prefix: string) => Promise<string[]>;
  readonly start: () => Promise<void>;
  readonly stop: () => Promise<void>;
}

function etcdStore(): Store {
  let etcd: EtcdHandle | undefined;
  return {
    kind: 'etcd',
    flags: () => ['--etcd', etcd!.endpoint],
    keys: (prefix) => etcd!.client.getAll().prefix(prefix).keys(),
    start: async () => {
      etcd = await startEtcd('replica-settings');
    },
    stop: async () => etcd?.remove(),
  };
}

function consulStore(): Store {
  let consul: ConsulAgent | undefined;
  return {
    kind: 'consul',
    flags: () => ['--consul', consul!.address],
    keys: async (prefix) => {
      const res = await consul!.api('GET', `/v1/kv/${prefix}?keys`);
      return res.status === 404 ? [] : (JSON.parse(res.body) as string[]);
    },
    start: async () => {
      consul = await startConsul();
    },
    stop: async () => consul?.stop(),
  };
}

describe.each([etcdStore(), consulStore()])('replica settings on $kind', (store) => {
  const catalog = new CatalogFile();
  const keyFile = join(tmp('key'), 'state.key');
  const prefix = `settings-${store.kind}/`;
  const children: Serve[] = [];

  beforeAll(async () => {
    await store.start();
    writeFileSync(keyFile, randomBytes(32).toString('base64'), { mode: 0o600 });
    catalog.write({
      services: [{ name: 'web', instances: [{ id: 'w', address: '127.0.0.1', port: 9 }] }],
    });
  }, CONSUL_SETUP_TIMEOUT_MS);

  afterAll(async () => {
    for (const s of children) await s.stop();
    catalog.remove();
    await store.stop();
  });

  async function serve(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Serve> {
    const [xdsPort, adminPort] = (await freePorts(2)) as [number, number];
    const p = spawnCli(
      [
        ...['serve', '--catalog', catalog.path],
        ...['--host', '127.0.0.1', '--xds-port', String(xdsPort)],
        ...['--admin-port', String(adminPort), '--data-dir', tmp('data')],
        ...['--auth', 'none', '--admin-auth', 'none'],
        ...['--state', store.kind, '--state-prefix', prefix, '--state-encryption-key', keyFile],
        ...store.flags(),
        ...args,
      ],
      env,
    );
    const s: Serve = { ...p, adminPort };
    children.push(s);
    return s;
  }

  const ready = (s: Serve) =>
    waitFor(
      async () =>
        (await httpGet(`http://127.0.0.1:${s.adminPort}/ready`).catch(() => undefined))?.status ===
        200,
      {
        what: 'replica ready',
        timeoutMs: 60_000,
        details: s.output,
        failIf: () => (s.child.exitCode !== null ? `exited ${s.child.exitCode}` : undefined),
      },
    );

  const mismatch = async (s: Serve): Promise<number | undefined> => {
    const res = await httpGet(`http://127.0.0.1:${s.adminPort}/metrics`);
    const line = res.body
      .split('\n')
      .find((l) => l.startsWith('lucid_mesh_replica_settings_mismatch '));
    return line === undefined ? undefined : Number(line.split(' ')[1]);
  };

  const gaugeIs = (s: Serve, want: number, what: string) =>
    waitFor(async () => (await mismatch(s)) === want, {
      what,
      timeoutMs: 15_000,
      details: s.output,
    });

  const status = async (s: Serve): Promise<string> => {
    const r = await runCli(['status', '--server', `http://127.0.0.1:${s.adminPort}`]);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  };
  const settingsLine = (out: string) =>
    out.split('\n').find((l) => l.startsWith('Replica settings'));

  const records = async () =>
    (await store.keys(prefix)).filter((k) => k.startsWith(`${prefix}replicas/`));

  it('refuses a replica whose mesh settings differ, unless the change is declared; the running replicas report it', async () => {
    const [a, b] = await Promise.all([serve([]), serve([])]);
    await Promise.all([ready(a), ready(b)]);
    await gaugeIs(a, 0, 'A agrees with B');
    await gaugeIs(b, 0, 'B agrees with A');
    expect(await records()).toHaveLength(2);

    const changed = ['--scope', 'declared', '--intentions-default', 'deny'];
    // LUCID_ALLOW_SETTINGS_CHANGE=false is no override (commander alone would read it as on).
    const spawned = performance.now();
    const refused = await serve(changed, { LUCID_ALLOW_SETTINGS_CHANGE: 'false' });
    expect(await refused.exited, refused.output()).toBe(2);
    const refusedMs = performance.now() - spawned;
    const lines = refused.stderr().trim().split('\n');
    expect(lines.at(-1)).toMatch(
      /^lucid-mesh serve: --intentions-default: this replica deny, the running replicas allow; --scope: this replica declared, the running replicas all \(.*replicas\/\): .*--allow-settings-change.*refusing to start$/,
    );
    expect(await records()).toHaveLength(2);

    // A deliberate change: it starts, and the replicas on the old settings say so.
    const before = await records();
    const first = await serve([...changed, '--allow-settings-change']);
    await ready(first);
    const readyAt = performance.now();
    await gaugeIs(first, 2, 'the changed replica sees two replicas on other settings');
    await gaugeIs(a, 1, "A's gauge shows the changed replica");
    // And `lucid-mesh status` on A names it and what differs; on the changed one, both others.
    const replicaId = (key: string) => key.slice(`${prefix}replicas/`.length);
    const firstId = replicaId((await records()).find((k) => !before.includes(k))!);
    const differing = '(--intentions-default, --scope)';
    expect(settingsLine(await status(a))).toBe(
      `Replica settings MISMATCH: ${firstId} ${differing} serve other mesh settings than this replica: ` +
        "sidecars moving between them flip between configurations (values: this replica's log; docs/ha.md)",
    );
    const [idA, idB] = before.map(replicaId).sort();
    expect(settingsLine(await status(first))).toContain(
      `MISMATCH: ${idA} ${differing}; ${idB} ${differing} serve other`,
    );
    console.log(
      `replica settings (${store.kind}): refused replica exited 2 after ${refusedMs.toFixed(0)} ms; ` +
        `a running replica's gauge showed the changed one ${(performance.now() - readyAt).toFixed(0)} ms after it was ready`,
    );
    const errors = a
      .output()
      .split('\n')
      .filter((l) => l.includes('mesh settings differ between replicas'));
    expect(errors).toHaveLength(1);
    expect(JSON.parse(errors[0]!)).toMatchObject({
      level: 50,
      differences:
        '--intentions-default: this replica allow, other replicas deny; --scope: this replica all, other replicas declared',
    });

    // The next replica of the rolling change needs no override; a replica on the old
    // settings would roll it back and is refused.
    const second = await serve(changed);
    await ready(second);
    const old = await serve([]);
    expect(await old.exited, old.output()).toBe(2);
    expect(old.stderr()).toContain(
      '--intentions-default: this replica allow, the running replicas deny; --scope: this replica all, the running replicas declared',
    );

    // The changed replicas leave: A agrees with every replica again (logged once).
    await Promise.all([first.stop(), second.stop()]);
    await gaugeIs(a, 0, 'A agrees again');
    expect(settingsLine(await status(a))).toBeUndefined();
    expect(a.output()).toContain('mesh settings agree with every other replica again');
    expect(
      a
        .output()
        .split('\n')
        .filter((l) => l.includes('mesh settings differ between replicas')),
    ).toHaveLength(1);
  });
});

it('LUCID_ALLOW_SETTINGS_CHANGE that is not a boolean: exit 2 naming the variable and the value', async () => {
  const r = await runCli(
    ['serve', '--catalog', 'examples/catalog.yaml', '--admin-port', '0', '--xds-port', '0'],
    { LUCID_ALLOW_SETTINGS_CHANGE: 'maybe' },
  );
  expect(r.code, r.stderr).toBe(2);
  expect(r.stderr.trim()).toBe(
    'lucid-mesh serve: LUCID_ALLOW_SETTINGS_CHANGE: expected true or false, got "maybe"',
  );
});
