// The xDS port listens with an accept queue for a storm (listen-backlog.ts), read back from the
// kernel: `ss -ltn` shows a listening socket's backlog in its Send-Q column.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { XDS_LISTEN_BACKLOG } from '../../src/xds/listen-backlog.js';
import { XdsCounters } from '../../src/xds/observer.js';
import { XdsServer } from '../../src/xds/server.js';

const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

/** The backlog of the socket listening on 127.0.0.1:`port`, as the kernel reports it. */
function backlogOf(port: number): number {
  const out = execFileSync('ss', ['-ltnH', `sport = :${port}`], { encoding: 'utf8' });
  const line = out.split('\n').find((l) => l.includes(`127.0.0.1:${port}`));
  if (!line) throw new Error(`ss shows no listener on port ${port}:\n${out}`);
  return Number(line.trim().split(/\s+/)[2]);
}

describe('xDS listen backlog', () => {
  it("listens with a storm's accept queue, not Node's 511 (capped by net.core.somaxconn)", async () => {
    const store = new SnapshotStore({ logger: silentLogger });
    const server = new XdsServer({
      watcher: store,
      observer: new XdsCounters(),
      logger: silentLogger,
    });
    const port = await server.listen('127.0.0.1', 0);
    cleanup.push(() => {
      server.forceClose();
      store.close();
    });
    const somaxconn = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
    expect(backlogOf(port)).toBe(Math.min(XDS_LISTEN_BACKLOG, somaxconn));
    expect(backlogOf(port)).toBeGreaterThan(511);
  });
});
