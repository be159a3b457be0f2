// A broker URL given two ways (--amqp / --amqp-file, serve's --events-amqp / --events-amqp-file):
// a flag on the command line wins over the other option's environment variable, as any flag
// wins over its own. commander's .conflicts() refused `--amqp-file F` while LUCID_EVENTS_AMQP
// was merely exported in the shell. Both flags, or both variables: a usage error naming both.
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli-process.js';

const file = join(tmpdir(), `lucid-either-option-${process.pid}.url`);
// Port 1 refuses at once: which URL was used shows in the error (password scrubbed).
writeFileSync(file, 'amqp://fromfile:secret@127.0.0.1:1/\n');
const ENV_URL = 'amqp://fromenv:secret@127.0.0.1:1/';
afterAll(() => rmSync(file, { force: true }));

describe('lucid-mesh events: --amqp and --amqp-file', () => {
  it('--amqp-file on the command line wins over LUCID_EVENTS_AMQP', async () => {
    const r = await runCli(['events', '--amqp-file', file], { LUCID_EVENTS_AMQP: ENV_URL });
    expect(r.stderr).toContain('amqp://fromfile:***@127.0.0.1:1/');
    expect(r.stderr).not.toContain('cannot be used with');
  });

  it('--amqp on the command line wins over LUCID_EVENTS_AMQP_FILE', async () => {
    const r = await runCli(['events', '--amqp', ENV_URL], { LUCID_EVENTS_AMQP_FILE: file });
    expect(r.stderr).toContain('amqp://fromenv:***@127.0.0.1:1/');
  });

  it('both flags: exit 2 naming both', async () => {
    const r = await runCli(['events', '--amqp', ENV_URL, '--amqp-file', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--amqp and --amqp-file: give one of them');
  });

  it('both variables: exit 2 naming both', async () => {
    const r = await runCli(['events'], {
      LUCID_EVENTS_AMQP: ENV_URL,
      LUCID_EVENTS_AMQP_FILE: file,
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('LUCID_EVENTS_AMQP and LUCID_EVENTS_AMQP_FILE are both set');
  });
});

describe('lucid-mesh serve: --events-amqp and --events-amqp-file', () => {
  it('both flags: exit 2 naming both, before anything starts', async () => {
    const r = await runCli([
      'serve',
      '--catalog',
      'examples/catalog.yaml',
      '--events-amqp',
      ENV_URL,
      '--events-amqp-file',
      file,
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--events-amqp and --events-amqp-file: give one of them');
  });
});
