// Boolean flags that an environment variable may also turn on (--state-insecure-plaintext,
// --allow-settings-change): `=false` is off. commander's `.env()` turned a boolean flag on for
// any value of its variable, so LUCID_STATE_INSECURE_PLAINTEXT=false stored the CA's private
// keys unencrypted in Consul/etcd.
import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import { booleanFlagOrEnv } from '../../src/cli/options.js';
import { runCli } from '../support/cli-process.js';

describe('booleanFlagOrEnv', () => {
  const read = (value: string | undefined, flag?: boolean) =>
    booleanFlagOrEnv(flag, 'LUCID_X', value === undefined ? {} : { LUCID_X: value });

  it.each(['', 'false', 'FALSE', '0', 'no', 'off', ' false '])('%j is off', (value) => {
    expect(read(value)).toBe(false);
  });

  it.each(['true', 'True', '1', 'yes', 'on'])('%j is on', (value) => {
    expect(read(value)).toBe(true);
  });

  it('unset is off; the flag given is on whatever the variable says', () => {
    expect(read(undefined)).toBe(false);
    expect(read('false', true)).toBe(true);
  });

  it('another value is refused, naming the variable and the value', () => {
    expect(() => read('maybe')).toThrow(InvalidArgumentError);
    expect(() => read('maybe')).toThrow('LUCID_X: expected true or false, got "maybe"');
  });
});

describe('LUCID_STATE_INSECURE_PLAINTEXT (the CLI)', () => {
  // No store is reached: the state flags are checked before any connection is made.
  const tokenList = (value: string) =>
    runCli(['token', 'list', '--state', 'etcd', '--etcd', 'http://127.0.0.1:1'], {
      LUCID_STATE_INSECURE_PLAINTEXT: value,
      LUCID_STATE_ENCRYPTION_KEY: '',
    });

  it('=false still requires --state-encryption-key (exit 2)', async () => {
    const r = await tokenList('false');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('private keys go into etcd encrypted: give --state-encryption-key');
  });

  it('=maybe is a usage error naming the variable (exit 2)', async () => {
    const r = await tokenList('maybe');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      'LUCID_STATE_INSECURE_PLAINTEXT: expected true or false, got "maybe"',
    );
  });

  it('=true goes on to the store (unreachable here)', async () => {
    const r = await tokenList('true');
    expect(r.code).toBe(1);
    expect(r.stderr).not.toContain('--state-encryption-key');
    expect(r.stderr).toContain('127.0.0.1:1');
  });
});
