#!/usr/bin/env node
// What one idle HTTP/2 session costs a node:http2 server, by session setting: the W9 question
// "what is RSS per proxy made of" without the control plane. A server process answers every
// stream with `--responses` gRPC messages of `--bytes` each (a scoped proxy's first responses)
// and keeps the stream open; this process opens `--conns` connections of one stream each,
// waits for every response, and the server reports its memory after a full GC, before and
// with the connections (per connection: RSS, V8 committed heap, external, native rest).
//
//   node bench/diag/http2-session-memory.mjs [--conns 3000] [--responses 4] [--bytes 2500]
//        [--deflate-table N] [--header-table N] [--window N] [--malloc glibc|jemalloc]
//        [--mmap-threshold BYTES] [--trim-threshold BYTES] [--arena-max N]
//
// --deflate-table: http2 maxDeflateDynamicTableSize (our HPACK encoder's table; default 4096);
// --header-table: settings.headerTableSize (the table we let the client's encoder use);
// --window: settings.initialWindowSize. Prints one JSON line. Holds no lock itself: run it
// under `flock /tmp/lucid-bench.lock` like the bench.
import { fork } from 'node:child_process';
import http2 from 'node:http2';
import { setTimeout } from 'node:timers';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { getHeapSpaceStatistics } from 'node:v8';

const PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
const JEMALLOC = '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2';

const { values } = parseArgs({
  options: {
    role: { type: 'string', default: 'client' },
    conns: { type: 'string', default: '3000' },
    responses: { type: 'string', default: '4' },
    bytes: { type: 'string', default: '2500' },
    'deflate-table': { type: 'string' },
    'header-table': { type: 'string' },
    window: { type: 'string' },
    malloc: { type: 'string', default: 'glibc' },
    'mmap-threshold': { type: 'string' },
    'trim-threshold': { type: 'string' },
    'arena-max': { type: 'string' },
    'node-flags': { type: 'string' },
    wait: { type: 'string', default: '0.5' },
  },
});

const num = (name) => (values[name] === undefined ? undefined : Number(values[name]));

function frame(size) {
  const b = Buffer.alloc(5 + size, 0x61);
  b[0] = 0;
  b.writeUInt32BE(size, 1);
  return b;
}

function memory() {
  globalThis.gc();
  globalThis.gc();
  const m = process.memoryUsage();
  const spaces = Object.fromEntries(
    getHeapSpaceStatistics().map((sp) => [sp.space_name, sp.space_size]),
  );
  return { rss: m.rss, heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external, spaces };
}

async function server() {
  const settings = {};
  if (num('header-table') !== undefined) settings.headerTableSize = num('header-table');
  if (num('window') !== undefined) settings.initialWindowSize = num('window');
  const options = {
    maxSendHeaderBlockLength: Number.MAX_SAFE_INTEGER,
    maxSessionMemory: Number.MAX_SAFE_INTEGER,
    settings,
  };
  if (num('deflate-table') !== undefined) options.maxDeflateDynamicTableSize = num('deflate-table');
  const srv = http2.createServer(options);
  const responses = num('responses');
  const bytes = num('bytes');
  srv.on('session', (s) => s.on('error', () => undefined));
  srv.on('stream', (stream) => {
    stream.on('error', () => undefined);
    stream.once('data', () => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
      // A fresh buffer per response, as a proxy's own CDS/LDS response is.
      for (let i = 0; i < responses; i++) stream.write(frame(bytes));
    });
    stream.on('data', () => undefined);
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  process.send({ port: srv.address().port });
  process.on('message', (msg) => {
    if (msg === 'mem') process.send({ mem: memory() });
  });
}

async function client() {
  const env = { ...process.env };
  if (values.malloc === 'jemalloc') env.LD_PRELOAD = JEMALLOC;
  if (values['mmap-threshold']) env.MALLOC_MMAP_THRESHOLD_ = values['mmap-threshold'];
  if (values['trim-threshold']) env.MALLOC_TRIM_THRESHOLD_ = values['trim-threshold'];
  if (values['arena-max']) env.MALLOC_ARENA_MAX = values['arena-max'];
  const args = process.argv.slice(2).concat(['--role', 'server']);
  const child = fork(fileURLToPath(import.meta.url), args, {
    env,
    execArgv: ['--expose-gc', ...(values['node-flags'] ? values['node-flags'].split(' ') : [])],
  });
  const next = () => new Promise((r) => child.once('message', r));
  const { port } = await next();
  const ask = async () => {
    child.send('mem');
    return (await next()).mem;
  };
  const conns = num('conns');
  const expect = num('responses') * (5 + num('bytes'));
  const sessions = [];
  const open = () =>
    new Promise((resolve, reject) => {
      const s = http2.connect(`http://127.0.0.1:${port}`);
      s.on('error', reject);
      const req = s.request({
        ':method': 'POST',
        ':path': PATH,
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      let got = 0;
      req.on('data', (d) => {
        got += d.length;
        if (got >= expect) resolve();
      });
      req.on('error', reject);
      req.write(frame(300));
      sessions.push(s);
    });
  // A few first, so the baseline has the code paths warm.
  for (let i = 0; i < 20; i++) await open();
  const before = await ask();
  const t0 = Date.now();
  for (let i = 0; i < conns; i += 200) {
    await Promise.all(Array.from({ length: Math.min(200, conns - i) }, open));
  }
  const ms = Date.now() - t0;
  await new Promise((r) => setTimeout(r, Number(values.wait) * 1000));
  const after = await ask();
  const per = (f) => Math.round((f(after) - f(before)) / conns);
  const out = {
    conns,
    settings: {
      deflateTable: num('deflate-table'),
      headerTable: num('header-table'),
      window: num('window'),
      malloc: values.malloc,
      mmapThreshold: num('mmap-threshold'),
      trimThreshold: num('trim-threshold'),
      arenaMax: num('arena-max'),
    },
    openMs: ms,
    perConn: {
      rss: per((m) => m.rss),
      heapCommitted: per((m) => m.heapTotal),
      heapUsed: per((m) => m.heapUsed),
      external: per((m) => m.external),
      nativeRest: per((m) => m.rss - m.heapTotal - m.external),
    },
    spacesMiB: Object.fromEntries(
      Object.entries(after.spaces).map(([k, v]) => [
        k,
        `${(before.spaces[k] / 2 ** 20).toFixed(1)}→${(v / 2 ** 20).toFixed(1)}`,
      ]),
    ),
  };
  console.log(JSON.stringify(out));
  for (const s of sessions) s.destroy();
  child.kill();
}

if (values.role === 'server') await server();
else await client();
