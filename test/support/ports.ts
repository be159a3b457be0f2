// Free TCP ports on 127.0.0.1 for tests. Taken below the kernel's ephemeral range (32768+):
// a port from that range, probed free and handed to Envoy or an app a moment later, can meanwhile
// become the local port of some outgoing connection of another test running alongside (seen:
// Envoy's listener failing with "Address already in use"). Below it only explicit binds compete,
// and each vitest worker takes its ports from a slice of its own, so tests running in parallel
// never pick the same one.
import { createServer } from 'node:net';

const SLICE = 1500;
const POOL = (Number(process.env.VITEST_POOL_ID ?? 1) - 1) % 8;
const LOW = 20000 + POOL * SLICE;
const HIGH = LOW + SLICE;

// Ports handed out lately by this worker: a probed port is closed again before its user binds
// it, so two calls in a row could otherwise draw the same one (seen: a sidecar's outbound port
// equal to its admin port). A quarter of the slice is plenty for one test file's components.
const RECENT_MAX = SLICE / 4;
const recent = new Set<number>();

function remember(port: number): void {
  recent.add(port);
  if (recent.size > RECENT_MAX) recent.delete(recent.values().next().value as number);
}

function probe(): Promise<{ port: number; close: () => Promise<void> }> {
  return tryPorts(50);
}

async function tryPorts(attempts: number): Promise<{ port: number; close: () => Promise<void> }> {
  for (let i = 0; ; i++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW));
    if (recent.has(port) && i < attempts) continue;
    try {
      const probed = await probeOne(port);
      remember(probed.port);
      return probed;
    } catch (err) {
      if (i >= attempts) throw err;
    }
  }
}

function probeOne(port: number): Promise<{ port: number; close: () => Promise<void> }> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('freePort: no TCP address'));
        return;
      }
      resolve({
        port: address.port,
        close: () => new Promise<void>((done) => server.close(() => done())),
      });
    });
  });
}

/** One free port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const p = await probe();
  await p.close();
  return p.port;
}

/** `n` distinct free ports (all probes are held open together so they cannot collide). */
export async function freePorts(n: number): Promise<number[]> {
  const probes: Awaited<ReturnType<typeof probe>>[] = [];
  try {
    for (let i = 0; i < n; i++) probes.push(await probe());
    return probes.map((p) => p.port);
  } finally {
    await Promise.all(probes.map((p) => p.close()));
  }
}

/** A base port such that base + each offset is free (all within this worker's slice). */
export async function freePortBase(offsets: readonly number[]): Promise<number> {
  const span = Math.max(...offsets) + 1;
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = LOW + Math.floor(Math.random() * (SLICE - span));
    if (offsets.some((o) => recent.has(base + o))) continue;
    const probes = await Promise.allSettled(offsets.map((o) => probeOne(base + o)));
    await Promise.all(
      probes.map((p) => (p.status === 'fulfilled' ? p.value.close() : Promise.resolve())),
    );
    if (probes.every((p) => p.status === 'fulfilled')) {
      for (const o of offsets) remember(base + o);
      return base;
    }
  }
  throw new Error(`no free port base in [${LOW}, ${HIGH})`);
}
