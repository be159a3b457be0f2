// The authenticated operator API against a running control plane (the composition `serve`
// runs, with a CA in a data directory): every /v1 endpoint refuses no token, a proxy token and
// a revoked token and serves an operator token; scopes; the xDS port refuses operator tokens;
// revocation (also by `lucid-mesh token revoke` as another process) applies at once on both
// ports and ends what the token had open; the operator commands with --token, --token-file and
// LUCID_OPERATOR_TOKEN, their one-line refusals; the admin port over HTTPS with --server-ca.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { RunningControlPlane } from '../../src/app.js';
import { openCa, type OpenedCa } from '../../src/ca/open.js';
import { meshCommand } from '../../src/cli/mesh-command.js';
import { routeCommand } from '../../src/cli/route-command.js';
import { statusCommand } from '../../src/cli/status-command.js';
import { TokenAuthenticator } from '../../src/security/token-authenticator.js';
import { makeAdminTls, type AdminTlsFiles } from '../support/admin-tls.js';
import { node, sotwClient, typeUrl } from '../support/ads-client.js';
import { runCli as cli } from '../support/cli-process.js';
import { CatalogFile, startTestControlPlane } from '../support/mesh.js';
import { runCommand } from '../support/run-command.js';
import { cliEntry } from '../support/tools.js';
import { waitFor } from '../support/wait.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

const CATALOG = {
  services: [
    { name: 'web', instances: [{ id: 'web-1', address: '127.0.0.1', port: 9100 }] },
    { name: 'api', instances: [{ id: 'api-1', address: '127.0.0.1', port: 9101 }] },
  ],
};

/** Every endpoint under /v1/, with a query each answers 200 to. */
const ENDPOINTS = [
  '/v1/proxies',
  '/v1/snapshot?node=web-1',
  '/v1/events',
  '/v1/mesh',
  '/v1/config/errors',
  '/v1/route/explain?from=web&to=api&path=/',
  '/v1/proxies/pushes?node=web-1',
  '/v1/convergence',
  '/v1/mesh/calls',
];

interface Answer {
  status: number;
  body: string;
  headers: IncomingMessage['headers'];
}

/** One request; an event stream is answered by its status and headers, then dropped. */
function call(
  url: string,
  opts: { token?: string; method?: string; authorization?: string; ca?: string } = {},
): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  if (opts.authorization !== undefined) headers.authorization = opts.authorization;
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const options = { method: opts.method ?? 'GET', headers, agent: false as const };
    const req =
      target.protocol === 'https:'
        ? httpsRequest(target, { ...options, ca: opts.ca })
        : httpRequest(target, options);
    req.once('response', (res) => {
      if (res.headers['content-type'] === 'text/event-stream') {
        resolve({ status: res.statusCode ?? 0, body: '', headers: res.headers });
        req.destroy();
        return;
      }
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.once('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`${url}: no answer within 10 s`)));
    req.end();
  });
}

const idOf = (token: string): string => decodeJwt(token).jti!;

/** How a stream ended; fails instead of hanging if it stays open. */
async function ended(stream: {
  ended: Promise<grpc.ServiceError | undefined>;
}): Promise<grpc.ServiceError | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const open = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('the xDS stream stayed open')), 5000);
  });
  try {
    return await Promise.race([stream.ended, open]);
  } finally {
    clearTimeout(timer);
  }
}

/** lucid_mesh_admin_auth_failures_total per reason. */
async function authFailures(cp: RunningControlPlane): Promise<Record<string, number>> {
  const metric = await cp.metrics.registry
    .getSingleMetric('lucid_mesh_admin_auth_failures_total')!
    .get();
  return Object.fromEntries(metric.values.map((v) => [String(v.labels.reason), v.value]));
}

