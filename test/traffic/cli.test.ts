// `lucid-mesh config check`, run in-process.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { configCommand } from '../../src/cli/config-command.js';
import { runCommand } from '../support/run-command.js';
import * as consul from './consul-entries.js';

const example = fileURLToPath(new URL('../../examples/traffic.yaml', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'lucid-config-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = (args: string[]) => runCommand(configCommand, args);

function write(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('config check', () => {
  it('accepts the example', async () => {
    const r = await run(['check', example]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(`^${example}: ok: \\d+ entries \\(.*service-router.*\\)\\n$`),
    );
  });

  it('counts entries per kind and lists unsupported fields without failing', async () => {
    const file = write(
      'consul.json',
      JSON.stringify([
        consul.serviceRouter,
        consul.serviceResolver,
        { ...consul.serviceDefaults, Mode: 'transparent' },
        { Kind: 'service-defaults', Name: 'api', Protocol: 'grpc' },
        { Kind: 'mesh', Name: 'mesh' },
      ]),
    );
    const r = await run(['check', file]);
    expect(r).toEqual({
      code: 0,
      stdout: `${file}: ok: 4 entries (2 service-defaults, 1 service-router, 1 service-resolver)\n`,
      stderr:
        `${file}: unsupported: mesh/mesh: (the whole entry: lucid-mesh does not implement this kind)\n` +
        `${file}: unsupported: service-defaults/web: Mode\n`,
    });
  });

  it('prints every problem with the entry and the path, exit 1', async () => {
    const file = write(
      'bad.yaml',
      [
        '- Kind: service-router',
        '  Name: web',
        '  Routes:',
        '    - Match: { HTTP: { PathPrefix: /a } }',
        '    - Destination: { NumRetries: -1 }',
        '- Kind: service-splitter',
        '  Name: web',
        '  Splits: [{ Weight: 90 }, { Weight: 5 }]',
      ].join('\n'),
    );
    const r = await run(['check', file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toEqual([
      `${file}: service-router/web: Routes[1].Destination.NumRetries: expected integer ≥ 0, got -1`,
      `${file}: service-splitter/web: Splits: expected weights summing to 100, got 95`,
    ]);
  });

  it('references Consul would refuse: subsets the resolver does not define, routing a tcp service; with --catalog, missing services', async () => {
    const file = write(
      'dangling.yaml',
      [
        '- Kind: service-resolver',
        '  Name: api',
        '  Subsets: { v1: { Filter: \'"v1" in Service.Tags\' } }',
        '- Kind: service-router',
        '  Name: api',
        '  Routes:',
        '    - Match: { HTTP: { PathPrefix: /a } }',
        '      Destination: { ServiceSubset: v9 }',
        '    - Match: { HTTP: { PathPrefix: /b } }',
        '      Destination: { Service: billing }',
        '- Kind: service-splitter',
        '  Name: web',
        '  Splits: [{ Weight: 50, Service: api, ServiceSubset: v1 }, { Weight: 50 }]',
        '- Kind: service-defaults',
        '  Name: db',
        '  Protocol: tcp',
        '- Kind: service-router',
        '  Name: db',
        '  Routes: [{ Destination: { NumRetries: 1 } }]',
      ].join('\n'),
    );
    const r = await run(['check', file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toEqual([
      `${file}: service-router/api: Routes[0].Destination: subset "v9" is not defined by service-resolver/api; using the default destination`,
      `${file}: service-router/db: service "db" is tcp (from service-defaults/db); routing needs http, http2 or grpc, so this entry does not apply`,
    ]);

    const catalog = write(
      'catalog.yaml',
      'services:\n  - { name: api, instances: [] }\n  - { name: web, instances: [] }\n',
    );
    const withCatalog = await run(['check', file, '--catalog', catalog]);
    expect(withCatalog.code).toBe(1);
    expect(withCatalog.stderr).toContain(
      `${file}: service-router/api: Routes[1].Destination: service "billing" is not in the catalog; using the default destination\n`,
    );
    const missing = await run(['check', file, '--catalog', join(dir, 'none.yaml')]);
    expect(missing.stderr).toMatch(/^lucid-mesh config: cannot read ".*none\.yaml": no such file/);
    expect(missing.code).toBe(1);
  });

  it('syntax errors name the line; a missing file is one line; both exit 1', async () => {
    const broken = write('broken.yaml', '- Kind: service-router\n  Name: [web\n');
    const r = await run(['check', broken]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^${broken}: line \\d+, column \\d+: `));
    const missing = await run(['check', join(dir, 'nope.yaml')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(
      /^lucid-mesh config: cannot read ".*nope\.yaml": no such file or directory \(ENOENT\)\n$/,
    );
  });

  it('usage errors are exit 2; --help is 0', async () => {
    expect((await run(['check'])).code).toBe(2);
    expect((await run(['check', example, 'extra'])).code).toBe(2);
    const unknown = await run(['check', example, '--strict']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^lucid-mesh config: unknown option '--strict'/);
    const help = await run(['check', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Validate a traffic configuration file/);
  });
});
