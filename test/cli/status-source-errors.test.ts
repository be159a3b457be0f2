// An operator edits the catalog (or the policy), makes a mistake, and asks `lucid-mesh status`
// why nothing changed: the rejected edit is listed under "Config problems" (with the last good
// one still in force) until the file is fixed. It said "none": the reason was only in serve's
// log. Real serve on watched files, real CLI. A problem with a whole input is named
// `policy /abs/path`: it was `policy//abs/path`, which reads as a path.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plainServeArgs, runCli, spawnCli, type CliProcess } from '../support/cli-process.js';
import { httpGet } from '../support/http-app.js';
import { CatalogFile } from '../support/mesh.js';
import { freePorts } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

const GOOD = {
  services: [{ name: 'web', instances: [{ id: 'web-1', address: '127.0.0.1', port: 9100 }] }],
};
const BAD = {
  services: [{ name: 'web', instances: [{ id: 'web-1', address: '127.0.0.1', port: '80a' }] }],
};

describe('lucid-mesh status and a rejected catalog edit', () => {
  const catalog = new CatalogFile();
  let serve: CliProcess;
  let server: string;

  /** Waits until /v1/config/errors lists a source problem (or none). */
  const sourceProblem = (present: boolean) =>
    waitFor(
      async () => {
        const r = await httpGet(`${server}/v1/config/errors`);
        const { problems } = JSON.parse(r.body) as { problems: { kind: string }[] };
        return problems.some((p) => p.kind === 'source') === present;
      },
      { what: `a source problem ${present ? 'listed' : 'gone'}`, details: () => serve.output() },
    );

  beforeAll(async () => {
    catalog.write(GOOD);
    const [admin, xds] = (await freePorts(2)) as [number, number];
    server = `http://127.0.0.1:${admin}`;
    serve = spawnCli([
      ...plainServeArgs(catalog.path, { admin, xds }),
      ...['--admin-auth', 'none', '--data-dir', `${catalog.dir}/state`],
    ]);
    await waitFor(
      async () => (await httpGet(`${server}/ready`).catch(() => undefined))?.status === 200,
      { what: 'serve ready', timeoutMs: 30_000, details: () => serve.output() },
    );
  }, 60_000);

  afterAll(async () => {
    await serve?.stop();
    catalog.remove();
  });

  it('lists the rejected edit with its field and value until the file is fixed', async () => {
    const before = await runCli(['status', '--server', server]);
    expect(before.code, before.stderr).toBe(0);
    expect(before.stdout).toContain('Config problems: none');

    catalog.write(BAD);
    await sourceProblem(true);
    const during = await runCli(['status', '--server', server]);
    expect(during.code, during.stderr).toBe(0);
    expect(during.stdout).toContain(
      `  source file: ${catalog.path}: services[0].instances[0].port: expected integer 1-65535, ` +
        'got "80a" (the last good catalog stays in force)\n',
    );
    expect(during.stdout).not.toContain('//');
    expect((await httpGet(`${server}/ready`)).status).toBe(200);

    catalog.write(GOOD);
    await sourceProblem(false);
    const after = await runCli(['status', '--server', server]);
    expect(after.stdout).toContain('Config problems: none');
  });
});

describe('lucid-mesh status and a rejected policy edit', () => {
  const catalog = new CatalogFile();
  const policyFile = join(catalog.dir, 'policy.yaml');
  let serve: CliProcess;
  let server: string;

  beforeAll(async () => {
    catalog.write(GOOD);
    writeFileSync(policyFile, 'defaults: { action: allow }\n');
    const [admin, xds] = (await freePorts(2)) as [number, number];
    server = `http://127.0.0.1:${admin}`;
    serve = spawnCli([
      'serve',
      ...['--catalog', catalog.path, '--policy', policyFile, '--host', '127.0.0.1'],
      ...['--auth', 'none', '--admin-auth', 'none', '--data-dir', `${catalog.dir}/state`],
      ...['--admin-port', String(admin), '--xds-port', String(xds)],
    ]);
    await waitFor(
      async () => (await httpGet(`${server}/ready`).catch(() => undefined))?.status === 200,
      { what: 'serve ready', timeoutMs: 30_000, details: () => serve.output() },
    );
  }, 60_000);

  afterAll(async () => {
    await serve?.stop();
    catalog.remove();
  });

  it('lists the rejected policy edit until the file is fixed', async () => {
    writeFileSync(policyFile, 'defaults: { action: maybe }\n');
    const line =
      `  policy ${policyFile}: defaults.action: expected one of allow | deny, got "maybe" ` +
      '(the last good policy stays in force)\n';
    const listed = await waitFor(
      async () => {
        const r = await runCli(['status', '--server', server]);
        return r.stdout.includes(line) ? r : undefined;
      },
      { what: 'the policy problem in status', timeoutMs: 20_000, intervalMs: 300 },
    );
    expect(listed.code).toBe(0);
    expect(policyFile.startsWith('/'), policyFile).toBe(true);
    expect(listed.stdout).not.toContain('policy//');

    writeFileSync(policyFile, 'defaults: { action: allow }\n');
    await waitFor(
      async () =>
        (await runCli(['status', '--server', server])).stdout.includes('Config problems: none'),
      { what: 'no problems left', timeoutMs: 20_000, intervalMs: 300 },
    );
  });
});
