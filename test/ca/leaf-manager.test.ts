// Leaf renewal and root rotation on a manual clock: no real waiting, real crypto.
import { describe, expect, it } from 'vitest';
import { CertificateAuthority } from '../../src/ca/authority.js';
import { FileCaStore } from '../../src/ca/file-store.js';
import { LeafManager, type CaChange, type LeafManagerOptions } from '../../src/ca/leaf-manager.js';
import { MemoryCaStore, type CaStore } from '../../src/ca/store.js';
import { chainsTo, tempDir } from './helpers.js';
import { ManualClock } from './manual-clock.js';

const SECOND = 1000;
const HOUR = 3_600_000;

async function setup(
  opts: Partial<LeafManagerOptions> & { ttlMs?: number; store?: CaStore; clock?: ManualClock } = {},
) {
  const clock = opts.clock ?? new ManualClock();
  const store = opts.store ?? new MemoryCaStore();
  const ca = await CertificateAuthority.open({ store, clock, leafTtlMs: opts.ttlMs ?? 24 * HOUR });
  const manager = await LeafManager.start({ watchStore: false, ...opts, ca });
  const changes: CaChange[] = [];
  manager.onChange((c) => changes.push(c));
  const idle = () => manager.whenIdle();
  return { clock, store, ca, manager, changes, idle };
}

