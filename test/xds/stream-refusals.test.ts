// What the log and the event stream say when a stream is refused or ended by the control
// plane, over real gRPC with real proxy tokens. Found by hand against `serve`: every stream
// ended from here (a revoked token, a drain, a refusal) was logged and sent to `tail` as
// "disconnect … error: undefined", and 1,000 streams opened without a token by anyone who
// reaches the port were 1,000 warn lines (no budget, unlike opens and closes; now a budget, and
// a bound per address).
import { Writable } from 'node:stream';
import { decodeJwt } from 'jose';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseCatalog } from '../../src/catalog/schema.js';
import { MemoryCaStore } from '../../src/ca/store.js';
import { TokenAuthority } from '../../src/ca/tokens.js';
import { TokenAuthenticator } from '../../src/security/token-authenticator.js';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { combineObservers, XdsCounters } from '../../src/xds/observer.js';
import { PEER_REFUSALS_PER_WINDOW } from '../../src/xds/peer-refusals.js';
import { XdsServer } from '../../src/xds/server.js';
import { node, sotwClient, typeUrl } from '../support/ads-client.js';
import { twoServices } from '../support/control-plane.js';
import { waitFor } from '../support/wait.js';

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

type Line = Record<string, unknown> & { msg: string; level: number };

async function server() {
  const lines: Line[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Line);
      done();
    },
  });
  const logger = pino({ level: 'info' }, sink);
  const tokens = await TokenAuthority.open(new MemoryCaStore(), { watch: true });
  const store = new SnapshotStore({ logger, debounceMs: 10, maxDebounceMs: 50 });
  store.setCatalog(parseCatalog(twoServices()));
  store.flush();
  // What `tail` and the RabbitMQ events get as a disconnect's reason.
  const closedReasons: string[] = [];
  const counters = new XdsCounters();
  const observer = combineObservers(counters);
  observer.streamClosed = (_s, reason) => closedReasons.push(reason);
  const xds = new XdsServer({
    watcher: store,
    observer,
    logger,
    authenticator: new TokenAuthenticator(tokens),
  });
  const port = await xds.listen('127.0.0.1', 0);
  cleanup.push(() => {
    xds.forceClose();
    store.close();
    tokens.stop();
  });
  return { xds, port, tokens, lines, closedReasons, counters };
}

function connect(port: number, id: string, token?: string) {
  const c = sotwClient(port, token);
  cleanup.push(() => c.close());
  c.send({ node: node(id, 'hello'), typeUrl: typeUrl('clusters') });
  return c;
}

describe('streams ended by the control plane', () => {
  it('a revoked token and a drain are the reason of the close, in the log and to observers', async () => {
    const { xds, port, tokens, lines, closedReasons } = await server();
    const token = await tokens.issue('hello');
    const revoked = connect(port, 'hello-1', token);
    const drained = connect(port, 'hello-2', await tokens.issue('hello'));
    await Promise.all([revoked.next(), drained.next()]);

    await tokens.revoke(decodeJwt(token).jti!);
    expect((await revoked.ended)?.details).toMatch(/was revoked/);
    await xds.drain(5_000);
    expect((await drained.ended)?.details).toMatch(/reconnect to another replica/);

    await waitFor(() => closedReasons.length === 2, { what: 'both closes observed' });
    expect(closedReasons[0]).toMatch(/was revoked/);
    expect(closedReasons[1]).toMatch(/shutting down \(drain\): reconnect to another replica/);
    const closeLines = lines.filter((l) => l.msg === 'xds stream closed');
    expect(closeLines.map((l) => [l.node, l.reason])).toEqual([
      ['hello-1', closedReasons[0]],
      ['hello-2', closedReasons[1]],
    ]);
    expect(JSON.stringify(lines)).not.toContain('undefined');
  });

  it('refusals without a token from one address: a line each up to the per-address bound, then one summary', async () => {
    const { xds, port, lines, counters } = await server();
    const n = 260;
    const ended = await Promise.all(
      Array.from({ length: n }, (_, i) => connect(port, `nobody-${i}`).ended),
    );
    expect(ended.every((e) => e?.details?.startsWith('no proxy token'))).toBe(true);
    // Refused before admission (test/xds/admission-auth): never opened, so never closed.
    expect(counters.authFailures).toBe(n);
    expect(counters.streamsOpened).toBe(0);
    const refused = lines.filter((l) => l.msg === 'xds stream refused');
    // One address (loopback): 20 lines per 10 s window (peer-refusals.ts); streams from many
    // addresses share the lifecycle budget, 200 lines per window (test/xds/lifecycle-log).
    expect(refused).toHaveLength(PEER_REFUSALS_PER_WINDOW);
    expect(refused.every((l) => l.level === 40 && l.reason === 'missing-token')).toBe(true);
    await xds.drain(2_000); // flushes the summaries
    const summaries = lines.filter((l) => / more streams from /.test(l.msg));
    expect(summaries).toEqual([
      expect.objectContaining({
        level: 40,
        msg: `refused ${n - PEER_REFUSALS_PER_WINDOW} more streams from 127.0.0.1 (bad token)`,
        reasons: { 'missing-token': n - PEER_REFUSALS_PER_WINDOW },
      }),
    ]);
    expect(lines.find((l) => l.msg.includes('beyond the per-stream lines'))).toBeUndefined();
  });
});
