// /v1/events under slow or too many clients: a reader that stops reading is sent `lost` and
// disconnected once it is a bounded number of bytes behind (the process does not buffer for
// it without limit), a reader keeping up gets everything, and past --max-event-clients new
// clients get 503.
import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { EventHub, type EventHubOptions } from '../../src/telemetry/events.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import type { StreamInfo } from '../../src/xds/type-status.js';
import { waitFor } from '../support/wait.js';
import { writeReliabilityResult } from '../support/reliability.js';

const cleanup: Array<() => void> = [];
afterEach(() => {
  cleanup.splice(0).forEach((f) => f());
});

async function serve(options: EventHubOptions) {
  const store = new SnapshotStore({ logger: silentLogger });
  const hub = new EventHub(store, () => [], options);
  const server: Server = createServer((req, res) => hub.serveEvents(req, res, {}));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.push(() => {
    server.closeAllConnections();
    server.close();
  });
  const port = (server.address() as { port: number }).port;
  return { hub, port };
}

interface RawClient {
  socket: Socket;
  text(): string;
  raw(): string;
  ended: Promise<void>;
}

/** A plain TCP client: it reads only while not paused, as a slow `curl` would. */
function open(port: number): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    cleanup.push(() => socket.destroy());
    const chunks: Buffer[] = [];
    const ended = new Promise<void>((done) => socket.on('close', () => done()));
    const client = {
      socket,
      text: () => dechunk(Buffer.concat(chunks).toString()),
      raw: () => Buffer.concat(chunks).toString(),
      ended,
    };
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      if (chunks.length === 1) resolve(client);
    });
    socket.on('error', reject);
    socket.write('GET /v1/events HTTP/1.1\r\nhost: x\r\naccept: text/event-stream\r\n\r\n');
  });
}

/** The response's head and its body with the chunked framing taken out. */
function dechunk(raw: string): string {
  const at = raw.indexOf('\r\n\r\n');
  if (at < 0 || !/transfer-encoding: chunked/i.test(raw.slice(0, at))) return raw;
  let body = '';
  let rest = raw.slice(at + 4);
  for (;;) {
    const eol = rest.indexOf('\r\n');
    if (eol < 0) break;
    const size = parseInt(rest.slice(0, eol), 16);
    if (!(size > 0) || rest.length < eol + 2 + size) break;
    body += rest.slice(eol + 2, eol + 2 + size);
    rest = rest.slice(eol + 4 + size);
  }
  return `${raw.slice(0, at + 4)}${body}`;
}

const stream = { id: 1, mode: 'sotw', proxy: { nodeId: 'n' } } as unknown as StreamInfo;
/** A NACK event whose error text makes it ~`size` bytes on the wire. */
const publishNack = (hub: EventHub, size: number, i: number) =>
  hub.nacked(stream, 'clusters', `v${i}`, 'x'.repeat(size));

