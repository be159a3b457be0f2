// `lucid-mesh mesh`, `route explain` (against a running control plane and offline from files)
// and the "Config problems" section of `lucid-mesh status`, run in-process against a real
// control plane; plus the built CLI entry point, to show the commands are registered.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { meshCommand } from '../../src/cli/mesh-command.js';
import { routeCommand } from '../../src/cli/route-command.js';
import { statusCommand } from '../../src/cli/status-command.js';
import type { RouteExplanation } from '../../src/mesh/explain.js';
import {
  CATALOG,
  MISSING_SUBSET,
  TRAFFIC,
  startOperatorMesh,
  type OperatorMesh,
} from '../mesh/operator-fixture.js';
import { runCli as cli } from '../support/cli-process.js';
import { freePort } from '../support/ports.js';
import { runCommand } from '../support/run-command.js';

const dir = mkdtempSync(join(tmpdir(), 'lucid-mesh-cli-'));
function write(name: string, doc: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof doc === 'string' ? doc : stringify(doc));
  return path;
}
const files = {
  catalog: write('catalog.yaml', CATALOG),
  traffic: write('traffic.yaml', TRAFFIC),
  policy: write('policy.yaml', {
    defaults: { action: 'deny' },
    rules: [{ from: ['web'], to: ['api'], action: 'allow' }],
  }),
};

let m: OperatorMesh;
beforeAll(async () => {
  m = await startOperatorMesh();
});
afterAll(async () => {
  await m?.close();
  rmSync(dir, { recursive: true, force: true });
});

const mesh = (...args: string[]) => runCommand(meshCommand, args);
const route = (...args: string[]) => runCommand(routeCommand, ['explain', ...args]);
const status = (...args: string[]) => runCommand(statusCommand, args);
/** The route most explain cases ask about. */
const WEB_TO_API = ['--from', 'web', '--to', 'api'];

const PROBLEM_LINE = `  ${MISSING_SUBSET.kind}/${MISSING_SUBSET.name}: ${MISSING_SUBSET.message}\n`;
const UNSUPPORTED =
  'Unsupported (1, not applied):\n  service-defaults/api: MaxInboundConnections\n';

describe('lucid-mesh mesh', () => {
  it('prints the IR per service, then problems and unsupported input', async () => {
    const r = await mesh('--server', m.server);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        'api  http (from service-defaults/api)',
        '  instances: api-1 passing, api-2 passing',
        '  backends:',
        '    api  2 endpoints, connect 5s, round_robin',
        '    api~v1  1 endpoint, connect 5s, round_robin',
        '    api~v2  1 endpoint, connect 5s, round_robin',
        '  routes:',
        '    [0] PathPrefix /admin → api~v2 (100%)  timeout 500ms, retries 3 on 5xx',
        '    [1] Header x-canary Exact "1" → api~v1 (100%)',
        '    [2] (any request) → api~v1 (100%)',
        '  callers:',
        '    every caller allowed (no policy, no intentions)',
        '',
        'web  http (from catalog)',
        '  instances: web-1 passing',
        '  backends:',
        '    web  1 endpoint, connect 5s, round_robin',
        '  routes:',
        '    [0] (any request) → web (100%)',
        '  callers:',
        '    every caller allowed (no policy, no intentions)',
        '',
        'Problems (1):',
        PROBLEM_LINE + UNSUPPORTED,
      ].join('\n'),
    );
  });

  it('--service S --json: the JSON of that service', async () => {
    const r = await mesh('--server', m.server, '--service', 'web', '--json');
    expect(r.code).toBe(0);
    const dump = JSON.parse(r.stdout) as { services: { name: string }[]; problems: unknown[] };
    expect(dump.services.map((s) => s.name)).toEqual(['web']);
    expect(dump.problems).toEqual([]);
  });

  it('an unknown service or an unreachable server: one line, exit 1', async () => {
    const unknown = await mesh('--server', m.server, '--service', 'nope');
    expect(unknown).toEqual({
      code: 1,
      stdout: '',
      stderr:
        'lucid-mesh mesh: /v1/mesh: HTTP 404: service: "nope" is not in the mesh (services: api, web)\n',
    });
    const down = await mesh('--server', `http://127.0.0.1:${await freePort()}`);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/^lucid-mesh mesh: cannot reach the control plane at .*\n$/);
  });
});

