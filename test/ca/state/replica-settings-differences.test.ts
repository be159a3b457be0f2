// What counts as replicas serving different mesh settings (src/ca/state/replica-settings.ts):
// the settings both replicas record, compared by value. A setting only one side records (another
// lucid-mesh version, which knows more or fewer settings) is not a difference, so upgrading
// lucid-mesh itself replica by replica is not refused as a change of settings.
import { describe, expect, it } from 'vitest';
import {
  describeDifferences,
  settingDifferences,
  settingsDigest,
} from '../../../src/ca/state/replica-settings.js';

describe('replica settings differences', () => {
  const mine = { '--scope': 'declared', '--mtls': 'on', '--dns-domain': 'mesh.example' };

  it('names each differing setting with this value and every other value seen', () => {
    const diffs = settingDifferences(mine, [
      { '--scope': 'all', '--mtls': 'on', '--dns-domain': 'mesh.example' },
      { '--scope': 'policy', '--mtls': 'on', '--dns-domain': 'lucid.internal' },
    ]);
    expect(describeDifferences(diffs)).toBe(
      '--dns-domain: this replica mesh.example, the running replicas lucid.internal; ' +
        '--scope: this replica declared, the running replicas all or policy',
    );
  });

  it('compares only the settings both sides record (another lucid-mesh version)', () => {
    expect(settingDifferences(mine, [{ '--scope': 'declared', '--new-setting': 'x' }])).toEqual([]);
    expect(settingDifferences({ ...mine, '--new-setting': 'y' }, [mine])).toEqual([]);
  });

  it('digests the same settings the same in any key order', () => {
    const reordered = { '--dns-domain': 'mesh.example', '--mtls': 'on', '--scope': 'declared' };
    expect(settingsDigest(reordered)).toBe(settingsDigest(mine));
    expect(settingsDigest({ ...mine, '--scope': 'all' })).not.toBe(settingsDigest(mine));
  });
});
