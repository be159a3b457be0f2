// Each deployment's environment, handed to the real `lucid-mesh serve` as its image runs it (the
// Dockerfile's ENTRYPOINT, no arguments): the k8s Deployment, compose's control plane and a
// compose/ha.yml replica. A variable whose value serve no longer accepts (a renamed choice, a
// flag that changed from a value to a file, a number out of range) is a usage error at start,
// which the name checks in manifests.test.ts cannot see; here it fails CI. Only what cannot
// exist on a test machine is moved, to equivalents: paths to temp files of the same content,
// Consul to a real local agent, ports to free ones, hosts to 127.0.0.1. Real serve, real Consul.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { spawnCli } from '../support/cli-process.js';
import { CONSUL_SETUP_TIMEOUT_MS, startConsul, type ConsulAgent } from '../support/consul.js';
import { httpGet } from '../support/http-app.js';
import { freePorts } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const read = (...p: string[]) => readFileSync(join(ROOT, ...p), 'utf8');
type Env = Record<string, string>;

/** The runtime stage's ENV of the Dockerfile (what every container starts with). */
function dockerfileEnv(): Env {
  const text = read('Dockerfile').replace(/\\\n\s*/g, ' ');
  const lines = text.split('\n').filter((l) => /^ENV\s/.test(l));
  const env: Env = {};
  for (const m of (lines.at(-1) ?? '').matchAll(/([A-Z_][A-Z0-9_]*)=(\S+)/g)) env[m[1]!] = m[2]!;
  return env;
}

/** Compose's ${VAR:-default} with nothing set, as a plain `up` sees it. */
const interpolate = (v: unknown) =>
  String(v).replace(/\$\{[A-Z_]+:-([^}]*)\}/g, (_, d: string) => d);

function k8sEnv(): { env: Env; catalog: string } {
  const [deployment, configMap] = ['deployment.yaml', 'configmap.yaml'].map(
    (f) => parseAllDocuments(read('k8s', f))[0]!.toJS() as unknown,
  );
  const { containers } = (
    deployment as {
      spec: { template: { spec: { containers: { env: { name: string; value?: string }[] }[] } } };
    }
  ).spec.template.spec;
  const env: Env = {};
  for (const e of containers[0]!.env) {
    // valueFrom: the optional events Secret, absent in a fresh install.
    if (e.value !== undefined) env[e.name] = e.value;
  }
  return { env, catalog: (configMap as { data: Env }).data['catalog.yaml']! };
}

function composeEnv(file: string, service: string): Env {
  const doc = parse(read('compose', file), { merge: true }) as {
    services: Record<string, { environment?: Record<string, unknown> }>;
  };
  const base = parse(read('compose', 'docker-compose.yml')) as typeof doc;
  const env = {
    ...(file === 'ha.yml' ? base.services[service]?.environment : {}),
    ...doc.services[service]!.environment,
  };
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, interpolate(v)]));
}

describe('the deployments’ environment starts the real serve', () => {
  let consul: ConsulAgent;
  const dir = mkdtempSync(join(tmpdir(), 'lucid-manifest-env-'));

  beforeAll(async () => {
    consul = await startConsul();
  }, CONSUL_SETUP_TIMEOUT_MS);

  afterAll(async () => {
    await consul?.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The manifest's env with what is specific to a cluster or host moved to this machine. */
  async function localEnv(name: string, env: Env, catalog: string): Promise<Env> {
    const [admin, xds, closed] = (await freePorts(3)) as [number, number, number];
    const local: Env = { ...env };
    const moved = (key: string, value: string) => {
      if (key in local) local[key] = value;
    };
    const catalogFile = join(dir, `${name}-catalog.yaml`);
    writeFileSync(catalogFile, catalog);
    moved('LUCID_CATALOG', catalogFile);
    moved('LUCID_DATA_DIR', join(dir, `${name}-data`));
    moved('ADMIN_PORT', String(admin));
    moved('XDS_PORT', String(xds));
    moved('LUCID_HOST', '127.0.0.1');
    moved('CONSUL_HTTP_ADDR', consul.address);
    if ('LUCID_STATE_ENCRYPTION_KEY' in local) {
      const keyFile = join(dir, `${name}-state.key`);
      writeFileSync(keyFile, `${randomBytes(32).toString('base64')}\n`);
      local.LUCID_STATE_ENCRYPTION_KEY = keyFile;
      // Each case its own CA state in the shared Consul.
      local.LUCID_STATE_PREFIX = `${name}/`;
    }
    if ('LUCID_EVENTS_AMQP' in local) {
      // The broker's host on this machine, on a port where nothing listens: serve must start
      // without waiting for it, as the deployments promise.
      const url = new URL(local.LUCID_EVENTS_AMQP!);
      url.hostname = '127.0.0.1';
      url.port = String(closed);
      local.LUCID_EVENTS_AMQP = url.toString();
    }
    return local;
  }

  const cases: [string, () => { env: Env; catalog: string }][] = [
    ['k8s', () => ({ ...k8sEnv(), env: { ...dockerfileEnv(), ...k8sEnv().env } })],
    [
      'compose',
      () => ({
        env: { ...dockerfileEnv(), ...composeEnv('docker-compose.yml', 'lucid-mesh') },
        catalog: read('examples', 'catalog.yaml'),
      }),
    ],
    [
      'compose-ha',
      () => ({
        env: { ...dockerfileEnv(), ...composeEnv('ha.yml', 'lucid-mesh-2') },
        catalog: read('examples', 'catalog.yaml'),
      }),
    ],
  ];

  it.each(cases)(
    '%s: ready with the catalog, then drains on SIGTERM',
    async (name, load) => {
      const { env, catalog } = load();
      const local = await localEnv(name, env, catalog);
      const serve = spawnCli(['serve'], local);
      try {
        let exited: number | null | undefined;
        void serve.exited.then((code) => (exited = code));
        await waitFor(
          async () => {
            const r = await httpGet(`http://127.0.0.1:${local.ADMIN_PORT}/ready`).catch(
              () => undefined,
            );
            return r?.status === 200;
          },
          {
            what: `${name}: serve ready`,
            timeoutMs: 60_000,
            details: () => serve.output(),
            failIf: () =>
              exited === undefined ? undefined : `serve exited ${exited}: ${serve.stderr()}`,
          },
        );
        expect(serve.stderr(), 'no usage error or warning on stderr').not.toMatch(
          /lucid-mesh serve:/,
        );
        // What probes, healthchecks and the Prometheus annotations call, without a token.
        for (const path of ['/health', '/ready', '/metrics']) {
          const r = await httpGet(`http://127.0.0.1:${local.ADMIN_PORT}${path}`);
          expect(r.status, `${name}: GET ${path} without a token`).toBe(200);
        }
        serve.child.kill('SIGTERM');
        expect(await serve.exited).toBe(0);
      } finally {
        await serve.stop();
      }
    },
    90_000,
  );
});
