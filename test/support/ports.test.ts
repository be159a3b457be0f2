// The test port helper: ports handed out one after another are distinct, even though each probe
// is closed before the port's user binds it (a sidecar once got the same port for its admin and
// outbound listeners, and its bootstrap was refused).
import { describe, expect, it } from 'vitest';
import { freePort, freePortBase, freePorts } from './ports.js';

describe('freePort', () => {
  it('200 ports drawn one after another are all different', async () => {
    const ports: number[] = [];
    for (let i = 0; i < 200; i++) ports.push(await freePort());
    expect(new Set(ports).size).toBe(200);
  });

  it('freePorts and freePortBase do not hand out a port freePort just gave', async () => {
    const single = await freePort();
    const many = await freePorts(20);
    const base = await freePortBase([0, 1, 2]);
    const all = [single, ...many, base, base + 1, base + 2];
    expect(new Set(all).size).toBe(all.length);
  });
});
