#!/usr/bin/env node
// What the soak's native (non-V8) RSS growth is made of: the soak's connection churn against a
// server that does nothing of ours. A server process (grpc-js, as `lucid-mesh serve` runs it, or
// plain node:http2) answers every stream with the same pre-encoded response (the size of a
// proxy's full config in the soak's 1000-service mesh); this process keeps `--conns` HTTP/2
// connections of one stream each, each closed after a random `--life` and reopened, as the
// soak's sidecars do. The server's memory is sampled after a full GC every `--sample` seconds.
//
//   node bench/diag/http2-churn.mjs [--server grpc|http2|http2-copy] [--conns 1000]
//        [--seconds 120] [--life 5-30] [--payload 500000] [--sample 10]
//        [--malloc jemalloc|glibc] [--arena-max N] [--mmap-threshold BYTES]
//
// http2 writes one framed buffer for every response; http2-copy frames each response into a
// fresh buffer first, as grpc-js does for every message it sends.
// --arena-max / --mmap-threshold: glibc's MALLOC_ARENA_MAX / MALLOC_MMAP_THRESHOLD_ for the
// server (a fixed mmap threshold also turns off glibc's dynamic raising of it).
// --malloc jemalloc: the server runs with LD_PRELOAD of Debian's libjemalloc2
// (`apt-get install libjemalloc2`), to tell allocator retention from memory held.
// Prints one JSON line per sample and a summary; holds no lock itself: run it under
// `flock /tmp/lucid-bench.lock` like the bench.
import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import http2 from 'node:http2';
import { performance } from 'node:perf_hooks';
import { setTimeout } from 'node:timers';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
const JEMALLOC = '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2';
const WINDOW = 256 * 1024 * 1024;

const { values } = parseArgs({
  options: {
    role: { type: 'string', default: 'client' },
    server: { type: 'string', default: 'grpc' },
    conns: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '120' },
    life: { type: 'string', default: '5-30' },
    payload: { type: 'string', default: '500000' },
    sample: { type: 'string', default: '10' },
    malloc: { type: 'string', default: 'glibc' },
    'arena-max': { type: 'string' },
    'mmap-threshold': { type: 'string' },
  },
});

function fail(message) {
  console.error(`http2-churn: ${message}`);
  process.exit(2);
}

function positive(name) {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n <= 0)
    fail(`--${name}: expected a positive integer, got ${values[name]}`);
  return n;
}

/** A gRPC message: 1 flag byte, 4-byte length, payload. */
function frame(payload) {
  const out = Buffer.allocUnsafe(5 + payload.length);
  out[0] = 0;
  out.writeUInt32BE(payload.length, 1);
  payload.copy(out, 5);
  return out;
}

// --- the server (a child process, so its memory is its own) ----------------------------------

