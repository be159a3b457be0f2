// The etcd role docs/ha.md gives for the state prefix, on a real etcd with authentication on:
// with it, replicas share the CA, elect a leader (etcd3's election keys live under the prefix)
// and rotate; a user whose role covers another prefix is refused at start.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCa, type OpenedCa } from '../../../src/ca/open.js';
import { caCommand } from '../../../src/cli/ca-command.js';
import { stateStoreFromFlags } from '../../../src/cli/state-flags.js';
import { startEtcd, type EtcdHandle } from '../../support/etcd.js';
import { runCommand } from '../../support/run-command.js';
import { waitFor } from '../../support/wait.js';
import { expectEachReplicasLeafRootsRecord } from './leaf-roots-records.js';

const tmp = (what: string) => mkdtempSync(join(tmpdir(), `lucid-state-role-${what}-`));

describe('shared CA state in etcd with authentication', () => {
  let etcd: EtcdHandle;
  const opened: OpenedCa[] = [];
  const keyPath = join(tmp('key'), 'state.key');
  writeFileSync(keyPath, randomBytes(32).toString('base64'));

  beforeAll(async () => {
    etcd = await startEtcd('role');
    const ctl = (...args: string[]) => etcd.etcdctl(args);
    await ctl('user', 'add', 'root:root-pw');
    await ctl('user', 'grant-role', 'root', 'root');
    // Exactly the role of docs/ha.md ("Permissions the prefix needs"), for prefix acl-mesh/.
    await ctl('role', 'add', 'lucid-mesh-state');
    await ctl(
      'role',
      'grant-permission',
      'lucid-mesh-state',
      'readwrite',
      'acl-mesh/',
      '--prefix=true',
    );
    await ctl('user', 'add', 'lucid-mesh:mesh-pw');
    await ctl('user', 'grant-role', 'lucid-mesh', 'lucid-mesh-state');
    await ctl('role', 'add', 'other-state');
    await ctl('role', 'grant-permission', 'other-state', 'readwrite', 'other/', '--prefix=true');
    await ctl('user', 'add', 'other:other-pw');
    await ctl('user', 'grant-role', 'other', 'other-state');
    await ctl('auth', 'enable');
  });

  afterAll(async () => {
    for (const ca of opened) await ca.close();
    await etcd?.remove();
  });

  const replica = async (user: string, password: string) => {
    const store = stateStoreFromFlags({
      state: 'etcd',
      statePrefix: 'acl-mesh/',
      stateEncryptionKey: keyPath,
      etcd: etcd.endpoint,
      etcdUser: user,
      etcdPassword: password,
    })!;
    const ca = await openCa({ store, dataDir: tmp('data'), env: {} });
    opened.push(ca);
    return ca;
  };

  it('the documented role is enough: two replicas, one root, a leader, a rotation', async () => {
    const [r1, r2] = await Promise.all([
      replica('lucid-mesh', 'mesh-pw'),
      replica('lucid-mesh', 'mesh-pw'),
    ]);
    expect(r1.ca.activeRoot().serial).toBe(r2.ca.activeRoot().serial);
    await waitFor(() => [r1, r2].filter((r) => r.shared!.leadership.isLeader()).length === 1, {
      what: 'one leader',
    });
    // Each replica's leaf-roots record (on its own session / lease) is written with it too.
    await expectEachReplicasLeafRootsRecord(r1, r2);
    const rotated = await runCommand(caCommand, [
      ...['rotate', '--state', 'etcd', '--state-prefix', 'acl-mesh/'],
      ...['--state-encryption-key', keyPath, '--etcd', etcd.endpoint],
      ...['--etcd-user', 'lucid-mesh', '--etcd-password', 'mesh-pw'],
    ]);
    expect(rotated.stderr).toBe('');
    const serial = /New active root: ([0-9a-f]+)/.exec(rotated.stdout)![1]!;
    for (const r of [r1, r2]) {
      await waitFor(() => r.ca.activeRoot().serial === serial, { what: 'rotation seen' });
    }
  });

  it('a user whose role covers another prefix is refused at start', async () => {
    await expect(replica('other', 'other-pw')).rejects.toThrow(
      /get acl-mesh\/ca\/roots: .*permission denied/,
    );
  });
});
