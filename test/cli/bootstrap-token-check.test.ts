// `lucid-mesh bootstrap --token` with the token an operator most easily grabs by mistake: the
// operator token just exported for `status`, the token of another service, one that has
// expired. The control plane would refuse each (Envoy only logs UNAUTHENTICATED or
// PERMISSION_DENIED and never gets its config), so bootstrap says so at once: exit 2, one line
// naming --token. Tokens minted by the real CLI in a temporary data directory.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli-process.js';

const BOOTSTRAP = ['bootstrap', '--node-id', 'hello-1', '--service', 'hello'];
const XDS = ['--xds', '127.0.0.1:18000'];

describe('bootstrap --token checks what the token is for', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'lucid-bootstrap-token-'));
  const tokens: Record<'hello' | 'world' | 'operator' | 'expired', string> = {
    hello: '',
    world: '',
    operator: '',
    expired: '',
  };

  beforeAll(async () => {
    const issue = async (args: string[]) => {
      const r = await runCli(['token', 'issue', ...args, '--data-dir', dataDir]);
      expect(r.code, r.stderr).toBe(0);
      return r.stdout.trim();
    };
    // One after the other: the first creates the token key.
    tokens.hello = await issue(['--service', 'hello']);
    tokens.expired = await issue(['--service', 'hello', '--ttl', '1s']);
    tokens.world = await issue(['--service', 'world']);
    tokens.operator = await issue(['--operator']);
  }, 60_000);

  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('the service its own token: written (exit 0)', async () => {
    const r = await runCli([...BOOTSTRAP, ...XDS, '--token', tokens.hello]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`Bearer ${tokens.hello}`);
  });

  it('an operator token: exit 2, says a sidecar needs a proxy token', async () => {
    const r = await runCli([...BOOTSTRAP, ...XDS, '--token', tokens.operator]);
    expect(r).toMatchObject({
      code: 2,
      stdout: '',
      stderr:
        'lucid-mesh bootstrap: --token: this is an operator token (for the admin API); a sidecar ' +
        'needs a proxy token (lucid-mesh token issue --service hello)\n',
    });
  });

  it("another service's token: exit 2, names both services", async () => {
    const r = await runCli([...BOOTSTRAP, ...XDS, '--token', tokens.world]);
    expect(r).toMatchObject({
      code: 2,
      stdout: '',
      stderr:
        'lucid-mesh bootstrap: --token: issued for service "world", not "hello" ' +
        '(lucid-mesh token issue --service hello)\n',
    });
  });

  it('an expired token: exit 2, says when it expired', async () => {
    const exp = JSON.parse(Buffer.from(tokens.expired.split('.')[1]!, 'base64url').toString()) as {
      exp: number;
    };
    // --ttl 1s: wait out its second.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, exp.exp * 1000 - Date.now())));
    const when = new Date(exp.exp * 1000).toISOString();
    const r = await runCli([...BOOTSTRAP, ...XDS, '--token', tokens.expired]);
    expect(r).toMatchObject({
      code: 2,
      stdout: '',
      stderr: `lucid-mesh bootstrap: --token: expired at ${when} (lucid-mesh token issue --service hello)\n`,
    });
  });
});