describe('the operator API, token-authenticated', () => {
  const catalog = new CatalogFile();
  const dataDir = mkdtempSync(join(tmpdir(), 'lucid-operator-auth-'));
  let ca: OpenedCa;
  let cp: RunningControlPlane;
  let base: string;
  let read: string;
  let admin: string;
  let proxy: string;
  let revoked: string;

  beforeAll(async () => {
    catalog.write(CATALOG);
    ca = await openCa({ dataDir, env: {} });
    cp = await startTestControlPlane(catalog, {}, { security: { ca, mtls: false, auth: 'token' } });
    base = `http://127.0.0.1:${cp.adminPort}`;
    read = await ca.tokens.issueOperator({ name: 'alice' });
    admin = await ca.tokens.issueOperator({ name: 'root', scope: 'admin' });
    proxy = await ca.tokens.issue('web');
    revoked = await ca.tokens.issueOperator({ name: 'mallory', scope: 'admin' });
    await ca.tokens.revoke(idOf(revoked));
    await waitFor(async () => (await call(`${base}/ready`)).status === 200, { what: 'ready' });
  });

  afterAll(async () => {
    await cp?.stop();
    catalog.remove();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('every /v1 endpoint: 401 without a token, a garbage or a revoked one; 403 with a proxy token; 200 with an operator token', async () => {
    const before = await authFailures(cp);
    for (const path of ENDPOINTS) {
      const url = `${base}${path}`;
      const none = await call(url);
      expect(none.status, path).toBe(401);
      expect(none.headers['www-authenticate']).toBe('Bearer realm="lucid-mesh"');
      expect(JSON.parse(none.body)).toEqual({
        error:
          'no operator token: send `Authorization: Bearer <token>` (lucid-mesh token issue --operator)',
        reason: 'missing-token',
      });

      const garbage = await call(url, { token: 'not-a-jwt' });
      expect(garbage.status, path).toBe(401);
      expect(JSON.parse(garbage.body).reason).toBe('malformed');
      expect(garbage.headers['www-authenticate']).toBe(
        'Bearer realm="lucid-mesh", error="invalid_token"',
      );

      const asProxy = await call(url, { token: proxy });
      expect(asProxy.status, path).toBe(403);
      expect(JSON.parse(asProxy.body)).toEqual({
        error:
          'this is a proxy token for service "web"; the admin API takes operator tokens (lucid-mesh token issue --operator)',
        reason: 'wrong-kind',
      });

      const gone = await call(url, { token: revoked });
      expect(gone.status, path).toBe(401);
      expect(JSON.parse(gone.body)).toEqual({
        error: `operator token ${idOf(revoked)} ("mallory") was revoked`,
        reason: 'revoked',
      });

      const ok = await call(url, { token: read });
      expect(ok.status, `${path}: ${ok.body}`).toBe(200);
    }
    const after = await authFailures(cp);
    const n = ENDPOINTS.length;
    for (const reason of ['missing-token', 'malformed', 'wrong-kind', 'revoked']) {
      expect((after[reason] ?? 0) - (before[reason] ?? 0), reason).toBe(n);
    }
  });

  it('/health, /ready and /metrics stay open; any other path needs a token, even a 404', async () => {
    for (const path of ['/health', '/ready', '/metrics']) {
      expect((await call(`${base}${path}`)).status, path).toBe(200);
    }
    // /healthz, the name Kubernetes components use, is /health (it answered 401: a token problem?).
    const healthz = await call(`${base}/healthz`);
    expect(healthz.status, healthz.body).toBe(200);
    expect(JSON.parse(healthz.body)).toEqual({ status: 'ok' });
    expect((await call(`${base}/healthz`, { method: 'HEAD' })).status).toBe(200);
    // Only that name: other probe-like paths still need a token, as any unknown path does.
    expect((await call(`${base}/healthzz`)).status).toBe(401);
    const metrics = (await call(`${base}/metrics`)).body;
    expect(metrics).toMatch(/lucid_mesh_admin_auth_failures_total\{reason="missing-token"\} \d+/);
    const unknown = await call(`${base}/v2/secrets`);
    expect(unknown.status).toBe(401);
    expect(unknown.body).not.toContain('endpoints');
    expect((await call(`${base}/v2/secrets`, { token: read })).status).toBe(404);
    expect((await call(`${base}/v1/proxies`, { authorization: `Basic ${read}` })).status).toBe(401);
  });

  it('scopes: changing state needs admin (403 insufficient-scope with a read token)', async () => {
    const denied = await call(`${base}/v1/proxies`, { token: read, method: 'POST' });
    expect(denied.status).toBe(403);
    expect(denied.headers['www-authenticate']).toContain('error="insufficient_scope"');
    expect(JSON.parse(denied.body)).toEqual({
      error:
        'operator token "alice" has scope read; POST needs admin (lucid-mesh token issue --operator --scope admin)',
      reason: 'insufficient-scope',
    });
    // Past the token check, the method is what is wrong (nothing changes state over HTTP yet).
    expect((await call(`${base}/v1/proxies`, { token: admin, method: 'POST' })).status).toBe(405);
    expect((await call(`${base}/v1/proxies`, { token: admin })).status).toBe(200);
  });

  it('the xDS port refuses an operator token and a revoked proxy token, serves a proxy token', async () => {
    const asOperator = sotwClient(cp.xdsPort, read);
    asOperator.send({ node: node('web-1', 'web'), typeUrl: typeUrl('clusters') });
    const refused = await ended(asOperator);
    asOperator.close();
    expect(refused?.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(refused?.details).toContain('this is an operator token ("alice")');

    const gone = await ca.tokens.issue('web');
    await ca.tokens.revoke(idOf(gone));
    const withRevoked = sotwClient(cp.xdsPort, gone);
    withRevoked.send({ node: node('web-1', 'web'), typeUrl: typeUrl('clusters') });
    const refusedToo = await ended(withRevoked);
    withRevoked.close();
    expect(refusedToo?.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(refusedToo?.details).toContain(`proxy token ${idOf(gone)} ("web") was revoked`);

    const good = sotwClient(cp.xdsPort, proxy);
    good.send({ node: node('web-1', 'web'), typeUrl: typeUrl('clusters') });
    expect((await good.next(5000)).typeUrl).toBe(typeUrl('clusters'));
    good.close();

    const xds = await cp.metrics.registry.getSingleMetricAsString(
      'lucid_mesh_xds_auth_failures_total',
    );
    expect(xds).toMatch(/reason="wrong-kind"} 1/);
    expect(xds).toMatch(/reason="revoked"} 1/);
  });

  it('`lucid-mesh token revoke` run as another process: refused at once on both ports', async () => {
    const operator = await ca.tokens.issueOperator({ name: 'bob' });
    const sidecar = await ca.tokens.issue('api');
    expect((await call(`${base}/v1/proxies`, { token: operator })).status).toBe(200);
    for (const token of [operator, sidecar]) {
      const res = await cli(['token', 'revoke', '--id', idOf(token), '--data-dir', dataDir]);
      expect(res, res.stderr).toMatchObject({ code: 0, stdout: `Revoked ${idOf(token)}.\n` });
    }
    // The server follows the data directory (file events; a 2 s poll at worst).
    await waitFor(
      async () => (await call(`${base}/v1/proxies`, { token: operator })).status === 401,
      { what: 'the revoked operator token refused', timeoutMs: 3000, intervalMs: 20 },
    );
    await waitFor(() => ca.tokens.isRevoked(idOf(sidecar)), {
      what: 'the server to read the second revocation',
      timeoutMs: 3000,
      intervalMs: 20,
    });
    const stream = sotwClient(cp.xdsPort, sidecar);
    stream.send({ node: node('api-1', 'api'), typeUrl: typeUrl('clusters') });
    expect((await ended(stream))?.code).toBe(grpc.status.UNAUTHENTICATED);
    stream.close();
    const list = await cli(['token', 'list', '--data-dir', dataDir]);
    expect(list.stdout).toMatch(new RegExp(`${idOf(operator)} +operator +bob +read .* revoked`));
  });

  it('an event stream ends when its token is revoked', async () => {
    const token = await ca.tokens.issueOperator({ name: 'watcher' });
    const subscribers = cp.events.subscriberCount;
    const closed = new Promise<void>((resolve, reject) => {
      const req = httpRequest(`${base}/v1/events`, {
        headers: { authorization: `Bearer ${token}` },
      });
      req.once('response', (res) => {
        expect(res.statusCode).toBe(200);
        res.resume();
        res.once('close', () => resolve());
      });
      req.once('error', () => resolve());
      setTimeout(() => reject(new Error('the event stream stayed open')), 10_000).unref();
      req.end();
    });
    await waitFor(() => cp.events.subscriberCount > subscribers, { what: 'subscribed' });
    await ca.tokens.revoke(idOf(token));
    await closed;
    await waitFor(() => cp.events.subscriberCount === subscribers, { what: 'unsubscribed' });
  });

  it('a live xDS stream authenticated with a token that gets revoked is closed (UNAUTHENTICATED)', async () => {
    const watch = vi.spyOn(TokenAuthenticator.prototype, 'watch');
    const token = await ca.tokens.issue('web');
    const stream = sotwClient(cp.xdsPort, token);
    try {
      stream.send({ node: node('web-2', 'web'), typeUrl: typeUrl('clusters') });
      await stream.next(5000);
      // The xDS layer asks the authenticator to watch the stream's token.
      expect(watch).toHaveBeenCalled();
      await ca.tokens.revoke(idOf(token));
      const closed = await ended(stream);
      expect(closed?.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(closed?.details).toContain('was revoked');
    } finally {
      stream.close();
      watch.mockRestore();
    }
  });

  describe('operator commands', () => {
    const run = {
      status: (...args: string[]) => runCommand(statusCommand, args),
      mesh: (...args: string[]) => runCommand(meshCommand, args),
      route: (...args: string[]) => runCommand(routeCommand, ['explain', ...args]),
    };

    it('--token, --token-file and LUCID_OPERATOR_TOKEN are sent', async () => {
      const status = await run.status('--server', base, '--token', read);
      expect(status.stderr).toBe('');
      expect(status).toMatchObject({ code: 0 });
      expect(status.stdout).toContain('Config problems: none');

      const file = join(dataDir, 'operator.token');
      writeFileSync(file, `${read}\n`, { mode: 0o600 });
      const mesh = await run.mesh('--server', base, '--token-file', file, '--json');
      expect(mesh.code, mesh.stderr).toBe(0);
      expect(JSON.parse(mesh.stdout).services.map((s: { name: string }) => s.name)).toEqual([
        'api',
        'web',
      ]);

      process.env.LUCID_OPERATOR_TOKEN = read;
      try {
        const route = await run.route(
          '--from',
          'web',
          '--to',
          'api',
          '--path',
          '/',
          '--server',
          base,
        );
        expect(route.code, route.stderr).toBe(0);
        // The command line wins over the environment.
        const wins = await run.status('--server', base, '--token', proxy);
        expect(wins.code).toBe(1);
      } finally {
        delete process.env.LUCID_OPERATOR_TOKEN;
      }

      const snapshot = await cli(['snapshot', 'web-1', '--server', base, '--type', 'clusters'], {
        LUCID_OPERATOR_TOKEN: read,
      });
      expect(snapshot.code, snapshot.stderr).toBe(0);
      expect(snapshot.stdout).toContain('resources');
    });

    it('a refused token: one clear line, exit 1', async () => {
      const none = await run.status('--server', base);
      expect(none).toMatchObject({
        code: 1,
        stderr: `lucid-mesh status: the control plane at ${base} needs an operator token (HTTP 401): pass --token, --token-file or LUCID_OPERATOR_TOKEN (lucid-mesh token issue --operator)\n`,
      });
      const asProxy = await run.mesh('--server', base, '--token', proxy);
      expect(asProxy).toMatchObject({
        code: 1,
        stderr: `lucid-mesh mesh: the control plane at ${base} refused the operator token (HTTP 403 wrong-kind): this is a proxy token for service "web"; the admin API takes operator tokens (lucid-mesh token issue --operator)\n`,
      });
      const gone = await run.route(
        '--from',
        'web',
        '--to',
        'api',
        '--path',
        '/',
        '--server',
        base,
        '--token',
        revoked,
      );
      expect(gone).toMatchObject({
        code: 1,
        stderr: `lucid-mesh route explain: the control plane at ${base} refused the operator token (HTTP 401 revoked): operator token ${idOf(revoked)} ("mallory") was revoked\n`,
      });
      for (const args of [['snapshot', 'web-1'], ['tail']]) {
        const r = await cli([...args, '--server', base]);
        expect(r.code, args.join(' ')).toBe(1);
        expect(r.stdout).toBe('');
        expect(r.stderr).toBe(
          `lucid-mesh ${args[0]}: the control plane at ${base} needs an operator token (HTTP 401): pass --token, --token-file or LUCID_OPERATOR_TOKEN (lucid-mesh token issue --operator)\n`,
        );
      }
    });

    it('bad token flags: exit 2 naming the flag', async () => {
      const missing = await run.status('--server', base, '--token-file', '/nonexistent/token');
      expect(missing).toMatchObject({
        code: 2,
        stderr: 'lucid-mesh status: --token-file: cannot read "/nonexistent/token" (ENOENT)\n',
      });
      const both = await run.mesh('--server', base, '--token', read, '--token-file', '/x');
      expect(both).toMatchObject({
        code: 2,
        stderr: 'lucid-mesh mesh: --token-file: give --token or --token-file, not both\n',
      });
      const server = await run.status('--server', 'ftp://x', '--token', read);
      expect(server).toMatchObject({
        code: 2,
        stderr:
          'lucid-mesh status: --server: expected http://HOST:PORT or https://HOST:PORT, got "ftp://x"\n',
      });
      const tail = await cli(['tail', '--server', base, '--token-file', '/nonexistent/token']);
      expect(tail.code).toBe(2);
      expect(tail.stderr).toBe(
        'lucid-mesh tail: --token-file: cannot read "/nonexistent/token" (ENOENT)\n',
      );
    });
  });
});

describe('with --admin-auth none', () => {
  it('the admin API is open (development), the xDS port still needs proxy tokens', async () => {
    const catalog = new CatalogFile();
    catalog.write(CATALOG);
    const dataDir = mkdtempSync(join(tmpdir(), 'lucid-operator-auth-'));
    const ca = await openCa({ dataDir, env: {} });
    const cp = await startTestControlPlane(
      catalog,
      {},
      { security: { ca, mtls: false, auth: 'token', adminAuth: 'none' } },
    );
    try {
      const base = `http://127.0.0.1:${cp.adminPort}`;
      for (const path of ENDPOINTS) {
        expect((await call(`${base}${path}`)).status, path).toBe(200);
      }
      const anonymous = sotwClient(cp.xdsPort);
      anonymous.send({ node: node('web-1', 'web'), typeUrl: typeUrl('clusters') });
      expect((await ended(anonymous))?.code).toBe(grpc.status.UNAUTHENTICATED);
      anonymous.close();
    } finally {
      await cp.stop();
      catalog.remove();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('the admin port over HTTPS', () => {
  const catalog = new CatalogFile();
  const dataDir = mkdtempSync(join(tmpdir(), 'lucid-operator-tls-'));
  let tls: AdminTlsFiles;
  let cp: RunningControlPlane;
  let ca: OpenedCa;
  let base: string;
  let token: string;

  beforeAll(async () => {
    catalog.write(CATALOG);
    tls = makeAdminTls();
    ca = await openCa({ dataDir, env: {} });
    cp = await startTestControlPlane(
      catalog,
      {},
      {
        security: {
          ca,
          mtls: false,
          auth: 'token',
          adminTls: { cert: tls.cert, key: tls.key },
        },
      },
    );
    base = `https://127.0.0.1:${cp.adminPort}`;
    token = await ca.tokens.issueOperator({ name: 'tls' });
  });

  afterAll(async () => {
    await cp?.stop();
    catalog.remove();
    rmSync(dataDir, { recursive: true, force: true });
    if (tls) rmSync(tls.dir, { recursive: true, force: true });
  });

  it('serves HTTPS; the token is still needed', async () => {
    expect((await call(`${base}/health`, { ca: tls.cert })).status).toBe(200);
    expect((await call(`${base}/v1/proxies`, { ca: tls.cert })).status).toBe(401);
    expect((await call(`${base}/v1/proxies`, { ca: tls.cert, token })).status).toBe(200);
    await expect(call(`http://127.0.0.1:${cp.adminPort}/health`)).rejects.toThrow();
  });

  it('operator commands: https:// with --server-ca or LUCID_SERVER_CA; one line without it', async () => {
    const withCa = await runCommand(statusCommand, [
      '--server',
      base,
      '--server-ca',
      tls.certFile,
      '--token',
      token,
    ]);
    expect(withCa.code, withCa.stderr).toBe(0);
    expect(withCa.stdout).toContain('no proxies connected');

    const env = { LUCID_SERVER_CA: tls.certFile, LUCID_OPERATOR_TOKEN: token };
    const snapshot = await cli(['snapshot', 'web-1', '--server', base, '-o', 'json'], env);
    expect(snapshot.code, snapshot.stderr).toBe(0);
    expect(JSON.parse(snapshot.stdout).node).toBe('web-1');

    const unverified = await runCommand(statusCommand, ['--server', base, '--token', token]);
    expect(unverified.code).toBe(1);
    expect(unverified.stderr).toMatch(
      new RegExp(
        `^lucid-mesh status: cannot verify the certificate of the control plane at ${base} \\(\\w+\\): give its CA with --server-ca or LUCID_SERVER_CA\\n$`,
      ),
    );
    const badCa = await runCommand(statusCommand, ['--server', base, '--server-ca', '/nope']);
    expect(badCa).toMatchObject({
      code: 2,
      stderr: 'lucid-mesh status: --server-ca: cannot read "/nope" (ENOENT)\n',
    });
  });

  it('tail follows over HTTPS with its token', async () => {
    const child = execFile(
      process.execPath,
      ['--import', 'tsx', cliEntry, 'tail', '--server', base, '--count', '1', '--json'],
      {
        cwd: repoRoot,
        timeout: 30_000,
        env: { ...process.env, LUCID_SERVER_CA: tls.certFile, LUCID_OPERATOR_TOKEN: token },
      },
    );
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    await waitFor(() => cp.events.subscriberCount > 0, {
      what: 'tail connected',
      timeoutMs: 20_000,
      details: () => out,
    });
    catalog.write({
      services: [
        ...CATALOG.services,
        { name: 'db', instances: [{ id: 'db-1', address: '127.0.0.1', port: 5432 }] },
      ],
    });
    expect(await exited, out).toBe(0);
    expect(JSON.parse(out.trim().split('\n')[0]!).event).toBe('snapshot');
  });
});