describe('/v1/events bounds', () => {
  it('a reader that stops reading is sent `lost` and cut; one that reads gets every event', async () => {
    const limit = 64 * 1024;
    const eventBytes = 8 * 1024;
    const { hub, port } = await serve({ maxClientBufferBytes: limit });
    const slow = await open(port);
    const fast = await open(port);
    await waitFor(() => hub.clientCount === 2, { what: 'two clients' });
    slow.socket.pause(); // stops reading: the kernel buffers fill, then Node's write returns false

    // Up to 256 MB, but the slow client is dropped long before: once the kernel's buffers
    // (a few MB on loopback) and its 64 KB here are full.
    let published = 0;
    while (hub.sse.lost === 0 && published < 32_768) {
      publishNack(hub, eventBytes, published++);
      // The readers live in this process: let them read between events.
      await new Promise((r) => setImmediate(r));
    }
    expect(hub.sse.lost).toBe(1);
    expect(hub.clientCount).toBe(1);
    // What was held for the slow client in the process never passed the bound by more than
    // one event.
    expect(hub.sse.maxQueuedBytes).toBeGreaterThan(limit);
    expect(hub.sse.maxQueuedBytes).toBeLessThanOrEqual(limit + eventBytes + 200);
    const publishedBeforeLoss = published;
    for (let i = 0; i < 10; i++) {
      publishNack(hub, eventBytes, published++);
      await new Promise((r) => setImmediate(r));
    }

    // The slow reader, reading again, finds the events it had, then `lost`, then the end.
    slow.socket.resume();
    await slow.ended;
    const text = slow.text();
    const blocks = text.split('\n\n').filter((b) => b.includes('event: '));
    expect(blocks.at(-1)).toMatch(/^event: lost\ndata: \{"at":"[^"]+","event":"lost","reason":/);
    const lost = JSON.parse(blocks.at(-1)!.split('data: ')[1]!) as { droppedEvents: number };
    const nacksSeen = blocks.filter((b) => b.startsWith('event: nack')).length;
    expect(nacksSeen + lost.droppedEvents).toBeLessThanOrEqual(publishedBeforeLoss);
    expect(nacksSeen).toBeGreaterThan(0);

    // The reader keeping up got all of them, in order, and is still connected.
    await waitFor(
      () => (fast.text().match(/event: nack/g)?.length ?? 0) === published || undefined,
      {
        what: `all ${published} events at the fast reader`,
        details: () =>
          `${fast.text().match(/event: nack/g)?.length} seen; raw ${fast.raw().match(/event: nack/g)?.length}; tail ${JSON.stringify(fast.raw().slice(-300))}`,
      },
    );
    expect(hub.clientCount).toBe(1);
    console.log(
      `slow SSE reader: dropped after ${publishedBeforeLoss} events of ${eventBytes} B ` +
        `(${((publishedBeforeLoss * eventBytes) / 1e6).toFixed(1)} MB published; ${nacksSeen} reached it, ` +
        `${lost.droppedEvents} dropped); most queued for it: ${hub.sse.maxQueuedBytes} B (limit ${limit})`,
    );
    writeReliabilityResult({
      id: 'hostile-sse-slow-reader',
      section: 'hostile',
      test: 'test/telemetry/sse-bounds.test.ts',
      fault: 'An SSE client (`/v1/events`, `lucid-mesh tail`) that stops reading',
      behaviour:
        "`res.write` returning false is respected: events wait for `'drain'` in a per-client queue. Once what is held " +
        'for it (queue plus what its socket still holds) passes 2 MiB, it is sent `event: lost` and disconnected (cut 5 s ' +
        'later if it never reads that either).',
      figures:
        `With a ${limit / 1024} KiB bound: dropped after ${publishedBeforeLoss} events of ${eventBytes / 1024} KiB ` +
        `(${((publishedBeforeLoss * eventBytes) / 1e6).toFixed(1)} MB published, most taken by the kernel's socket buffers; ` +
        `${nacksSeen} reached it, ${lost.droppedEvents} dropped); at most ${hub.sse.maxQueuedBytes.toLocaleString('en')} B held for it. ` +
        `A reader alongside got all ${published} events and stayed.`,
    });
  });

  it('refuses clients past --max-event-clients with 503, and takes one again when one leaves', async () => {
    const { hub, port } = await serve({ maxClients: 3 });
    const clients = await Promise.all([open(port), open(port), open(port)]);
    await waitFor(() => hub.clientCount === 3, { what: 'three clients' });
    const refused = await open(port);
    await refused.ended;
    expect(refused.text()).toMatch(/^HTTP\/1.1 503 /);
    expect(refused.text()).toContain('too many event clients (at most 3, --max-event-clients)');
    expect(hub.sse.refused).toBe(1);
    clients[0]!.socket.destroy();
    await waitFor(() => hub.clientCount === 2, { what: 'a client gone' });
    const again = await open(port);
    expect(again.text()).toMatch(/^HTTP\/1.1 200 /);
    await waitFor(() => hub.clientCount === 3, { what: 'the new client counted' });
  });
});
