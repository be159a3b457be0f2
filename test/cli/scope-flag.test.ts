// serve --scope (LUCID_SCOPE): parsed, named in errors, and defaulted as docs/scoping.md says
// (policy when --policy is given, else all). Also the etcd service settings' upstreams.
import { Command } from 'commander';
import { afterEach, describe, expect, it } from 'vitest';
import { meshSettingsFromFlags, trafficCliOptions } from '../../src/cli/traffic-flags.js';
import { decodeServiceSettings } from '../../src/sources/etcd/layout.js';

function parse(args: string[]): Record<string, unknown> {
  const cmd = new Command().exitOverride().configureOutput({ writeErr: () => {} });
  for (const option of trafficCliOptions()) cmd.addOption(option);
  cmd.option('--policy <file>');
  cmd.parse(args, { from: 'user' });
  return cmd.opts();
}

const settings = (args: string[]) =>
  meshSettingsFromFlags(parse(args) as unknown as Parameters<typeof meshSettingsFromFlags>[0]);

afterEach(() => {
  delete process.env.LUCID_SCOPE;
});

describe('serve --scope', () => {
  it('defaults to policy with --policy, else all; an explicit mode wins', () => {
    expect(settings([])?.scope).toBe('all');
    expect(settings(['--policy', 'p.yaml'])?.scope).toBe('policy');
    expect(settings(['--policy', 'p.yaml', '--scope', 'all'])?.scope).toBe('all');
    expect(settings(['--scope', 'declared'])?.scope).toBe('declared');
  });

  it('reads LUCID_SCOPE', () => {
    process.env.LUCID_SCOPE = 'declared';
    expect(settings([])?.scope).toBe('declared');
  });

  it('a bad mode names the flag and the value', () => {
    expect(() => parse(['--scope', 'some'])).toThrow(
      '--scope: expected one of all | declared | policy, got "some"',
    );
  });

  it('--help documents it with its env var', () => {
    const cmd = new Command();
    for (const option of trafficCliOptions()) cmd.addOption(option);
    expect(cmd.helpInformation()).toMatch(
      /--scope <mode>[\s\S]*declared upstreams[\s\S]*LUCID_SCOPE/,
    );
  });
});

describe('etcd service settings: upstreams', () => {
  it('accepted as in a catalog file, bad ones named', () => {
    expect(
      decodeServiceSettings('web', '{"upstreams": ["api", {"name": "db", "localBindPort": 5432}]}'),
    ).toEqual({
      ok: true,
      value: {
        protocol: 'http',
        upstreams: [{ name: 'api' }, { name: 'db', localBindPort: 5432 }],
      },
    });
    const bad = decodeServiceSettings('web', '{"upstreams": [{"name": "db", "localBindPort": 0}]}');
    expect(bad).toMatchObject({ ok: false, problem: expect.stringContaining('upstreams[0]') });
  });
});
