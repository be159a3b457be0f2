// --max-stream-age with one timer for every stream (src/xds/age-out.ts): each stream is ended
// when it is due and not before, in order; a stream waiting for an answer gets its postpones;
// a closed (forgotten) stream is never ended and is not kept.
import { describe, expect, it } from 'vitest';
import { AgeOut } from '../../src/xds/age-out.js';
import { waitFor } from '../support/wait.js';

class FakeStream {
  endedAt: number | undefined;
  details: string | undefined;
  awaitingAnswer = false;
  goAway(details: string): void {
    this.endedAt = performance.now();
    this.details = details;
  }
}

describe('AgeOut', () => {
  it('ends 200 streams each when due, never a forgotten one, and keeps none afterwards', async () => {
    const ageOut = new AgeOut({ postponeMs: 30, maxPostpones: 2, details: 'too old' });
    const start = performance.now();
    const streams = Array.from({ length: 200 }, (_, i) => ({
      stream: new FakeStream(),
      // Out of order, several due at once.
      delayMs: 20 + ((i * 37) % 120),
      forgotten: i % 5 === 0,
    }));
    streams.forEach((s, i) => ageOut.add(i, s.stream, s.delayMs));
    expect(ageOut.size).toBe(200);
    streams.forEach((s, i) => s.forgotten && ageOut.forget(i));
    expect(ageOut.size).toBe(160);
    // Two wait for an answer: each is given its postpones (2 × 30 ms) before it is ended.
    streams[1]!.stream.awaitingAnswer = true;
    streams[2]!.stream.awaitingAnswer = true;
    await waitFor(() => streams.every((s) => s.forgotten || s.stream.endedAt !== undefined), {
      timeoutMs: 5_000,
      intervalMs: 10,
      what: 'every stream not forgotten ended',
    });
    for (const s of streams) {
      if (s.forgotten) {
        expect(s.stream.endedAt).toBeUndefined();
        continue;
      }
      // Each look may come up to 1 ms early by the performance clock (age-out.ts).
      const late = s.stream.awaitingAnswer ? 60 - 2 : 0;
      expect(s.stream.endedAt! - start).toBeGreaterThanOrEqual(s.delayMs + late - 1);
      expect(s.stream.details).toBe('too old');
    }
    expect(ageOut.size).toBe(0);
  });

  it('a stream that answers meanwhile is ended at its next look, not after every postpone', async () => {
    const ageOut = new AgeOut({ postponeMs: 40, maxPostpones: 10, details: 'too old' });
    const stream = new FakeStream();
    stream.awaitingAnswer = true;
    const start = performance.now();
    ageOut.add(1, stream, 10);
    setTimeout(() => (stream.awaitingAnswer = false), 70);
    await waitFor(() => stream.endedAt !== undefined, {
      timeoutMs: 2_000,
      intervalMs: 5,
      what: 'the stream ended',
    });
    const after = stream.endedAt! - start;
    expect(after).toBeGreaterThanOrEqual(70);
    expect(after).toBeLessThan(10 + 10 * 40);
  });
});
