// k8s/README.md, followed as written: the install steps create what the Deployment needs before
// waiting for it, and the sidecar bootstrap example works with the real `lucid-mesh bootstrap`
// against a control plane with the manifests' defaults (token-authenticated xDS).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { runCli } from '../support/cli-process.js';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const readme = readFileSync(join(ROOT, 'k8s', 'README.md'), 'utf8');
type Obj = Record<string, unknown>;

/** The README's fenced blocks of one language, in order. */
const blocks = (lang: string): string[] =>
  [...readme.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]!);

/** Shell commands in the order a reader runs them (comments and continuations handled). */
const commands: string[] = blocks('sh')
  .join('\n')
  .replace(/\\\n\s*/g, ' ')
  .split('\n')
  .map((l) => l.replace(/\s+#.*$/, '').trim())
  .filter((l) => l !== '' && !l.startsWith('#'));

const deployment = parseAllDocuments(
  readFileSync(join(ROOT, 'k8s', 'deployment.yaml'), 'utf8'),
)[0]!.toJS() as {
  metadata: { namespace: string };
  spec: { template: { spec: { volumes: Obj[]; containers: { env: Obj[] }[] } } };
};
const pod = deployment.spec.template.spec;
const namespace = deployment.metadata.namespace;

/** Secrets a pod cannot start without: volumes and env references not marked optional. */
const requiredSecrets = [
  ...pod.volumes.flatMap((v) => {
    const s = v.secret as { secretName: string; optional?: boolean } | undefined;
    return s && !s.optional ? [s.secretName] : [];
  }),
  ...pod.containers.flatMap((c) =>
    c.env.flatMap((e) => {
      const ref = (e.valueFrom as { secretKeyRef?: { name: string; optional?: boolean } })
        ?.secretKeyRef;
      return ref && !ref.optional ? [ref.name] : [];
    }),
  ),
];

const step = (what: string, test: (c: string) => boolean): number => {
  const at = commands.findIndex(test);
  expect(at, `k8s/README.md has a step that ${what}`).toBeGreaterThanOrEqual(0);
  return at;
};

describe('k8s/README.md install steps', () => {
  it('create every Secret the pods need, in the namespace, before waiting for the rollout', () => {
    expect(requiredSecrets).toContain('lucid-mesh-state');
    const rollout = step('waits for the rollout', (c) =>
      /kubectl .*rollout status deployment\/lucid-mesh/.test(c),
    );
    const ns = step('creates the namespace', (c) =>
      /kubectl apply -f k8s\/namespace\.yaml|kubectl create namespace/.test(c),
    );
    for (const name of requiredSecrets) {
      const created = step(`creates Secret ${name}`, (c) =>
        new RegExp(`kubectl .*create secret generic ${name}\\b`).test(c),
      );
      expect(commands[created], 'in the manifests namespace').toContain(`-n ${namespace}`);
      expect(created, `Secret ${name} created before the rollout is awaited`).toBeLessThan(rollout);
      expect(ns, `namespace created before Secret ${name}`).toBeLessThan(created);
    }
  });
});

describe('k8s/README.md sidecar bootstrap example', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lucid-k8s-readme-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('passes a proxy token (the manifests serve with --auth token) and runs as written', async () => {
    const env = pod.containers[0]!.env;
    expect(
      env.find((e) => e.name === 'LUCID_AUTH'),
      'the manifests keep --auth token',
    ).toBe(undefined);
    const example = blocks('yaml')
      .map((b) => parse(b) as { spec?: { initContainers?: Obj[]; volumes?: Obj[] } })
      .find((b) => b.spec?.initContainers)!;
    expect(example, 'a pod spec with the bootstrap init container').toBeDefined();
    const init = example.spec!.initContainers![0] as {
      command: string[];
      args: string[];
      volumeMounts: { name: string; mountPath: string }[];
    };
    expect(init.command.slice(-2)).toEqual(['/app/dist/cli/main.js', 'bootstrap']);
    const tokenAt = init.args.findIndex((a) => a === '--token' || a === '--token-file');
    expect(tokenAt, 'the init container passes --token or --token-file').toBeGreaterThanOrEqual(0);

    // The token file comes from a volume of the example; give it a real token for the service.
    const tokenPath = init.args[tokenAt + 1]!;
    const mount = init.volumeMounts.find((m) => tokenPath.startsWith(`${m.mountPath}/`));
    expect(mount, `a volume mounted at the directory of ${tokenPath}`).toBeDefined();
    expect(example.spec!.volumes!.map((v) => v.name)).toContain(mount!.name);
    const service = init.args[init.args.indexOf('--service') + 1]!;
    const issued = await runCli([
      ...['token', 'issue', '--service', service, '--data-dir', join(dir, 'state')],
    ]);
    expect(issued.code, issued.stderr).toBe(0);
    // As the README's `token issue ... > token` writes it (with its newline).
    writeFileSync(join(dir, 'token'), issued.stdout);

    const args = init.args.map((a) =>
      a === tokenPath
        ? join(dir, 'token')
        : a === '/etc/envoy/envoy.yaml'
          ? join(dir, 'envoy.yaml')
          : a.replace('$(POD_NAME)', `${service}-0`),
    );
    const run = await runCli(['bootstrap', ...args]);
    expect(run.code, run.stderr).toBe(0);
    expect(readFileSync(join(dir, 'envoy.yaml'), 'utf8')).toContain(issued.stdout.trim());
  });
});
