// Deployment artefacts (Dockerfile, compose/, k8s/) and our own generated protos: checks for the
// mistakes that would only show up at deploy time (a port or probe path that does not match the
// CLI, a Service that selects nothing, a PDB that blocks every drain, a catalog that the control
// plane would reject, generated code that does not load).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, posix, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { parseCatalog } from '../../src/catalog/schema.js';
import { serveCommand } from '../../src/cli/serve-command.js';
import { parseBrokerUrl } from '../../src/events/amqp-url.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const at = (...parts: string[]): string => join(ROOT, ...parts);
const read = (...parts: string[]): string => readFileSync(at(...parts), 'utf8');

const NAMESPACE = 'lucid-service-mesh';

// What `lucid-mesh serve` itself reads: its flags' defaults and environment variables.
const serveOptions = serveCommand().options;
function serveOption(long: string) {
  const option = serveOptions.find((o) => o.long === long);
  if (!option) throw new Error(`lucid-mesh serve has no ${long} option`);
  return option;
}
/** HTTP admin (/health, /ready, /metrics): 8080. */
const ADMIN_PORT = serveOption('--admin-port').defaultValue as number;
/** gRPC ADS: 8081. */
const XDS_PORT = serveOption('--xds-port').defaultValue as number;
/** Environment variables a deployment may set: those `serve` reads, plus Node's own. */
const KNOWN_ENV = new Set([
  ...serveOptions.flatMap((o) => (o.envVar ? [o.envVar] : [])),
  'NODE_ENV',
  'NODE_OPTIONS',
]);

function expectKnownEnv(names: Iterable<string>, where: string): void {
  for (const name of names) {
    expect(KNOWN_ENV.has(name), `${where} sets ${name}, which lucid-mesh serve does not read`).toBe(
      true,
    );
  }
}

describe('lucid-mesh serve (what the deployments rely on)', () => {
  it('defaults to admin port 8080 and xDS port 8081 and reads its settings from the env', () => {
    expect([ADMIN_PORT, XDS_PORT]).toEqual([8080, 8081]);
    for (const name of ['LUCID_CATALOG', 'XDS_PORT', 'ADMIN_PORT', 'LOG_LEVEL']) {
      expect(KNOWN_ENV.has(name), name).toBe(true);
    }
  });
});

type Obj = Record<string, unknown>;

function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Walks `path` into nested objects/arrays; fails the test naming the missing step. */
function get(root: unknown, path: string, what = 'document'): unknown {
  let cur: unknown = root;
  for (const key of path.split('.')) {
    if (Array.isArray(cur) && /^\d+$/.test(key)) cur = cur[Number(key)];
    else if (isObj(cur)) cur = cur[key];
    else throw new Error(`${what}: ${path}: "${key}" is not reachable`);
  }
  return cur;
}

const obj = (root: unknown, path: string, what?: string): Obj => {
  const v = get(root, path, what);
  if (!isObj(v)) throw new Error(`${what ?? 'document'}: ${path} is not a mapping`);
  return v;
};

const arr = (root: unknown, path: string, what?: string): unknown[] => {
  const v = get(root, path, what);
  if (!Array.isArray(v)) throw new Error(`${what ?? 'document'}: ${path} is not a list`);
  return v;
};

// ---------------------------------------------------------------------------------------------
// Kubernetes
// ---------------------------------------------------------------------------------------------

interface K8sObject extends Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
}

const k8sFiles = readdirSync(at('k8s'))
  .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
  .sort();

