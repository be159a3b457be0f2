// How status, mesh and events name a configuration problem: an entry as Consul writes it
// (`service-router/api`), a whole input by kind and location (`policy /etc/lucid/policy.yaml`).
// An absolute path made `policy//etc/lucid/policy.yaml` (and `events` printed the same).
import { describe, expect, it } from 'vitest';
import { formatEnvelope } from '../../src/cli/events-format.js';
import { renderConfigErrors } from '../../src/cli/mesh-command.js';

const problems = [
  { kind: 'service-router', name: 'api', message: 'Routes[0]: bad' },
  { kind: 'policy', name: '/etc/lucid/policy.yaml', message: 'defaults.action: bad' },
  { kind: 'traffic-file', name: 'traffic.yaml', message: 'line 3: bad' },
  { kind: 'source', name: 'file', message: '/tmp/x/catalog.yaml: line 1: bad' },
];

describe('config problem labels', () => {
  it('status names an entry kind/name and an input by kind and location, with no double slash', () => {
    expect(renderConfigErrors({ problems, unsupported: [] })).toBe(
      'Config problems (4):\n' +
        '  service-router/api: Routes[0]: bad\n' +
        '  policy /etc/lucid/policy.yaml: defaults.action: bad\n' +
        '  traffic-file traffic.yaml: line 3: bad\n' +
        '  source file: /tmp/x/catalog.yaml: line 1: bad\n',
    );
  });

  it('lucid-mesh events prints a rejected policy edit the same way', () => {
    const line = formatEnvelope(
      {
        id: '1',
        key: 'config.rejected',
        replica: 'r1',
        seq: 7,
        at: '2026-12-01T01:02:03.456Z',
        data: problems[1]!,
      },
      false,
    );
    expect(line).toBe(
      '#7 01:02:03.456 config.rejected policy /etc/lucid/policy.yaml: defaults.action: bad',
    );
  });
});