describe('LeafManager: leaf renewal', () => {
  it('issues on first request without an event, and hands out the same leaf until renewal', async () => {
    const { manager, changes } = await setup();
    const [a, b] = await Promise.all([manager.current('web'), manager.current('web')]);
    expect(a.serial).toBe(b.serial); // concurrent first requests share one issuance
    expect((await manager.current('web')).serial).toBe(a.serial);
    expect(manager.peek('web')?.serial).toBe(a.serial);
    expect(manager.services()).toEqual(['web']);
    expect(changes).toEqual([]);
  });

  it('renews at a random point in 60–90 % of the lifetime and emits the service', async () => {
    const { manager, clock, changes, idle } = await setup({ ttlMs: 20 * SECOND });
    const first = await manager.current('web');
    const lifetime = first.notAfter.getTime() - first.notBefore.getTime();
    const renewAt = manager.renewAt('web')!.getTime();
    expect(renewAt).toBeGreaterThanOrEqual(first.notBefore.getTime() + 0.6 * lifetime);
    expect(renewAt).toBeLessThanOrEqual(first.notBefore.getTime() + 0.9 * lifetime);

    await clock.advanceTo(renewAt - 1, idle);
    expect(changes).toEqual([]);
    await clock.advance(1, idle);
    expect(changes).toEqual([{ service: 'web', bundleChanged: false }]);
    const second = await manager.current('web');
    expect(second.serial).not.toBe(first.serial);
    expect(second.notBefore.getTime()).toBeLessThan(first.notAfter.getTime()); // overlap, no gap

    // And it keeps going: three more lifetimes, three or more renewals, always before expiry.
    let current = second;
    for (let i = 0; i < 3; i++) {
      await clock.advanceTo(current.notAfter.getTime() - 1, idle);
      const next = await manager.current('web');
      expect(next.serial).not.toBe(current.serial);
      current = next;
    }
  });

  it('spreads renewal points (random in the window, not one fixed fraction)', async () => {
    const { manager } = await setup();
    const fractions: number[] = [];
    for (let i = 0; i < 12; i++) {
      const leaf = await manager.current(`svc-${i}`);
      const life = leaf.notAfter.getTime() - leaf.notBefore.getTime();
      fractions.push((manager.renewAt(`svc-${i}`)!.getTime() - leaf.notBefore.getTime()) / life);
    }
    for (const f of fractions) {
      expect(f).toBeGreaterThanOrEqual(0.6);
      expect(f).toBeLessThanOrEqual(0.9);
    }
    expect(new Set(fractions.map((f) => f.toFixed(3))).size).toBeGreaterThan(6);
  });

  it('AUTO_ROTATE_CERTS=false: no timers; a stale leaf is replaced on the next request', async () => {
    const { manager, clock, changes, idle } = await setup({
      autoRotate: false,
      ttlMs: 20 * SECOND,
    });
    const first = await manager.current('web');
    expect(clock.pending()).toEqual([]);
    await clock.advance(19 * SECOND, idle);
    expect(changes).toEqual([]);
    const second = await manager.current('web');
    expect(second.serial).not.toBe(first.serial);
    expect(changes).toEqual([{ service: 'web', bundleChanged: false }]);
  });

  it('retries a failed renewal and keeps serving the old leaf meanwhile', async () => {
    const { manager, clock, ca, changes, idle } = await setup({
      ttlMs: 20 * SECOND,
      retryMs: 1000,
    });
    const first = await manager.current('web');
    const real = ca.issueLeaf.bind(ca);
    let failures = 2;
    ca.issueLeaf = async (service) => {
      if (failures-- > 0) throw new Error('HSM unavailable');
      return real(service);
    };
    await clock.advanceTo(manager.renewAt('web')!.getTime(), idle);
    expect(manager.peek('web')?.serial).toBe(first.serial);
    await clock.advance(2000, idle);
    expect(manager.peek('web')?.serial).not.toBe(first.serial);
    expect(changes).toEqual([{ service: 'web', bundleChanged: false }]);
  });

  it('forget() stops renewing a service', async () => {
    const { manager, clock, changes, idle } = await setup({ ttlMs: 20 * SECOND });
    await manager.current('web');
    manager.forget('web');
    await clock.advance(60 * SECOND, idle);
    expect(changes).toEqual([]);
    expect(manager.services()).toEqual([]);
  });

  it('reports seconds until expiry for leaves and roots (metrics)', async () => {
    const { manager, clock, ca } = await setup();
    await manager.current('web');
    await clock.advance(HOUR);
    const report = manager.expiries();
    expect(report.leaves).toEqual([
      expect.objectContaining({ service: 'web', rootSerial: ca.activeRoot().serial }),
    ]);
    expect(report.leaves[0]!.secondsRemaining).toBe(23 * 3600);
    // 24 h and the minute notBefore is backdated: what MeshCertificateExpiringSoon compares with.
    expect(report.leaves[0]!.lifetimeSeconds).toBe(24 * 3600 + 60);
    expect(report.roots).toHaveLength(1);
    expect(report.roots[0]!.state).toBe('active');
    expect(report.roots[0]!.secondsRemaining).toBeGreaterThan(9 * 365 * 86_400);
    expect(report.roots[0]!.lifetimeSeconds).toBe(3650 * 86_400 + 3600); // backdated an hour
  });

  it('records current leaves in the store (what `ca show` prints)', async () => {
    const { manager, store, idle } = await setup();
    const leaf = await manager.current('web');
    await idle();
    expect(await store.loadLeaves()).toEqual([
      expect.objectContaining({ service: 'web', serial: leaf.serial, rootSerial: leaf.rootSerial }),
    ]);
  });
});