function loadYamlDocs(file: string): unknown[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  return docs.map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]?.message}`);
    return doc.toJS() as unknown;
  });
}

const k8sObjects: { file: string; object: K8sObject }[] = k8sFiles
  .filter((f) => f !== 'kustomization.yaml')
  .flatMap((file) =>
    loadYamlDocs(at('k8s', file))
      .filter((d) => d !== null && d !== undefined)
      .map((object) => ({ file, object: object as K8sObject })),
  );

function one(kind: string): K8sObject {
  const found = k8sObjects.filter((o) => o.object.kind === kind);
  expect(
    found.map((o) => o.file),
    `exactly one ${kind} in k8s/`,
  ).toHaveLength(1);
  return found[0]!.object;
}

/** True when every key=value of `selector` is among `labels`. */
function selects(selector: Obj, labels: Obj): boolean {
  const entries = Object.entries(selector);
  return entries.length > 0 && entries.every(([k, v]) => labels[k] === v);
}

interface ContainerPort {
  name?: string;
  containerPort: number;
}

describe('k8s manifests', () => {
  const deployment = one('Deployment');
  const podLabels = obj(deployment, 'spec.template.metadata.labels', 'Deployment');
  const containers = arr(deployment, 'spec.template.spec.containers', 'Deployment') as Obj[];
  const container = containers.find((c) => c.name === 'lucid-mesh') ?? containers[0];
  const ports = arr(container, 'ports', 'container') as ContainerPort[];
  const env = new Map(
    (arr(container, 'env', 'container') as { name: string; value?: string }[]).map((e) => [
      e.name,
      e.value,
    ]),
  );

  /** A probe's port is a container port name or number; resolve it to the number. */
  function portNumber(port: unknown): number | undefined {
    if (typeof port === 'number') return port;
    return ports.find((p) => p.name === port)?.containerPort;
  }

  it('are well-formed objects in the lucid-service-mesh namespace', () => {
    expect(k8sObjects.length).toBeGreaterThanOrEqual(5);
    for (const { file, object } of k8sObjects) {
      expect(typeof object.apiVersion, `${file}: apiVersion`).toBe('string');
      expect(typeof object.kind, `${file}: kind`).toBe('string');
      expect(object.metadata?.name, `${file}: metadata.name`).toMatch(/^[a-z0-9-]+$/);
      if (object.kind === 'Namespace') expect(object.metadata.name).toBe(NAMESPACE);
      else expect(object.metadata.namespace, `${file}: metadata.namespace`).toBe(NAMESPACE);
    }
    expect(k8sObjects.map((o) => o.object.kind).sort()).toEqual(
      ['ConfigMap', 'Deployment', 'Namespace', 'PodDisruptionBudget', 'Service'].sort(),
    );
  });

  it('kustomization.yaml lists every manifest, and only existing ones', () => {
    const kustomization = parse(read('k8s', 'kustomization.yaml')) as Obj;
    expect(kustomization.kind).toBe('Kustomization');
    expect(kustomization.namespace).toBe(NAMESPACE);
    const resources = arr(kustomization, 'resources', 'kustomization.yaml') as string[];
    expect([...resources].sort()).toEqual(k8sFiles.filter((f) => f !== 'kustomization.yaml'));
    // The image the Deployment names is the one kustomize rewrites.
    const images = arr(kustomization, 'images', 'kustomization.yaml') as Obj[];
    const image = String(container?.image);
    expect(images.map((i) => i.name)).toContain(image.split(':')[0]);
  });

  it('Deployment runs ≥ 2 replicas with selector matching its pod labels', () => {
    const replicas = get(deployment, 'spec.replicas');
    expect(typeof replicas).toBe('number');
    expect(replicas as number).toBeGreaterThanOrEqual(2);
    expect(selects(obj(deployment, 'spec.selector.matchLabels'), podLabels)).toBe(true);
  });

  it('container ports are http 8080 and grpc 8081, matching the env and the CLI defaults', () => {
    expect(ports.map((p) => [p.name, p.containerPort]).sort()).toEqual([
      ['grpc', XDS_PORT],
      ['http', ADMIN_PORT],
    ]);
    expect(env.get('ADMIN_PORT')).toBe(String(ADMIN_PORT));
    expect(env.get('XDS_PORT')).toBe(String(XDS_PORT));
    expect(env.has('LOG_LEVEL')).toBe(true);
    expectKnownEnv(env.keys(), 'deployment.yaml');
  });

  it('liveness probes /health and readiness probes /ready on the http port', () => {
    const liveness = obj(container, 'livenessProbe.httpGet', 'livenessProbe');
    const readiness = obj(container, 'readinessProbe.httpGet', 'readinessProbe');
    expect(liveness.path).toBe('/health');
    expect(readiness.path).toBe('/ready');
    expect(portNumber(liveness.port)).toBe(ADMIN_PORT);
    expect(portNumber(readiness.port)).toBe(ADMIN_PORT);
  });

  it('runs as nonroot 65532 with requests and limits', () => {
    const podSecurity = obj(deployment, 'spec.template.spec.securityContext');
    expect(podSecurity.runAsNonRoot).toBe(true);
    expect(podSecurity.runAsUser).toBe(65532);
    const security = obj(container, 'securityContext', 'container');
    expect(security.allowPrivilegeEscalation).toBe(false);
    for (const kind of ['requests', 'limits']) {
      const r = obj(container, `resources.${kind}`, 'container');
      expect(r.cpu, `resources.${kind}.cpu`).toBeTruthy();
      expect(r.memory, `resources.${kind}.memory`).toBeTruthy();
    }
  });

  it('LUCID_CATALOG points at the ConfigMap key, mounted as a directory', () => {
    const catalogPath = env.get('LUCID_CATALOG');
    expect(catalogPath).toBe('/etc/lucid-mesh/catalog.yaml');
    const mounts = arr(container, 'volumeMounts', 'container') as {
      name: string;
      mountPath: string;
      subPath?: string;
    }[];
    const mount = mounts.find((m) => catalogPath!.startsWith(`${m.mountPath}/`));
    expect(mount, `a volumeMount containing ${catalogPath}`).toBeDefined();
    // subPath mounts never see ConfigMap updates.
    expect(mount!.subPath).toBeUndefined();
    const volumes = arr(deployment, 'spec.template.spec.volumes') as Obj[];
    const volume = volumes.find((v) => v.name === mount!.name);
    const configMapName = get(volume, 'configMap.name', 'catalog volume');
    const configMap = one('ConfigMap');
    expect(configMap.metadata.name).toBe(configMapName);
    const key = posix.relative(mount!.mountPath, catalogPath!);
    expect(Object.keys(obj(configMap, 'data', 'ConfigMap'))).toContain(key);
  });

  it('the ConfigMap catalog is valid for the control plane', () => {
    const data = obj(one('ConfigMap'), 'data', 'ConfigMap');
    const text = data['catalog.yaml'];
    expect(typeof text).toBe('string');
    const catalog = parseCatalog(parse(text as string));
    expect(catalog.services.map((s) => s.name)).toEqual(['hello', 'world']);
    expect(catalog.services.every((s) => s.instances.length > 0)).toBe(true);
  });

  it('Service selects the Deployment pods and exposes http 8080 and grpc 8081', () => {
    const service = one('Service');
    expect(get(service, 'spec.type') ?? 'ClusterIP').toBe('ClusterIP');
    expect(selects(obj(service, 'spec.selector', 'Service'), podLabels)).toBe(true);
    const servicePorts = arr(service, 'spec.ports', 'Service') as {
      name: string;
      port: number;
      targetPort?: number | string;
    }[];
    const byName = new Map(servicePorts.map((p) => [p.name, p]));
    expect([...byName.keys()].sort()).toEqual(['grpc', 'http']);
    expect(byName.get('http')!.port).toBe(ADMIN_PORT);
    expect(byName.get('grpc')!.port).toBe(XDS_PORT);
    for (const p of servicePorts) {
      expect(portNumber(p.targetPort ?? p.port), `Service port ${p.name} target`).toBe(p.port);
    }
  });

  it('LUCID_EVENTS_AMQP comes from an optional Secret, so the replicas start without it', () => {
    const entries = arr(container, 'env', 'container') as Obj[];
    const events = entries.find((e) => e.name === 'LUCID_EVENTS_AMQP');
    expect(events, 'LUCID_EVENTS_AMQP in the container env').toBeDefined();
    // The URL holds the broker password: never a literal in the manifests.
    expect(events!.value).toBeUndefined();
    const ref = obj(events, 'valueFrom.secretKeyRef', 'LUCID_EVENTS_AMQP');
    expect(ref).toEqual({ name: 'lucid-mesh-events', key: 'amqp-url', optional: true });
    // Not shipped here (the kinds test lists every object): the operator creates it.
    expect(k8sObjects.filter((o) => o.object.kind === 'Secret')).toEqual([]);
  });

  it('PodDisruptionBudget selects the pods and leaves room to drain (minAvailable < replicas)', () => {
    const pdb = one('PodDisruptionBudget');
    expect(pdb.apiVersion).toBe('policy/v1');
    expect(selects(obj(pdb, 'spec.selector.matchLabels', 'PDB'), podLabels)).toBe(true);
    const minAvailable = get(pdb, 'spec.minAvailable');
    expect(typeof minAvailable).toBe('number');
    expect(minAvailable as number).toBeGreaterThanOrEqual(1);
    expect(minAvailable as number).toBeLessThan(get(deployment, 'spec.replicas') as number);
  });
});

// ---------------------------------------------------------------------------------------------
// docker compose
// ---------------------------------------------------------------------------------------------

describe('compose/docker-compose.yml', () => {
  const compose = parse(read('compose', 'docker-compose.yml')) as Obj;
  const services = obj(compose, 'services', 'compose');
  const cp = obj(services, 'lucid-mesh', 'compose services');
  const env = obj(cp, 'environment', 'lucid-mesh');

  it('builds the control plane from the repository Dockerfile', () => {
    const context = resolve(at('compose'), String(get(cp, 'build.context')));
    expect(context).toBe(ROOT);
    const dockerfile = String(get(cp, 'build.dockerfile') ?? 'Dockerfile');
    expect(existsSync(join(context, dockerfile))).toBe(true);
  });

  it('publishes 8080 and 8081 and passes the same ports in the env', () => {
    const ports = arr(cp, 'ports', 'lucid-mesh').map(String);
    expect(ports).toContain(`${ADMIN_PORT}:${ADMIN_PORT}`);
    expect(ports).toContain(`${XDS_PORT}:${XDS_PORT}`);
    expect(String(env.ADMIN_PORT)).toBe(String(ADMIN_PORT));
    expect(String(env.XDS_PORT)).toBe(String(XDS_PORT));
    expectKnownEnv(Object.keys(env), 'docker-compose.yml');
  });

  it('LUCID_CATALOG resolves, through a bind mount, to a valid catalog on the host', () => {
    const catalogPath = String(env.LUCID_CATALOG);
    const volumes = arr(cp, 'volumes', 'lucid-mesh').map(String);
    const mount = volumes
      .map((v) => v.split(':'))
      .find(([, target]) => catalogPath === target || catalogPath.startsWith(`${target}/`));
    expect(mount, `a volume containing ${catalogPath}`).toBeDefined();
    const [source, target] = mount as [string, string];
    expect(isAbsolute(source)).toBe(false);
    const hostFile = join(resolve(at('compose'), source), posix.relative(target, catalogPath));
    expect(hostFile).toBe(at('examples', 'catalog.yaml'));
    const catalog = parseCatalog(parse(readFileSync(hostFile, 'utf8')));
    expect(catalog.services.length).toBeGreaterThan(0);
  });

  it('LUCID_EVENTS_AMQP reaches the rabbitmq service with the user, password and vhost it creates', () => {
    // Compose's ${VAR:-default} with nothing set, as a plain `up` sees it.
    const interpolate = (text: unknown) =>
      String(text).replace(/\$\{[A-Z_]+:-([^}]*)\}/g, (_, fallback: string) => fallback);
    const rabbitmq = obj(services, 'rabbitmq', 'compose services');
    expect(String(rabbitmq.image)).toMatch(/^rabbitmq:3\.\d+-management-alpine$/);
    expect(rabbitmq.profiles, 'rabbitmq starts with a plain `up`').toBeUndefined();
    const url = new URL(
      parseBrokerUrl(interpolate(env.LUCID_EVENTS_AMQP), 'LUCID_EVENTS_AMQP').url,
    );
    const brokerEnv = obj(rabbitmq, 'environment', 'rabbitmq');
    expect(url.protocol).toBe('amqp:');
    expect([url.hostname, url.port]).toEqual(['rabbitmq', '5672']);
    expect(decodeURIComponent(url.username)).toBe(brokerEnv.RABBITMQ_DEFAULT_USER);
    expect(decodeURIComponent(url.password)).toBe(interpolate(brokerEnv.RABBITMQ_DEFAULT_PASS));
    expect(decodeURIComponent(url.pathname.slice(1))).toBe(brokerEnv.RABBITMQ_DEFAULT_VHOST);
    // The broker's data and the control plane's outbox (under LUCID_DATA_DIR) outlive restarts.
    const named = Object.keys(obj(compose, 'volumes', 'compose'));
    const volumeOf = (svc: Obj, target: string) =>
      arr(svc, 'volumes')
        .map(String)
        .find((v) => v.split(':')[1] === target)
        ?.split(':')[0];
    expect(named).toContain(volumeOf(rabbitmq, '/var/lib/rabbitmq'));
    expect(named).toContain(volumeOf(cp, String(env.LUCID_DATA_DIR)));
    // The control plane must not wait for the broker (events wait in the outbox).
    expect(Object.keys((cp.depends_on as Obj | undefined) ?? {})).not.toContain('rabbitmq');
  });

  it('an Envoy sidecar, if present, is optional and uses the pinned Envoy image', () => {
    for (const [name, svc] of Object.entries(services)) {
      if (name === 'lucid-mesh' || !isObj(svc)) continue;
      if (String(svc.image).startsWith('envoyproxy/envoy')) {
        expect(svc.image).toBe('envoyproxy/envoy:v1.40-latest');
        // Needs a generated bootstrap, so it must not start with a plain `up`.
        expect(svc.profiles, `${name}.profiles`).toBeDefined();
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Dockerfile
// ---------------------------------------------------------------------------------------------

interface Instruction {
  keyword: string;
  args: string;
  stage: number;
}

/** Instructions of a Dockerfile: comments dropped, continuation lines joined. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = '';
  let stage = -1;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') || (line === '' && pending === '')) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const full = (pending + line).trim();
    pending = '';
    if (full === '') continue;
    const m = /^(\S+)\s*(.*)$/.exec(full)!;
    const keyword = m[1]!.toUpperCase();
    if (keyword === 'FROM') stage += 1;
    out.push({ keyword, args: m[2]!, stage });
  }
  return out;
}

describe('Dockerfile', () => {
  const instructions = parseDockerfile(read('Dockerfile'));
  const lastStage = Math.max(...instructions.map((i) => i.stage));
  const runtime = instructions.filter((i) => i.stage === lastStage);
  const build = instructions.filter((i) => i.stage < lastStage);
  const of = (list: Instruction[], keyword: string) => list.filter((i) => i.keyword === keyword);

  it('is multi-stage: a node:20 build, a distroless nodejs20 nonroot runtime', () => {
    expect(lastStage).toBeGreaterThanOrEqual(1);
    expect(of(build, 'FROM')[0]!.args).toMatch(/^node:20\b/);
    expect(of(runtime, 'FROM')[0]!.args).toBe('gcr.io/distroless/nodejs20-debian12:nonroot');
    const user = of(runtime, 'USER').at(-1)?.args;
    expect(['65532', '65532:65532', 'nonroot', 'nonroot:nonroot']).toContain(user);
  });

  it('builds with dev dependencies, then prunes them after gen/ and dist/ exist', () => {
    const runs = of(build, 'RUN').map((i) => i.args);
    const ci = runs.findIndex((r) => /\bnpm ci\b/.test(r));
    const prepare = runs.findIndex(
      (r) => /\bnpm run prepare\b/.test(r) || /\bnpm ci\b(?!.*--ignore-scripts)/.test(r),
    );
    const prune = runs.findIndex((r) => /\bnpm prune --omit=dev\b/.test(r));
    expect(ci).toBeGreaterThanOrEqual(0);
    expect(prepare).toBeGreaterThanOrEqual(ci);
    expect(prune).toBeGreaterThanOrEqual(prepare);
    if (prune === prepare) {
      const r = runs[prune]!;
      expect(r.indexOf('npm prune')).toBeGreaterThan(r.search(/npm (run prepare|ci)/));
    }
    const copied = of(runtime, 'COPY')
      .filter((i) => i.args.startsWith('--from='))
      .map((i) => i.args.split(/\s+/).at(-2));
    for (const dir of ['/app/node_modules', '/app/dist', '/app/gen', '/app/package.json']) {
      expect(copied, `runtime copies ${dir}`).toContain(dir);
    }
  });

  it('EXPOSEs 8080 and 8081', () => {
    const exposed = of(runtime, 'EXPOSE').flatMap((i) => i.args.split(/\s+/));
    expect(exposed).toContain(String(ADMIN_PORT));
    expect(exposed).toContain(String(XDS_PORT));
  });

  it('ENTRYPOINT runs dist/cli/main.js serve, with LUCID_CATALOG defaulting to /etc/lucid-mesh', () => {
    const entrypoint = JSON.parse(of(runtime, 'ENTRYPOINT').at(-1)!.args) as string[];
    expect(entrypoint[0]).toMatch(/node$/);
    expect(entrypoint.some((a) => a.endsWith('dist/cli/main.js'))).toBe(true);
    expect(entrypoint.at(-1)).toBe('serve');
    const env = of(runtime, 'ENV')
      .map((i) => i.args)
      .join(' ');
    expect(env).toMatch(/\bLUCID_CATALOG=\/etc\/lucid-mesh\/catalog\.yaml\b/);
    expect(env).toMatch(new RegExp(`\\bADMIN_PORT=${ADMIN_PORT}\\b`));
    expect(env).toMatch(new RegExp(`\\bXDS_PORT=${XDS_PORT}\\b`));
    expectKnownEnv(
      [...env.matchAll(/(?:^|\s)([A-Z_][A-Z0-9_]*)=/g)].map((m) => m[1]!),
      'Dockerfile',
    );
  });

  it('HEALTHCHECK probes /health without a shell (distroless)', () => {
    const hc = of(runtime, 'HEALTHCHECK').at(-1)?.args ?? '';
    expect(hc).toContain('/health');
    const cmd = /\bCMD\s+(\[.*\])\s*$/.exec(hc)?.[1];
    expect(cmd, 'HEALTHCHECK CMD in exec form').toBeDefined();
    expect((JSON.parse(cmd!) as string[])[0]).toBe('/nodejs/bin/node');
  });

  it('.dockerignore keeps build outputs out and the sources prepare needs in', () => {
    const patterns = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    for (const p of ['node_modules', 'dist', 'gen']) expect(patterns).toContain(p);
    const needed = [
      'package.json',
      'package-lock.json',
      'src',
      'scripts',
      'proto',
      'buf.yaml',
      'buf.gen.yaml',
      'tsconfig.json',
      'tsconfig.build.json',
      'examples',
      'sidecar-bootstrap',
    ];
    for (const name of needed) {
      expect(patterns, `${name} must reach the build context`).not.toContain(name);
      expect(patterns).not.toContain(`${name}/`);
    }
    expect(patterns).not.toContain('*');
  });
});

// ---------------------------------------------------------------------------------------------
// Our own protos (proto/ -> gen/lucidmesh via scripts/gen-own-protos.sh)
// ---------------------------------------------------------------------------------------------

describe('operator API protos', () => {
  const generated = at('gen', 'lucidmesh', 'operator', 'v1', 'operator_pb.js');
  const runScript = () =>
    execFileSync('bash', [at('scripts', 'gen-own-protos.sh')], { cwd: ROOT, stdio: 'pipe' });
  let pb: typeof import('../../gen/lucidmesh/operator/v1/operator_pb.js');
  let protobuf: typeof import('@bufbuild/protobuf');
  let wkt: typeof import('@bufbuild/protobuf/wkt');

  beforeAll(async () => {
    runScript();
    pb = await import('../../gen/lucidmesh/operator/v1/operator_pb.js');
    protobuf = await import('@bufbuild/protobuf');
    wkt = await import('@bufbuild/protobuf/wkt');
  });

  it('gen-own-protos.sh is idempotent: a second run leaves the output untouched', () => {
    const before = statSync(generated).mtimeMs;
    runScript();
    expect(statSync(generated).mtimeMs).toBe(before);
  });

  it('ProxyStatus round-trips through the binary encoding', () => {
    const { create, toBinary, fromBinary, equals } = protobuf;
    const connected = new Date('2026-01-02T03:04:05.678Z');
    const status = create(pb.ProxyStatusSchema, {
      nodeId: 'hello-1',
      service: 'hello',
      mode: pb.Mode.DELTA,
      connectedSince: wkt.timestampFromDate(connected),
      types: [
        {
          typeUrl: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
          sentVersion: 'c0ffee',
          sentNonce: '7',
          ackedVersion: 'c0ffee',
          state: pb.SyncState.SYNCED,
        },
        {
          typeUrl: 'type.googleapis.com/envoy.config.listener.v3.Listener',
          sentVersion: 'beef',
          sentNonce: '8',
          ackedVersion: 'abcd',
          state: pb.SyncState.NACKED,
          nackError: 'duplicate listener name',
        },
      ],
    });
    const bytes = toBinary(pb.ProxyStatusSchema, status);
    expect(bytes.length).toBeGreaterThan(0);
    const back = fromBinary(pb.ProxyStatusSchema, bytes);
    expect(equals(pb.ProxyStatusSchema, back, status)).toBe(true);
    expect(back.nodeId).toBe('hello-1');
    expect(back.mode).toBe(pb.Mode.DELTA);
    expect(wkt.timestampDate(back.connectedSince!).toISOString()).toBe(connected.toISOString());
    expect(back.types.map((t) => t.state)).toEqual([pb.SyncState.SYNCED, pb.SyncState.NACKED]);
    expect(back.types[1]!.nackError).toBe('duplicate listener name');

    // Enum names on the wire (JSON) carry the buf STANDARD prefixes.
    expect(protobuf.toJson(pb.ProxyStatusSchema, back)).toMatchObject({
      nodeId: 'hello-1',
      mode: 'MODE_DELTA',
      connectedSince: '2026-01-02T03:04:05.678Z',
      types: [{ state: 'SYNC_STATE_SYNCED' }, { state: 'SYNC_STATE_NACKED' }],
    });
  });

  it('ListProxies request/response and the OperatorService descriptor', () => {
    const { create, toBinary, fromBinary } = protobuf;
    const response = create(pb.ListProxiesResponseSchema, {
      proxies: [{ nodeId: 'a', mode: pb.Mode.SOTW }, { nodeId: 'b' }],
      controlPlaneId: 'lucid-mesh-0',
    });
    const back = fromBinary(
      pb.ListProxiesResponseSchema,
      toBinary(pb.ListProxiesResponseSchema, response),
    );
    expect(back.proxies.map((p) => [p.nodeId, p.mode])).toEqual([
      ['a', pb.Mode.SOTW],
      ['b', pb.Mode.UNSPECIFIED],
    ]);
    expect(back.controlPlaneId).toBe('lucid-mesh-0');

    const method = pb.OperatorService.method.listProxies;
    expect(pb.OperatorService.typeName).toBe('lucidmesh.operator.v1.OperatorService');
    expect(method.methodKind).toBe('unary');
    expect(method.input.typeName).toBe('lucidmesh.operator.v1.ListProxiesRequest');
    expect(method.output.typeName).toBe('lucidmesh.operator.v1.ListProxiesResponse');
  });
});
