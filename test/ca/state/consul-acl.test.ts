// The Consul ACL policy docs/ha.md gives for the state prefix, on a real Consul with ACLs on
// (default deny): with it, replicas share the CA, elect a leader and rotate; a read-only token
// runs `ca show` but not `ca rotate`; a token for another prefix is refused with a message that
// says what is missing.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCa, type OpenedCa } from '../../../src/ca/open.js';
import { caCommand } from '../../../src/cli/ca-command.js';
import { stateStoreFromFlags } from '../../../src/cli/state-flags.js';
import { CONSUL_SETUP_TIMEOUT_MS, startConsul, type ConsulAgent } from '../../support/consul.js';
import { runCommand } from '../../support/run-command.js';
import { waitFor } from '../../support/wait.js';
import { expectEachReplicasLeafRootsRecord } from './leaf-roots-records.js';

const MANAGEMENT = 'b1a2c3d4-0000-4000-8000-00000000acl0';
const tmp = (what: string) => mkdtempSync(join(tmpdir(), `lucid-state-acl-${what}-`));

// Exactly the policy of docs/ha.md ("Permissions the prefix needs").
const WRITE_RULES = `
key_prefix "acl-mesh/" {
  policy = "write"
}
session_prefix "" {
  policy = "write"
}
`;
const READ_RULES = `key_prefix "acl-mesh/" { policy = "read" }`;
const OTHER_RULES = `key_prefix "other/" { policy = "write" }\nsession_prefix "" { policy = "write" }`;

describe('shared CA state in Consul with ACLs (default deny)', () => {
  let consul: ConsulAgent;
  const opened: OpenedCa[] = [];
  const tokens: Record<string, string> = {};
  const keyPath = join(tmp('key'), 'state.key');
  writeFileSync(keyPath, randomBytes(32).toString('base64'));

  beforeAll(async () => {
    consul = await startConsul({
      // Requests without a token (the test helper's own) act as management; the store always
      // sends its --consul-token, so it gets exactly what its policy allows.
      hcl: [
        `acl { enabled = true\ndefault_policy = "deny"\ntokens { initial_management = "${MANAGEMENT}"\ndefault = "${MANAGEMENT}"\nagent = "${MANAGEMENT}" } }`,
      ],
    });
    for (const [name, rules] of [
      ['write', WRITE_RULES],
      ['read', READ_RULES],
      ['other', OTHER_RULES],
    ] as const) {
      await waitFor(
        async () =>
          (await consul.api('PUT', '/v1/acl/policy', { Name: name, Rules: rules })).status === 200,
        { what: `ACL policy ${name}`, timeoutMs: 20_000 },
      );
      const res = await consul.api('PUT', '/v1/acl/token', { Policies: [{ Name: name }] });
      expect(res.status).toBe(200);
      tokens[name] = (JSON.parse(res.body) as { SecretID: string }).SecretID;
    }
  }, CONSUL_SETUP_TIMEOUT_MS);

  afterAll(async () => {
    for (const ca of opened) await ca.close();
    await consul?.stop();
  });

  const flags = (token: string) => [
    ...['--state', 'consul', '--state-prefix', 'acl-mesh/', '--state-encryption-key', keyPath],
    ...['--consul', consul.address, '--consul-token', token],
  ];
  const replica = async (token: string) => {
    const store = stateStoreFromFlags({
      state: 'consul',
      statePrefix: 'acl-mesh/',
      stateEncryptionKey: keyPath,
      consul: consul.address,
      consulToken: token,
    })!;
    const ca = await openCa({ store, dataDir: tmp('data'), env: {} });
    opened.push(ca);
    return ca;
  };

  it('the documented policy is enough: two replicas, one root, a leader, a rotation', async () => {
    const [r1, r2] = await Promise.all([replica(tokens.write!), replica(tokens.write!)]);
    expect(r1.ca.activeRoot().serial).toBe(r2.ca.activeRoot().serial);
    expect([r1, r2].filter((r) => r.shared!.leadership.isLeader())).toHaveLength(1);
    // Each replica's leaf-roots record (on its own session / lease) is written with it too.
    await expectEachReplicasLeafRootsRecord(r1, r2);
    const rotated = await runCommand(caCommand, ['rotate', ...flags(tokens.write!)]);
    expect(rotated.stderr).toBe('');
    const serial = /New active root: ([0-9a-f]+)/.exec(rotated.stdout)![1]!;
    await waitFor(() => r2.ca.activeRoot().serial === serial, { what: 'rotation seen' });
  });

  it('a read-only token shows the CA but cannot rotate it', async () => {
    const shown = await runCommand(caCommand, ['show', ...flags(tokens.read!)]);
    expect(shown.stderr).toBe('');
    expect(shown.stdout).toContain('CA store: consul');
    const rotate = await runCommand(caCommand, ['rotate', ...flags(tokens.read!)]);
    expect(rotate.code).toBe(1);
    expect(rotate.stderr).toContain('HTTP 403');
    expect(rotate.stderr).toContain('key_prefix write on the state prefix');
  });

  it('a token for another prefix is refused at start with what is missing', async () => {
    await expect(replica(tokens.other!)).rejects.toThrow(
      /GET \/v1\/kv\/acl-mesh\/ca\/roots: HTTP 403/,
    );
  });
});
