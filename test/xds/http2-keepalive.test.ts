// The node:http2 transport's keepalive (what grpc-js did for us: a PING every 30 s, the
// connection closed when it goes unanswered 10 s), here with 200 ms and 300 ms on real
// sockets: a client that stops reading its socket (a dead or frozen sidecar) is cut, one that
// answers stays connected.
import * as http2 from 'node:http2';
import { connect, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Keepalive } from '../../src/xds/http2-transport/keepalive.js';
import { waitFor } from '../support/wait.js';

const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const f of cleanup.splice(0).reverse()) f();
});

/** An empty SETTINGS frame: length 0, type 4, no flags, stream 0. */
const SETTINGS = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);

describe('http2 transport keepalive', () => {
  it('closes a connection whose client stops answering PINGs, keeps one that answers', async () => {
    const keepalive = new Keepalive(200, 300);
    const server = http2.createServer();
    const sessions: http2.ServerHttp2Session[] = [];
    server.on('session', (s) => {
      sessions.push(s);
      keepalive.add(s);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => {
      keepalive.stop();
      for (const s of sessions) s.destroy();
      server.close();
    });
    const port = (server.address() as AddressInfo).port;
    // A frozen sidecar: it opened its HTTP/2 connection (preface and SETTINGS) and answers
    // nothing after, PINGs included.
    const frozen = connect(port, '127.0.0.1');
    frozen.on('error', () => undefined);
    frozen.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), SETTINGS]));
    cleanup.push(() => frozen.destroy());
    await waitFor(() => sessions.length === 1, { what: 'the frozen one connected' });
    const alive = http2.connect(`http://127.0.0.1:${port}`);
    alive.on('error', () => undefined);
    cleanup.push(() => alive.destroy());
    await waitFor(() => sessions.length === 2, { what: 'both connected' });
    const [frozenSide, aliveSide] = sessions;
    await waitFor(() => frozenSide!.destroyed, {
      what: 'the frozen connection cut',
      timeoutMs: 3000,
    });
    // The other one has answered several PINGs meanwhile and is still there.
    await new Promise((r) => setTimeout(r, 600));
    expect(aliveSide!.destroyed).toBe(false);
    expect(alive.closed || alive.destroyed).toBe(false);
  });
});