async function serve() {
  const payload = Buffer.alloc(positive('payload'), 7);
  let port;
  let streams = 0;
  if (values.server === 'grpc') {
    const grpc = await import('@grpc/grpc-js');
    const server = new grpc.Server({
      // As src/xds/server.ts.
      'grpc.max_send_message_length': -1,
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.keepalive_permit_without_calls': 1,
    });
    server.register(
      PATH,
      (call) => {
        streams++;
        call.on('data', () => call.write(payload));
        call.on('error', () => undefined);
        call.on('end', () => call.end());
      },
      (b) => b,
      (b) => b,
      'bidi',
    );
    port = await new Promise((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
  } else if (values.server === 'http2' || values.server === 'http2-copy') {
    const copy = values.server === 'http2-copy';
    const framed = frame(payload);
    const server = http2.createServer({ maxSessionMemory: Number.MAX_SAFE_INTEGER });
    server.on('stream', (stream) => {
      streams++;
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
      stream.on('data', () => stream.write(copy ? frame(payload) : framed));
      stream.on('error', () => undefined);
    });
    server.on('sessionError', () => undefined);
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = server.address().port;
  } else fail(`--server: expected grpc, http2 or http2-copy, got ${values.server}`);
  process.on('message', (m) => {
    if (m !== 'sample') return;
    for (let i = 0; i < 3; i++) globalThis.gc();
    const mem = process.memoryUsage();
    process.send({ ...mem, streams });
  });
  process.send({ port });
}

// --- the client ------------------------------------------------------------------------------

async function churn() {
  const conns = positive('conns');
  const seconds = positive('seconds');
  const sampleSeconds = positive('sample');
  positive('payload');
  const life = /^(\d+)-(\d+)$/.exec(values.life ?? '');
  if (!life || Number(life[1]) > Number(life[2]))
    fail(`--life: expected MIN-MAX seconds, got ${values.life}`);
  const [minMs, maxMs] = [Number(life[1]) * 1000, Number(life[2]) * 1000];
  const env = { ...process.env };
  if (values.malloc === 'jemalloc') {
    if (!existsSync(JEMALLOC))
      fail(`--malloc jemalloc: ${JEMALLOC} missing (apt-get install libjemalloc2)`);
    env.LD_PRELOAD = JEMALLOC;
  } else if (values.malloc !== 'glibc')
    fail(`--malloc: expected glibc or jemalloc, got ${values.malloc}`);
  if (values['arena-max'] !== undefined) env.MALLOC_ARENA_MAX = String(positive('arena-max'));
  if (values['mmap-threshold'] !== undefined)
    env.MALLOC_MMAP_THRESHOLD_ = String(positive('mmap-threshold'));

  const child = fork(
    fileURLToPath(import.meta.url),
    [...process.argv.slice(2), '--role', 'server'],
    {
      execArgv: ['--expose-gc'],
      env,
    },
  );
  const replies = [];
  child.on('message', (m) => replies.shift()?.(m));
  const ask = (what) =>
    new Promise((resolve) => {
      replies.push(resolve);
      if (what) child.send(what);
    });
  const { port } = await ask();

  let reconnects = 0;
  let errors = 0;
  let received = 0;
  let stopping = false;
  const open = () => {
    const session = http2.connect(`http://127.0.0.1:${port}`, {
      settings: { initialWindowSize: WINDOW },
      maxSessionMemory: Number.MAX_SAFE_INTEGER,
    });
    session.once('connect', () => {
      if (!session.destroyed) session.setLocalWindowSize(WINDOW);
    });
    session.on('error', () => void errors++);
    const stream = session.request(
      { ':method': 'POST', ':path': PATH, 'content-type': 'application/grpc', te: 'trailers' },
      { endStream: false },
    );
    stream.on('data', (chunk) => void (received += chunk.length));
    stream.on('error', () => undefined);
    stream.write(frame(Buffer.from('hello')));
    setTimeout(
      () => {
        // As the soak's sidecar: half-close, cancel, close the connection; then a fresh one.
        stream.end();
        stream.close(http2.constants.NGHTTP2_CANCEL);
        session.close();
        if (stopping) return;
        reconnects++;
        open();
      },
      minMs + Math.random() * (maxMs - minMs),
    );
  };
  const started = performance.now();
  const samples = [];
  const sample = async () => {
    const m = await ask('sample');
    const mib = (b) => Math.round((b / 2 ** 20) * 10) / 10;
    const s = {
      t: Math.round((performance.now() - started) / 1000),
      rss: mib(m.rss),
      heapUsed: mib(m.heapUsed),
      heapTotal: mib(m.heapTotal),
      external: mib(m.external),
      native: mib(m.rss - m.heapTotal - m.external),
      streams: m.streams,
      reconnects,
    };
    samples.push(s);
    console.log(JSON.stringify(s));
  };
  await sample();
  for (let i = 0; i < conns; i++) open();
  while (performance.now() - started < seconds * 1000) {
    await new Promise((r) => setTimeout(r, sampleSeconds * 1000));
    await sample();
  }
  stopping = true;
  const first = samples[0];
  const last = samples.at(-1);
  const peak = samples.reduce((a, s) => (s.native > a.native ? s : a), first);
  console.log(
    `${values.server} (${values.malloc}${values['arena-max'] ? `, MALLOC_ARENA_MAX=${values['arena-max']}` : ''}` +
      `${values['mmap-threshold'] ? `, MALLOC_MMAP_THRESHOLD_=${values['mmap-threshold']}` : ''}): ` +
      `${conns} connections, life ${values.life} s, ${reconnects} reconnects, ${errors} session errors, ` +
      `${(received / 1e9).toFixed(1)} GB received in ${seconds} s. Server RSS ${first.rss} → ${last.rss} MiB; ` +
      `native (RSS − V8 heap committed − external) ${first.native} → ${last.native} MiB (peak ${peak.native} at ${peak.t} s); ` +
      `heap used ${first.heapUsed} → ${last.heapUsed} MiB`,
  );
  child.kill();
  process.exit(0);
}

if (values.role === 'server') await serve();
else await churn();