describe('lucid-mesh route explain', () => {
  it('against the running control plane', async () => {
    const r = await route(
      '--server',
      m.server,
      ...WEB_TO_API,
      '--path',
      '/admin/x',
      '--header',
      'x-canary=1',
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        'GET /admin/x  web → api (http, from service-defaults/api)',
        '  header x-canary: 1',
        'matched route [0] of 3: PathPrefix /admin',
        '  → api~v2 100%  (service api, subset v2; 1 endpoint; connect 5s, round_robin)',
        '  timeout: 500ms',
        '  retries: 3 on 5xx',
        'authorization: allow: no policy and no intentions apply to api: every caller is allowed',
        `note: config problem: service-router/api: ${MISSING_SUBSET.message}`,
        '',
      ].join('\n'),
    );
  });

  it('routes skipped on the way are shown with the reason', async () => {
    const r = await route('--server', m.server, ...WEB_TO_API, '--path', '/', '--method', 'post');
    expect(r.stdout).toContain('POST /  web → api');
    expect(r.stdout).toContain(
      'skipped route [0] PathPrefix /admin: path / does not start with /admin\n',
    );
    expect(r.stdout).toContain(
      'skipped route [1] Header x-canary Exact "1": header x-canary is absent\n',
    );
    expect(r.stdout).toContain('matched route [2] of 3: (any request)\n  → api~v1 100%');
    expect(r.stdout).toContain('  timeout: 15s (Envoy default)\n');
  });

  it('offline from files gives the same routing as the control plane', async () => {
    const args = [...WEB_TO_API, '--path', '/?a=1', '--header', 'x-canary=1', '--json'];
    const online = JSON.parse(
      (await route('--server', m.server, ...args)).stdout,
    ) as RouteExplanation;
    const r = await route('--catalog', files.catalog, '--traffic', files.traffic, ...args);
    expect(r.code).toBe(0);
    const offline = JSON.parse(r.stdout) as RouteExplanation;
    const routing = (e: RouteExplanation) => ({ ...e, authorization: undefined, notes: undefined });
    expect(routing(offline)).toEqual(routing(online));
    expect(offline.route?.index).toBe(1);
    expect(offline.notes).toContain(
      'offline: assumes the control plane runs with mTLS (RBAC is only applied with it)',
    );
  });

  it('offline with a policy: allowed for web, denied for others', async () => {
    const base = ['--catalog', files.catalog, '--traffic', files.traffic, '--policy', files.policy];
    const web = await route(...base, ...WEB_TO_API, '--path', '/');
    expect(web.stdout).toContain(
      'authorization: allow\n  policy: allow: the policy allows web to call api (other callers are denied)\n',
    );
    const other = await route(...base, '--from', 'api', '--to', 'web', '--path', '/');
    expect(other.stdout).toContain(
      'authorization: deny\n  policy: deny: the policy denies every caller of web it does not single out, api included\n',
    );
  });

  it('offline with --scope: a destination outside the caller scope gets 404, as serve would', async () => {
    const scoped = write('scoped.yaml', {
      services: [
        { name: 'web', upstreams: ['api'], instances: [] },
        ...['api', 'billing'].map((name) => ({
          name,
          instances: [{ id: `${name}-1`, address: '127.0.0.1', port: 8080 }],
        })),
      ],
    });
    const args = ['--catalog', scoped, '--from', 'web', '--to', 'billing', '--path', '/'];
    const note =
      "note: billing is outside the scope of web (its declared upstreams and what they route to: api): web's sidecar has no route for billing and answers 404\n";
    const declared = await route(...args, '--scope', 'declared');
    expect(declared.code).toBe(0);
    expect(declared.stdout).toContain(note);
    // serve's default without a policy: every sidecar gets every service.
    expect((await route(...args)).stdout).not.toContain('outside the scope');
    // With a policy, serve scopes by default (declared upstreams first).
    expect((await route(...args, '--policy', files.policy)).stdout).toContain(note);
    expect(await route('--server', m.server, ...args.slice(2), '--scope', 'declared')).toEqual({
      code: 2,
      stdout: '',
      stderr: 'lucid-mesh route: --scope is for offline use: add --catalog FILE\n',
    });
  });

  it('a service not in the mesh or a bad path: exit 2 and the same line online as offline', async () => {
    for (const [args, line] of [
      [['--from', 'web', '--to', 'nope', '--path', '/'], 'to: service "nope" is not in the mesh'],
      [[...WEB_TO_API, '--path', 'admin'], 'path: expected a path starting with "/", got "admin"'],
    ] as const) {
      const expected = { code: 2, stdout: '', stderr: `lucid-mesh route: ${line}\n` };
      expect(await route('--server', m.server, ...args)).toEqual(expected);
      expect(await route('--catalog', files.catalog, ...args)).toEqual(expected);
    }
  });

  it('bad input: exit 2 with one line per problem; unreachable server: exit 1', async () => {
    const badTraffic = write('bad-traffic.yaml', [
      { Kind: 'service-router', Name: 'api', Routes: [{ Destination: { NumRetries: -1 } }] },
    ]);
    const bad = await route(
      '--catalog',
      files.catalog,
      '--traffic',
      badTraffic,
      ...WEB_TO_API,
      '--path',
      '/',
    );
    expect(bad).toEqual({
      code: 2,
      stdout: '',
      stderr: `${badTraffic}: service-router/api: Routes[0].Destination.NumRetries: expected integer ≥ 0, got -1\n`,
    });
    const both = await route(
      '--catalog',
      files.catalog,
      '--server',
      m.server,
      ...WEB_TO_API,
      '--path',
      '/',
    );
    expect(both.code).toBe(2);
    expect(both.stderr).toBe(
      'lucid-mesh route: --server and --catalog: choose one (a running control plane, or files)\n',
    );
    const trafficOnly = await route('--traffic', files.traffic, ...WEB_TO_API, '--path', '/');
    expect(trafficOnly).toMatchObject({
      code: 2,
      stderr: 'lucid-mesh route: --traffic is for offline use: add --catalog FILE\n',
    });
    const unknown = await route(
      '--catalog',
      files.catalog,
      '--from',
      'web',
      '--to',
      'nope',
      '--path',
      '/',
    );
    expect(unknown).toMatchObject({
      code: 2,
      stderr: 'lucid-mesh route: to: service "nope" is not in the mesh\n',
    });
    const noPath = await route('--catalog', files.catalog, ...WEB_TO_API);
    expect(noPath.code).toBe(2);
    expect(noPath.stderr).toMatch(
      /^lucid-mesh route explain: required option '--path <path>' not specified\n/,
    );
    const down = await route(
      '--server',
      `http://127.0.0.1:${await freePort()}`,
      ...WEB_TO_API,
      '--path',
      '/',
    );
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/^lucid-mesh route explain: cannot reach the control plane at /);
  });
});

