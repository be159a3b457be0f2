// A sidecar's proxy token is checked only when its stream opens: an open stream outlives it,
// the next reconnect (a replica drained or lost, --max-stream-age) is refused, and the
// sidecar then gets no config and no certificate renewals. Found by hand with two replicas:
// a sidecar whose token had expired was cut off at its next reconnect while `status` had
// shown it SYNCED with no word about its token. Now status says so ahead of time and once it
// has expired. Real serve, real CLI, real Envoy.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProxyRow } from '../../src/admin/proxies.js';
import { tokenExpiryNote } from '../../src/cli/token-expiry-note.js';
import { runCli, spawnCli, type CliProcess } from '../support/cli-process.js';
import { startEnvoy, type EnvoyHandle } from '../support/envoy.js';
import { httpGet } from '../support/http-app.js';
import { CatalogFile } from '../support/mesh.js';
import { freePorts } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

describe('lucid-mesh status and a proxy token that expires', () => {
  const catalog = new CatalogFile();
  const dir = mkdtempSync(join(tmpdir(), 'lucid-token-expiry-'));
  const dataDir = join(dir, 'state');
  let serve: CliProcess;
  let envoy: EnvoyHandle;
  let server: string;

  beforeAll(async () => {
    const [admin, xds, app, sidecar, envoyAdmin, outbound] = (await freePorts(6)) as number[];
    catalog.write({
      services: [
        {
          name: 'hello',
          instances: [{ id: 'hello-1', address: '127.0.0.1', port: app, sidecarPort: sidecar }],
        },
      ],
    });
    server = `http://127.0.0.1:${admin}`;
    serve = spawnCli([
      ...['serve', '--catalog', catalog.path, '--host', '127.0.0.1', '--data-dir', dataDir],
      ...['--admin-port', `${admin}`, '--xds-port', `${xds}`, '--admin-auth', 'none'],
    ]);
    await waitFor(
      async () => (await httpGet(`${server}/ready`).catch(() => undefined))?.status === 200,
      { what: 'serve ready', timeoutMs: 30_000, details: () => serve.output() },
    );
    const token = await runCli(['token', 'issue', '--service', 'hello', '--ttl', '12s'], {
      LUCID_DATA_DIR: dataDir,
    });
    expect(token.code, token.stderr).toBe(0);
    const out = join(dir, 'hello-1.yaml');
    const bootstrap = await runCli([
      ...['bootstrap', '--node-id', 'hello-1', '--service', 'hello', '--xds', `127.0.0.1:${xds}`],
      ...['--token', token.stdout.trim(), '--admin-port', `${envoyAdmin}`],
      ...['--outbound-port', `${outbound}`, '--dns-port', '0', '-o', out],
    ]);
    expect(bootstrap.code, bootstrap.stderr).toBe(0);
    envoy = await startEnvoy({
      name: 'hello-1',
      bootstrapYaml: readFileSync(out, 'utf8'),
      adminPort: envoyAdmin!,
    });
  }, 90_000);

  afterAll(async () => {
    await envoy?.stop();
    await serve?.stop();
    catalog.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  const status = async (): Promise<string> => {
    const r = await runCli(['status', '--server', server]);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  };

  it('says when a connected sidecar’s token expires, and that it has, while the stream stays', async () => {
    const soon = await waitFor(
      async () => {
        const out = await status();
        return /hello-1 +hello +sotw +SYNCED/.test(out) ? out : undefined;
      },
      { what: 'hello-1 SYNCED', timeoutMs: 20_000, details: () => envoy.logs() },
    );
    expect(soon).toMatch(
      /\nhello-1 token expires in \d+s \(20\d\d-[^)]+\): this stream stays open/,
    );
    expect(soon).toContain("but the sidecar's next reconnect (a replica drained or lost");
    const { proxies } = JSON.parse((await httpGet(`${server}/v1/proxies`)).body) as {
      proxies: ProxyRow[];
    };
    const expiresAt = Date.parse(proxies[0]!.tokenExpiresAt!);
    expect(expiresAt - Date.now()).toBeGreaterThan(0);
    expect(expiresAt - Date.now()).toBeLessThanOrEqual(12_000);

    const expired = await waitFor(
      async () => {
        const out = await status();
        return out.includes('hello-1 TOKEN EXPIRED') ? out : undefined;
      },
      { what: 'status saying the token expired', timeoutMs: 20_000 },
    );
    // Still connected and served: the stream outlives the token.
    expect(expired).toMatch(/hello-1 +hello +sotw +SYNCED/);
    expect(expired).toMatch(/hello-1 TOKEN EXPIRED \d+s ago \(/);

    // Far from expiry: nothing to say.
    const row = {
      nodeId: 'x',
      tokenExpiresAt: new Date(Date.now() + 7 * 86_400_000).toISOString(),
    };
    expect(tokenExpiryNote(row as ProxyRow, Date.now())).toBeUndefined();
    expect(tokenExpiryNote({ nodeId: 'x' } as ProxyRow, Date.now())).toBeUndefined();
  });
});
