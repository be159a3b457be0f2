// A proxy that stops reading must not make the control plane queue every change for it: once
// its buffers are full, changes are coalesced and it gets the latest state when it reads again.
import { describe, expect, it } from 'vitest';
import { ack, node, typeUrl } from '../support/ads-client.js';
import { bigAssignmentCatalog } from '../support/big-assignment.js';
import { protocolFixture } from '../support/control-plane.js';

const fx = protocolFixture();

describe('a proxy that stops reading', () => {
  it('gets changes coalesced, then the latest state when it reads again', async () => {
    const cp = await fx.start({ catalog: bigAssignmentCatalog(-1) });
    const c = fx.sotw(cp.port);
    c.send({ node: node('slow-1', 'slow'), typeUrl: typeUrl('endpoints'), resourceNames: ['big'] });
    c.send(ack(await c.next(), ['big']));
    await c.expectSilence(100);
    c.pause();
    const CHANGES = 150;
    const before = cp.counters.responses;
    for (let i = 0; i < CHANGES; i++) cp.apply(bigAssignmentCatalog(i));
    const sent = cp.counters.responses - before;
    // Without coalescing every change would be written (and buffered) for this proxy.
    expect(sent).toBeLessThan(CHANGES / 2);
    c.resume();
    // Read until the latest state shows up: big-149 is the one left out at the end.
    let last;
    for (;;) {
      last = await c.next(5000);
      const text = JSON.stringify(last.resources);
      if (!text.includes('"big-149"') && text.includes('"big-148"')) break;
    }
    expect(JSON.stringify(last.resources)).not.toContain('"big-149"');
    await c.expectSilence(300);
  });
});
