// `lucid-mesh status` on a proxy whose config fails to build: one that was configured before
// keeps its last good config; one whose first build failed (a gateway whose node id is not in
// the catalog yet) has none, and status must not say it keeps one.
import { describe, expect, it } from 'vitest';
import type { ProxyRow } from '../../src/admin/proxies.js';
import { renderStatus } from '../../src/cli/status-command.js';

const row = (types: ProxyRow['types']): ProxyRow => ({
  nodeId: 'gw-1',
  service: 'mesh-gateway',
  mode: 'sotw',
  peer: '127.0.0.1:5',
  connectedSince: '2026-12-01T00:00:00.000Z',
  types,
  buildError: { message: 'no such gateway', since: '2026-12-01T00:00:01.000Z' },
});

describe('status: a proxy with a build error', () => {
  it('configured before: keeps its last good config', () => {
    const out = renderStatus([
      row({ listeners: { status: 'SYNCED', sentVersion: 'v1', ackedVersion: 'v1' } }),
    ]);
    expect(out).toContain(
      'gw-1 BUILD ERROR since 2026-12-01T00:00:01.000Z (keeps its last good config): no such gateway',
    );
  });

  it('never configured: has no config yet', () => {
    const out = renderStatus([row({ listeners: { status: 'NOT_SENT' } })]);
    expect(out).toContain(
      'gw-1 BUILD ERROR since 2026-12-01T00:00:01.000Z (has no config yet): no such gateway',
    );
    expect(out).not.toContain('keeps its last good config');
  });
});
