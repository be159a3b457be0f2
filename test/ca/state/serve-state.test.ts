// `lucid-mesh serve --state consul` as real processes on a real Consul: two replicas started at
// the same instant on an empty store end up with one root and one leader; `ca rotate` run as
// another process reaches both; a wrong or missing encryption key stops `serve` with exit 2,
// a message naming the key and nothing written.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stateKeyOf } from '../../../src/ca/state/cipher.js';
import { runCli as cli, spawnCli, type CliProcess } from '../../support/cli-process.js';
import { CONSUL_SETUP_TIMEOUT_MS, startConsul, type ConsulAgent } from '../../support/consul.js';
import { httpGet } from '../../support/http-app.js';
import { CatalogFile } from '../../support/mesh.js';
import { freePorts } from '../../support/ports.js';
import { waitFor } from '../../support/wait.js';

const tmp = (what: string) => mkdtempSync(join(tmpdir(), `lucid-serve-state-${what}-`));

function keyFile(): { path: string; id: string } {
  const key = randomBytes(32);
  const path = join(tmp('key'), 'state.key');
  writeFileSync(path, key.toString('base64'), { mode: 0o600 });
  return { path, id: stateKeyOf(key).id };
}

interface Serve extends CliProcess {
  readonly adminPort: number;
}

describe('serve --state consul (processes)', () => {
  let consul: ConsulAgent;
  const catalog = new CatalogFile();
  const key = keyFile();
  const wrongKey = keyFile();
  const children: Serve[] = [];

  beforeAll(async () => {
    consul = await startConsul();
    catalog.write({
      services: [{ name: 'web', instances: [{ id: 'w', address: '127.0.0.1', port: 9 }] }],
    });
  }, CONSUL_SETUP_TIMEOUT_MS);

  afterAll(async () => {
    for (const s of children) await s.stop();
    catalog.remove();
    await consul?.stop();
  });

  async function serve(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Serve> {
    const [xdsPort, adminPort] = (await freePorts(2)) as [number, number];
    const p = spawnCli(
      [
        ...['serve', '--catalog', catalog.path],
        ...['--host', '127.0.0.1', '--xds-port', String(xdsPort)],
        ...['--admin-port', String(adminPort), '--data-dir', tmp('data')],
        ...['--auth', 'none', '--admin-auth', 'none', '--consul', consul.address],
        ...args,
      ],
      env,
    );
    const s: Serve = { ...p, adminPort };
    children.push(s);
    return s;
  }

  const metric = async (s: Serve, pattern: RegExp): Promise<string[]> => {
    const res = await httpGet(`http://127.0.0.1:${s.adminPort}/metrics`);
    return res.body.split('\n').filter((l) => pattern.test(l));
  };

  const rawKv = async (prefix: string) =>
    (await consul.api('GET', `/v1/kv/${prefix}?recurse`)).body;

  it('two replicas started at once on an empty store: one root, one leader; ca rotate reaches both', async () => {
    const prefix = 'serve-two/';
    const stateFlags = ['--state-prefix', prefix, '--state-encryption-key', key.path];
    // One replica takes --state from its flag, the other from LUCID_STATE.
    const [a, b] = await Promise.all([
      serve(['--state', 'consul', ...stateFlags]),
      serve(stateFlags, { LUCID_STATE: 'consul' }),
    ]);
    for (const s of [a, b]) {
      await waitFor(
        async () =>
          (await httpGet(`http://127.0.0.1:${s.adminPort}/ready`).catch(() => undefined))
            ?.status === 200,
        {
          what: 'replica ready',
          timeoutMs: 60_000,
          details: s.output,
          failIf: () => (s.child.exitCode !== null ? 'exited' : undefined),
        },
      );
    }
    const opFlags = ['--state', 'consul', ...stateFlags, '--consul', consul.address];
    const shown = await cli(['ca', 'show', '--json', ...opFlags]);
    expect(shown.stderr).toBe('');
    const roots = (JSON.parse(shown.stdout) as { roots: Array<{ serial: string }> }).roots;
    expect(roots).toHaveLength(1);
    const leaders = await Promise.all(
      [a, b].map(async (s) => (await metric(s, /^lucid_mesh_state_leader\{/))[0]?.endsWith(' 1')),
    );
    expect(leaders.filter(Boolean)).toHaveLength(1);

    const rotated = await cli(['ca', 'rotate', ...opFlags]);
    expect(rotated.stderr).toBe('');
    const serial = /New active root: ([0-9a-f]+)/.exec(rotated.stdout)![1]!;
    for (const s of [a, b]) {
      // Every trusted root is a series of the expiry gauge: the new one joins the old one.
      await waitFor(
        async () =>
          (await metric(s, /^lucid_mesh_certificate_expiry_seconds\{kind="root"/)).some((l) =>
            l.includes(`serial="${serial}"`),
          ),
        { what: `the new root ${serial} on every replica`, timeoutMs: 10_000 },
      );
    }
  });

  it('a wrong encryption key stops serve with exit 2 naming the key ids and the KV key; nothing is written', async () => {
    const prefix = 'serve-wrong/';
    // An operator creates the first root (ca rotate on an empty store) with the right key.
    const seeded = await cli([
      ...['ca', 'rotate', '--state', 'consul', '--state-prefix', prefix],
      ...['--state-encryption-key', key.path, '--consul', consul.address],
    ]);
    expect(seeded.stdout).toContain('created root');
    const before = await rawKv(prefix);
    const s = await serve([
      ...['--state', 'consul', '--state-prefix', prefix],
      ...['--state-encryption-key', wrongKey.path],
    ]);
    expect(await s.exited, s.output()).toBe(2);
    expect(s.output()).toMatch(
      new RegExp(
        `key ${prefix}ca/roots \\(root [0-9a-f]+\\): sealed with encryption key id ${key.id}, but --state-encryption-key has id ${wrongKey.id}`,
      ),
    );
    expect(await rawKv(prefix)).toBe(before);
  });

  it('an unreachable store stops serve with exit 1 and one line naming it', async () => {
    const [closed] = (await freePorts(1)) as [number];
    const s = await serve([
      ...['--state', 'consul', '--state-encryption-key', key.path],
      ...['--consul', `127.0.0.1:${closed}`],
    ]);
    expect(await s.exited, s.output()).toBe(1);
    expect(s.output()).toContain(
      `lucid-mesh serve: Consul http://127.0.0.1:${closed}: GET /v1/kv/lucid-mesh/ca/roots: connect ECONNREFUSED`,
    );
    expect(s.output()).not.toContain('    at ');
  });

  it('without an encryption key serve refuses to put private keys into Consul', async () => {
    const s = await serve(['--state', 'consul', '--state-prefix', 'serve-nokey/']);
    expect(await s.exited).toBe(2);
    expect(s.output()).toContain(
      '--state consul: private keys go into Consul KV encrypted: give --state-encryption-key FILE',
    );
    expect((await consul.api('GET', '/v1/kv/serve-nokey/?recurse')).status).toBe(404);
  });
});