describe('LeafManager: root rotation', () => {
  const rotation = {
    rotationDelayMs: 10 * SECOND,
    rotationSpreadMs: 20 * SECOND,
    retireDelayMs: 5 * SECOND,
  };

  it('bundle first, then spread re-issues, then the old root leaves the bundle', async () => {
    const { manager, clock, ca, changes, idle } = await setup(rotation);
    const services = ['a', 'b', 'c', 'd', 'e', 'f'];
    const before = new Map<string, string>();
    for (const s of services) before.set(s, (await manager.current(s)).serial);
    const oldRoot = ca.activeRoot().serial;
    const oldBundle = manager.trustBundlePem();

    const rotatedAt = clock.now();
    const newRoot = await manager.rotateRoot();
    await idle();
    // 1. Immediately: the bundle grows to old + new, nothing re-issued yet.
    expect(changes).toEqual([{ bundleChanged: true }]);
    expect(manager.trustBundlePem()).toContain(oldBundle.trim());
    expect(ca.roots().map((r) => r.state)).toEqual(['active', 'retiring']);

    // 2. Nothing during the propagation delay.
    await clock.advance(rotation.rotationDelayMs - 1, idle);
    expect(changes).toHaveLength(1);

    // Every old-root leaf is replaced within delay + spread, at distinct instants.
    const renewTimes = new Map<string, number>();
    let droppedAt: number | undefined;
    manager.onChange((c) => {
      if (c.service) renewTimes.set(c.service, clock.now());
      else if (c.bundleChanged) droppedAt = clock.now();
    });
    await clock.advanceTo(rotatedAt + rotation.rotationDelayMs + rotation.rotationSpreadMs, idle);
    expect([...renewTimes.keys()].sort()).toEqual(services);
    expect(new Set(renewTimes.values()).size).toBeGreaterThan(1);
    for (const s of services) {
      const leaf = manager.peek(s)!;
      expect(leaf.serial).not.toBe(before.get(s));
      expect(leaf.rootSerial).toBe(newRoot.serial);
    }

    // 3. The old root leaves the bundle retireDelay after the last replacement, not before,
    // with one more bundle event.
    await clock.advance(rotation.retireDelayMs, idle);
    const lastRenewal = Math.max(...renewTimes.values());
    expect(droppedAt).toBe(lastRenewal + rotation.retireDelayMs);
    expect(ca.roots().map((r) => r.serial)).toEqual([newRoot.serial]);
    expect(changes.filter((c) => c.bundleChanged)).toHaveLength(2);
    expect(manager.trustBundlePem()).not.toContain(oldBundle.trim());
    expect(oldRoot).not.toBe(newRoot.serial);
    for (const s of services)
      expect(chainsTo(manager.peek(s)!.certChainPem, manager.trustBundlePem())).toBe(true);
  });

  it('keeps the old root while any old-root leaf is still current', async () => {
    const { manager, clock, ca, idle } = await setup(rotation);
    await manager.current('web');
    const oldRoot = ca.activeRoot().serial;
    // This renewal fails for a while: the old leaf stays current, so must the old root.
    const real = ca.issueLeaf.bind(ca);
    let failing = true;
    ca.issueLeaf = async (s) => {
      if (failing) throw new Error('transient');
      return real(s);
    };
    await manager.rotateRoot();
    await clock.advance(5 * 60 * SECOND, idle);
    expect(ca.roots().map((r) => r.serial)).toContain(oldRoot);
    failing = false;
    await clock.advance(60 * SECOND, idle);
    expect(manager.peek('web')!.rootSerial).not.toBe(oldRoot);
    expect(ca.roots().map((r) => r.serial)).not.toContain(oldRoot);
  });

  it('a rotation with no leaves issued drops the old root after the grace period', async () => {
    const { manager, clock, ca, changes, idle } = await setup(rotation);
    const oldRoot = ca.activeRoot().serial;
    await manager.rotateRoot();
    await clock.advance(rotation.retireDelayMs, idle);
    expect(ca.roots().map((r) => r.serial)).not.toContain(oldRoot);
    expect(changes).toEqual([{ bundleChanged: true }, { bundleChanged: true }]);
  });

  it('picks up a rotation another process wrote to the store (watch), same sequence', async () => {
    const clock = new ManualClock();
    const store = new MemoryCaStore();
    const { manager, ca, changes, idle } = await setup({
      ...rotation,
      clock,
      store,
      watchStore: true,
    });
    await manager.current('web');
    const oldRoot = ca.activeRoot().serial;

    // "lucid-mesh ca rotate" in another process: its own CA object on the same store.
    const cli = await CertificateAuthority.open({ store, clock });
    const newRoot = await cli.rotateRoot();
    await new Promise((r) => setTimeout(r, 0)); // the watcher is notified asynchronously
    await idle();
    expect(changes).toEqual([{ bundleChanged: true }]);
    expect(ca.activeRoot().serial).toBe(newRoot.serial);

    await clock.advance(rotation.rotationDelayMs + rotation.rotationSpreadMs, idle);
    expect(manager.peek('web')!.rootSerial).toBe(newRoot.serial);
    await clock.advance(rotation.retireDelayMs, idle);
    expect((await store.loadRoots()).map((r) => r.serial)).toEqual([newRoot.serial]);
    expect(changes.at(-1)).toEqual({ bundleChanged: true });
    expect(ca.roots().map((r) => r.serial)).not.toContain(oldRoot);
    manager.stop();
  });

  it('after a restart, keeps the old root until leaves issued before the restart are replaced or expired', async () => {
    const clock = new ManualClock();
    const store = new MemoryCaStore();
    const before = await setup({ ...rotation, clock, store });
    await before.manager.current('web');
    await before.manager.current('api');
    await before.idle();
    before.manager.stop();
    const oldRoot = before.ca.activeRoot().serial;

    // Rotated while no server ran.
    const cli = await CertificateAuthority.open({ store, clock });
    await cli.rotateRoot();

    const after = await setup({ ...rotation, clock, store });
    // web reconnects and gets a new-root leaf; api never comes back.
    expect((await after.manager.current('web')).rootSerial).not.toBe(oldRoot);
    await clock.advance(HOUR, after.idle);
    expect(after.ca.roots().map((r) => r.serial)).toContain(oldRoot);
    // Once api's old leaf has expired, nothing can present it: the root goes.
    await clock.advance(24 * HOUR, after.idle);
    expect(after.ca.roots().map((r) => r.serial)).not.toContain(oldRoot);
    after.manager.stop();
  });

  it('works across real processes sharing a data directory (file store + fs watch)', async () => {
    const dataDir = tempDir();
    const clock = new ManualClock();
    const { manager, ca, changes, idle } = await setup({
      ...rotation,
      clock,
      store: new FileCaStore(dataDir),
      watchStore: true,
    });
    await manager.current('web');
    const cli = await CertificateAuthority.open({ store: new FileCaStore(dataDir) });
    const newRoot = await cli.rotateRoot();
    const deadline = Date.now() + 3000;
    while (changes.length === 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    await idle();
    expect(changes).toEqual([{ bundleChanged: true }]);
    expect(ca.activeRoot().serial).toBe(newRoot.serial);
    manager.stop();
  });
});

describe('LeafManager: persistence', () => {
  it('a burst of first issues ends with every leaf recorded in the file store', async () => {
    const store = new FileCaStore(tempDir());
    const { manager, idle } = await setup({ store });
    const services = Array.from({ length: 25 }, (_, i) => `svc-${i}`);
    const leaves = await Promise.all(services.map((s) => manager.current(s)));
    await idle();
    const records = await store.loadLeaves();
    expect(records.map((r) => r.serial).sort()).toEqual(leaves.map((l) => l.serial).sort());
  });
});

describe('LeafManager: failures', () => {
  it('current() keeps serving a still-valid leaf when its late renewal fails, fails once expired', async () => {
    const { manager, clock, ca, idle } = await setup({ autoRotate: false, ttlMs: 20 * SECOND });
    const first = await manager.current('web');
    ca.issueLeaf = async () => {
      throw new Error('signer offline');
    };
    await clock.advanceTo(manager.renewAt('web')!.getTime(), idle);
    expect((await manager.current('web')).serial).toBe(first.serial);
    await clock.advanceTo(first.notAfter.getTime(), idle);
    await expect(manager.current('web')).rejects.toThrow('signer offline');
  });
});