describe('lucid-mesh status', () => {
  it('lists the config problems and unsupported input after the proxies', async () => {
    const r = await status('--server', m.server);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      `no proxies connected\n\nConfig problems (1):\n${PROBLEM_LINE}${UNSUPPORTED}`,
    );
    const json = JSON.parse((await status('--server', m.server, '--json')).stdout) as {
      proxies: unknown[];
      config: { problems: unknown[] };
    };
    expect(json.proxies).toEqual([]);
    expect(json.config.problems).toEqual([MISSING_SUBSET]);
  });
});

describe('the lucid-mesh entry point', () => {
  it('has `mesh` and `route explain`', async () => {
    const [meshOut, routeOut] = await Promise.all([
      cli(['mesh', '--server', m.server, '--service', 'api']),
      cli([
        'route',
        'explain',
        '--catalog',
        files.catalog,
        '--traffic',
        files.traffic,
        ...WEB_TO_API,
        '--path',
        '/admin',
      ]),
    ]);
    expect(meshOut.stderr).toBe('');
    expect(meshOut.code).toBe(0);
    expect(meshOut.stdout).toContain('[0] PathPrefix /admin → api~v2 (100%)');
    expect(routeOut.code).toBe(0);
    expect(routeOut.stdout).toContain('matched route [0] of 3: PathPrefix /admin');
  });
});
