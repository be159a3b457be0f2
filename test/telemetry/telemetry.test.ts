import { describe, expect, it } from 'vitest';
import { REDACTED, redactSecrets } from '../../src/admin/redact.js';
import { formatEvent } from '../../src/cli/tail-format.js';
import { ConvergenceTracker } from '../../src/telemetry/convergence.js';
import { jsonDiff } from '../../src/telemetry/json-diff.js';
import type { StreamInfo } from '../../src/xds/type-status.js';

describe('jsonDiff', () => {
  it('reports changed leaves with paths, and an added array element as one change', () => {
    const before = { clusterName: 'w', endpoints: [{ lbEndpoints: [{ a: 1 }] }], x: 'old' };
    const after = {
      clusterName: 'w',
      endpoints: [{ lbEndpoints: [{ a: 1 }, { a: 2 }] }],
      x: 'new',
      y: true,
    };
    expect(jsonDiff(before, after)).toEqual([
      { path: 'endpoints[0].lbEndpoints[1]', to: { a: 2 } },
      { path: 'x', from: 'old', to: 'new' },
      { path: 'y', to: true },
    ]);
    expect(jsonDiff(after, after)).toEqual([]);
  });
});

describe('redactSecrets', () => {
  it('removes private keys at any depth and keeps the rest', () => {
    const secret = {
      name: 'web',
      tlsCertificate: {
        certificateChain: { inlineString: 'CERT' },
        privateKey: { inlineString: 'KEY' },
      },
    };
    const out = redactSecrets(secret);
    expect(out.tlsCertificate.privateKey).toBe(REDACTED);
    expect(out.tlsCertificate.certificateChain.inlineString).toBe('CERT');
    expect(JSON.stringify(out)).not.toContain('KEY');
  });
});

describe('tail formatting', () => {
  const event = {
    at: '2026-11-21T12:00:01.234Z',
    event: 'snapshot' as const,
    version: 'v2',
    resources: [
      {
        type: 'endpoints' as const,
        name: 'world',
        change: 'changed' as const,
        fields: [{ path: 'p', from: 1, to: 2 }],
      },
    ],
    proxies: ['a'],
  };
  it('prints plain text when not on a terminal', () => {
    expect(formatEvent(event, false)).toBe(
      '12:00:01.234 snapshot v2  1 change(s), proxies: a\n  ~ endpoints/world changed\n      p: 1 → 2',
    );
  });
  it('adds colour on a terminal', () => {
    expect(formatEvent(event, true)).toContain('\u001b[');
    expect(
      formatEvent(
        { at: event.at, event: 'nack', node: 'n', type: 'listeners', version: 'v', error: 'boom' },
        false,
      ),
    ).toBe('12:00:01.234 NACK n listeners v: boom');
  });
  it('says when the server dropped it for falling behind', () => {
    expect(
      formatEvent({ at: event.at, event: 'lost', reason: 'fell behind', droppedEvents: 12 }, false),
    ).toBe('12:00:01.234 lost 12 event(s): fell behind; reconnecting');
  });
});

describe('ConvergenceTracker', () => {
  const stream = (id: number) => ({ id }) as StreamInfo;
  it('observes once every proxy sent the snapshot has ACKed every type, and not on a NACK', () => {
    const seen: number[] = [];
    const t = new ConvergenceTracker((s) => seen.push(s));
    const snap = { version: 's1', changedAt: Date.now() - 50 };
    t.snapshotBuilt(snap.version, snap.changedAt);
    t.responseSent(stream(1), 'clusters', snap);
    t.responseSent(stream(2), 'clusters', snap);
    t.responseSent(stream(2), 'endpoints', snap);
    t.acked(stream(1), 'clusters', snap);
    t.acked(stream(2), 'clusters', snap);
    expect(seen).toEqual([]);
    t.acked(stream(2), 'endpoints', snap);
    expect(seen).toHaveLength(1);
    expect(seen[0]!).toBeGreaterThanOrEqual(0.05);

    const snap2 = { version: 's2', changedAt: Date.now() };
    t.snapshotBuilt(snap2.version, snap2.changedAt);
    t.responseSent(stream(1), 'listeners', snap2);
    t.nacked();
    t.acked(stream(1), 'listeners', snap2);
    expect(seen).toHaveLength(1);
  });
  it('does not wait for a proxy that disconnected', () => {
    const seen: number[] = [];
    const t = new ConvergenceTracker((s) => seen.push(s));
    const snap = { version: 's1', changedAt: Date.now() };
    t.snapshotBuilt(snap.version, snap.changedAt);
    t.responseSent(stream(1), 'clusters', snap);
    t.responseSent(stream(2), 'clusters', snap);
    t.acked(stream(1), 'clusters', snap);
    t.streamClosed(stream(2));
    expect(seen).toHaveLength(1);
  });
});
