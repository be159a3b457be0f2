// `lucid-mesh policy check|explain`, run in-process.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { policyCommand } from '../../src/cli/policy-command.js';
import { runCommand } from '../support/run-command.js';

const example = fileURLToPath(new URL('../../examples/policy.yaml', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'lucid-policy-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = (args: string[]) => runCommand(policyCommand, args);

function write(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('policy check', () => {
  it('accepts the worked example', async () => {
    const r = await run(['check', example]);
    expect(r).toEqual({
      code: 0,
      stdout: `${example}: ok: 3 planes (chain, ops, wallet), 6 rules, default deny\n`,
      stderr: '',
    });
  });

  it('prints every problem with its path and exits 2', async () => {
    const bad = write(
      'bad.yaml',
      [
        'planes:',
        '  ops: { services: [] }',
        'defaults: { action: deny }',
        'rules:',
        '  - { from: [plane:opz], to: ["*"], action: allow }',
        '  - { from: [a], to: [b], action: permit }',
      ].join('\n'),
    );
    const r = await run(['check', bad]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toEqual([
      `${bad}: planes.ops.services: expected at least one service, got []`,
      `${bad}: rules[1].action: expected one of allow | deny, got "permit"`,
    ]);
  });

  it('reports cross-check problems once the shape is right', async () => {
    const bad = write(
      'unknown-plane.yaml',
      'defaults: { action: deny }\nrules:\n  - { from: [plane:opz], to: ["*"], action: allow }\n',
    );
    const r = await run(['check', bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `${bad}: rules[0].from[0]: unknown plane "opz" (no planes are defined)\n`,
    );
  });

  it('a missing file is exit 2 with one line', async () => {
    const r = await run(['check', join(dir, 'nope.yaml')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^lucid-mesh policy: cannot read policy ".*nope\.yaml": no such file or directory \(ENOENT\)\n$/,
    );
  });

  it('prints warnings without failing, including unknown services with --catalog', async () => {
    const catalog = write(
      'catalog.yaml',
      'services:\n  - name: api-gateway\n  - name: lucid-blocks\n  - name: tron-payment\n  - name: prometheus\n',
    );
    const r = await run(['check', example, '--catalog', catalog]);
    expect(r.code).toBe(0);
    expect(r.stderr.trim().split('\n')).toEqual([
      `${example}: warning: planes.ops.services: service "grafana" is not in the catalog`,
      `${example}: warning: rules[2].from[0]: service "grafana" is not in the catalog`,
    ]);
  });

  it('an invalid catalog is exit 2', async () => {
    const catalog = write('bad-catalog.yaml', 'services:\n  - name: Bad\n');
    const r = await run(['check', example, '--catalog', catalog]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bad-catalog\.yaml: services\[0\]\.name: expected a DNS label/);
  });

  it('usage errors are exit 2', async () => {
    expect((await run(['check'])).code).toBe(2);
    expect((await run(['check', example, 'extra'])).code).toBe(2);
  });
});

describe('policy explain', () => {
  it('prints the decision and the deciding rule', async () => {
    const r = await run(['explain', example, '--from', 'api-gateway', '--to', 'tron-payment']);
    expect(r).toEqual({
      code: 0,
      stdout:
        'allow: api-gateway → tron-payment\n' +
        'decided by rules[0]: from [api-gateway] to [plane:wallet]: allow (gateway-pays)\n',
      stderr: '',
    });
  });

  it('explains isolation', async () => {
    const r = await run(['explain', example, '--from', 'grafana', '--to', 'tron-payment']);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe('deny: grafana → tron-payment');
    expect(r.stdout).toMatch(/decided by isolation: tron-payment is in isolated plane wallet/);
    expect(r.stdout).toMatch(/skipped rules\[3\]/);
  });

  it('explains defaults', async () => {
    const r = await run(['explain', example, '--from', 'web', '--to', 'grafana']);
    expect(r.stdout).toBe('deny: web → grafana\ndecided by defaults.action: no rule matched\n');
  });

  it('requires --from and --to, as service names', async () => {
    const missing = await run(['explain', example, '--from', 'a']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--to <service>' not specified/);
    const bad = await run(['explain', example, '--from', 'A B', '--to', 'x']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe(
      'lucid-mesh policy: --from: expected a service name (a DNS label: a-z, 0-9, -), got "A B"\n',
    );
  });

  it('an invalid policy is exit 2 with its problems', async () => {
    const bad = write('bad2.yaml', 'defaults: { action: maybe }\n');
    const r = await run(['explain', bad, '--from', 'a', '--to', 'b']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`${bad}: defaults.action: expected one of allow | deny, got "maybe"\n`);
  });
});
