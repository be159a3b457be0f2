// Free TCP ports on 127.0.0.1 for tests (the kernel picks them; there is an unavoidable but
// tiny window between closing the probe socket and the real user binding the port).
import { createServer } from 'node:net';

function probe(): Promise<{ port: number; close: () => Promise<void> }> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
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
