// PolicyFile against real files in a temp directory and a real watcher: live reload, and a bad
// edit (invalid, deleted) keeps the last good policy and logs why.
import { mkdtemp, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { waitFor as poll } from '../support/wait.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decide } from '../../src/policy/evaluate.js';
import { PolicyFile } from '../../src/policy/policy-file.js';
import type { Policy } from '../../src/policy/schema.js';

/** Polls until `check` returns a value (not undefined/false); fails after `timeoutMs`. */
const waitFor = <T>(what: string, check: () => T | undefined | false, timeoutMs = 10_000) =>
  poll(check, { what, timeoutMs, intervalMs: 20 });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A policy whose only rule decides a → b. */
function policyYaml(action: 'allow' | 'deny', comment = ''): string {
  return `# test policy ${comment}
defaults: { action: deny }
rules:
  - { from: [a], to: [b], action: ${action} }
`;
}

interface LogLine {
  level: number;
  msg: string;
  problems?: string[];
}

let dir: string;
let file: string;
const files: PolicyFile[] = [];

async function start(path = file): Promise<{
  policyFile: PolicyFile;
  changes: Policy[];
  errors: Error[];
  logs: LogLine[];
}> {
  const logs: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void logs.push(JSON.parse(s)) });
  const policyFile = new PolicyFile(path, logger);
  files.push(policyFile);
  const changes: Policy[] = [];
  const errors: Error[] = [];
  policyFile.onChange((p) => changes.push(p));
  policyFile.onError((e) => errors.push(e));
  await policyFile.start();
  return { policyFile, changes, errors, logs };
}

const aToB = (p: Policy | undefined) => (p ? decide(p, 'a', 'b') : undefined);

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lucid-policy-file-'));
  file = join(dir, 'policy.yaml');
});

afterEach(async () => {
  await Promise.all(files.splice(0).map((f) => f.stop()));
  await rm(dir, { recursive: true, force: true });
});

describe('PolicyFile', () => {
  it('loads the file at start and announces it', async () => {
    await writeFile(file, policyYaml('allow'));
    const { policyFile, changes, logs } = await start();
    expect(aToB(policyFile.current())).toBe('allow');
    expect(changes).toHaveLength(1);
    expect(policyFile.lastError()).toBeUndefined();
    expect(logs.some((l) => l.msg === 'policy file loaded')).toBe(true);
  });

  it('applies a live edit', async () => {
    await writeFile(file, policyYaml('allow'));
    const { policyFile, changes } = await start();
    await writeFile(file, policyYaml('deny'));
    await waitFor('the edit', () => changes.length === 2);
    expect(aToB(changes[1])).toBe('deny');
    expect(aToB(policyFile.current())).toBe('deny');
  });

  it('a bad edit keeps the last good policy and logs why; the fix applies', async () => {
    await writeFile(file, policyYaml('allow'));
    const { policyFile, changes, errors, logs } = await start();
    await writeFile(file, policyYaml('allow').replace('action: allow', 'action: permit'));
    const error = await waitFor('the rejection', () => errors[0]);
    expect(error.message).toBe(
      `${file}: rules[0].action: expected one of allow | deny, got "permit"`,
    );
    expect(policyFile.lastError()).toBe(error);
    expect(aToB(policyFile.current())).toBe('allow');
    expect(changes).toHaveLength(1);
    const warning = logs.find(
      (l) => l.msg === 'policy file rejected; keeping the last good policy',
    );
    expect(warning?.problems).toEqual([
      'rules[0].action: expected one of allow | deny, got "permit"',
    ]);
    expect(warning?.level).toBe(40);

    await writeFile(file, policyYaml('deny'));
    await waitFor('the fix', () => changes.length === 2);
    expect(aToB(policyFile.current())).toBe('deny');
    expect(policyFile.lastError()).toBeUndefined();
  });

  it('a YAML syntax error is rejected with its line', async () => {
    await writeFile(file, policyYaml('allow'));
    const { policyFile, errors } = await start();
    await writeFile(file, 'defaults: { action: deny\n');
    const error = await waitFor('the rejection', () => errors[0]);
    expect(error.message).toMatch(new RegExp(`^${file}: line \\d+, column \\d+: `));
    expect(aToB(policyFile.current())).toBe('allow');
  });

  it('an edit that does not change the policy (a comment) announces nothing', async () => {
    await writeFile(file, policyYaml('allow'));
    const { changes, logs } = await start();
    await writeFile(file, policyYaml('allow', 'edited'));
    await waitFor('the re-read', () =>
      logs.some((l) => l.msg === 'policy file changed; the policy did not'),
    );
    await sleep(100);
    expect(changes).toHaveLength(1);
  });

  it('a deleted file keeps the last good policy until it comes back', async () => {
    await writeFile(file, policyYaml('allow'));
    const { policyFile, changes, errors } = await start();
    await unlink(file);
    const error = await waitFor('the missing file', () => errors[0]);
    expect(error.message).toMatch(/file not found/);
    expect(aToB(policyFile.current())).toBe('allow');
    await writeFile(file, policyYaml('deny'));
    await waitFor('the new file', () => changes.length === 2);
    expect(aToB(policyFile.current())).toBe('deny');
  });

  it('follows a rename over the file (editors, atomic writers)', async () => {
    await writeFile(file, policyYaml('allow'));
    const { policyFile, changes } = await start();
    const tmp = join(dir, '.policy.yaml.tmp');
    await writeFile(tmp, policyYaml('deny'));
    await rename(tmp, file);
    await waitFor('the renamed file', () => changes.length === 2);
    expect(aToB(policyFile.current())).toBe('deny');
  });

  it('an invalid first load leaves no policy (fail closed) until fixed', async () => {
    await writeFile(file, 'rules: []\n');
    const { policyFile, changes, logs } = await start();
    expect(policyFile.current()).toBeUndefined();
    expect(policyFile.lastError()?.message).toMatch(/defaults: required/);
    expect(logs.some((l) => /^policy file rejected; no policy loaded/.test(l.msg))).toBe(true);
    await writeFile(file, policyYaml('allow'));
    await waitFor('the fix', () => changes.length === 1);
    expect(aToB(policyFile.current())).toBe('allow');
  });

  it('reads JSON files', async () => {
    const json = join(dir, 'policy.json');
    await writeFile(
      json,
      JSON.stringify({
        defaults: { action: 'deny' },
        rules: [{ from: ['a'], to: ['b'], action: 'allow' }],
      }),
    );
    const { policyFile } = await start(json);
    expect(aToB(policyFile.current())).toBe('allow');
  });

  it('unsubscribed listeners hear nothing; a throwing listener does not stop the others', async () => {
    await writeFile(file, policyYaml('allow'));
    const { policyFile, changes, logs } = await start();
    const heard: Policy[] = [];
    const off = policyFile.onChange((p) => heard.push(p));
    policyFile.onChange(() => {
      throw new Error('boom');
    });
    await writeFile(file, policyYaml('deny'));
    await waitFor('the edit', () => changes.length === 2);
    expect(heard).toHaveLength(1);
    expect(logs.some((l) => l.msg === 'policy change listener failed')).toBe(true);
    off();
    await writeFile(file, policyYaml('allow'));
    await waitFor('the second edit', () => changes.length === 3);
    expect(heard).toHaveLength(1);
  });
});
