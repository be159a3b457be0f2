// Benchmark of the RabbitMQ event stream (docs/events.md), against a real broker (Debian's
// rabbitmq-server from scripts/tools/rabbitmq.sh, started here on free loopback ports):
//   - the cost of recording one event (what the event bus, and so xDS, pays): an in-memory
//     append, the disk write and the publishing happen beside it;
//   - throughput: N events recorded at once, time until the broker confirmed all of them;
//   - catch-up: N events waiting in the outbox while the broker was unreachable, time from the
//     broker becoming reachable to all confirmed.
// Run: npx tsx bench/event-stream.ts [N]   (default 20000)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Registry } from 'prom-client';
import { parseBrokerUrl } from '../src/events/amqp-url.js';
import { startEventStream, type RunningEventStream } from '../src/events/event-stream.js';
import { EventHub } from '../src/telemetry/events.js';
import { silentLogger } from '../src/telemetry/logger.js';
import { SnapshotStore } from '../src/snapshot/store.js';
import { startTcpProxy } from '../test/support/etcd.js';
import { startRabbitMq } from '../test/support/rabbitmq.js';

const N = Number(process.argv[2] ?? 20_000);
// A proxy.nacked is ~250 B of JSON, about what most events weigh (mesh.changed varies).
const data = {
  node: 'web-1',
  type: 'clusters',
  version: 'nmRFWDUA_8mkN9eu',
  error: 'cluster api: some error Envoy reports, about one line long (benchmark payload)',
};

async function stream(url: string, dir: string): Promise<RunningEventStream> {
  const store = new SnapshotStore({ logger: silentLogger });
  return startEventStream(
    { hub: new EventHub(store, () => []), logger: silentLogger, registry: new Registry() },
    {
      url: parseBrokerUrl(url, '--events-amqp'),
      flag: '--events-amqp',
      exchange: 'bench.events',
      outboxDir: dir,
      outboxMaxBytes: 256 * 1024 * 1024,
      replica: 'bench',
      maxRetryMs: 200,
    },
  );
}

async function drained(s: RunningEventStream): Promise<void> {
  while (s.outbox.size > 0) await new Promise((r) => setTimeout(r, 5));
}

const broker = await startRabbitMq('bench');
const dirs: string[] = [];
const dir = () => {
  const d = mkdtempSync(join(tmpdir(), 'lucid-bench-outbox-'));
  dirs.push(d);
  return d;
};
try {
  // Throughput, connected.
  const live = await stream(broker.url, dir());
  while (!live.publisher.connected) await new Promise((r) => setTimeout(r, 10));
  let t = performance.now();
  for (let i = 0; i < N; i++) live.emit('proxy.nacked', data);
  const recordUs = ((performance.now() - t) * 1000) / N;
  await drained(live);
  const throughputMs = performance.now() - t;
  await live.stop();

  // Catch-up: recorded while the broker is cut off, then let through.
  const proxy = await startTcpProxy(broker.port);
  await proxy.cut();
  const away = await stream(`amqp://guest:guest@127.0.0.1:${proxy.port}/`, dir());
  for (let i = 0; i < N; i++) away.emit('proxy.nacked', data);
  await new Promise((r) => setTimeout(r, 500)); // written and fsynced
  const outboxMiB = away.outbox.bytes / 1024 / 1024;
  t = performance.now();
  await proxy.restore();
  await drained(away);
  const catchUpMs = performance.now() - t;
  await away.stop();
  await proxy.close();

  const rate = (ms: number) => Math.round(N / (ms / 1000));
  console.log(`events: ${N} × ~${JSON.stringify(data).length + 150} B`);
  console.log(`record one event (the event bus's cost): ${recordUs.toFixed(2)} µs`);
  console.log(
    `recorded → all confirmed (connected): ${throughputMs.toFixed(0)} ms, ${rate(throughputMs)} events/s`,
  );
  console.log(
    `catch-up of ${outboxMiB.toFixed(1)} MiB of outbox after the broker returns: ${catchUpMs.toFixed(0)} ms, ${rate(catchUpMs)} events/s`,
  );
} finally {
  await broker.remove();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
