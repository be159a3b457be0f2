// The event outbox on a real filesystem: what is on disk after appends, confirms, a full outbox,
// a crash mid-write and a restart (the broker side is in event-stream.test.ts).
import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Outbox } from '../../src/events/outbox.js';
import { waitFor } from '../support/wait.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function newDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'lucid-outbox-test-'));
  dirs.push(d);
  return d;
}

const add = (o: Outbox, n: number, size = 100) => {
  for (let i = 0; i < n; i++) {
    o.append('mesh.changed', `id-${o.peekSeq()}`, (seq) => ({
      id: `id-${seq}`,
      key: 'mesh.changed',
      seq,
      pad: 'x'.repeat(size),
    }));
  }
};
const durable = (o: Outbox) =>
  waitFor(() => o.get(o.peekSeq() - 1)?.durable === true, { what: 'the batch written' });
const lines = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f.endsWith('.seg'))
    .sort()
    .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean))
    .map((l) => (JSON.parse(l) as { seq: number }).seq);

describe('event outbox', () => {
  it('writes every event before it counts as durable, and forgets it once confirmed', async () => {
    const dir = newDir();
    const o = await Outbox.open({ dir, maxBytes: 1024 * 1024 });
    add(o, 10);
    expect(o.get(1)?.durable).toBe(false); // appended in memory only, so far
    await durable(o);
    expect(lines(dir)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    for (let seq = 1; seq <= 10; seq++) o.confirm(seq);
    expect(o.size).toBe(0);
    await o.close();
    expect(readFileSync(join(dir, 'confirmed'), 'utf8').trim()).toBe('10');
  });

  it('after a restart: unconfirmed events come back, a line cut by a crash is skipped, seq goes on', async () => {
    const dir = newDir();
    const first = await Outbox.open({ dir, maxBytes: 1024 * 1024 });
    add(first, 5);
    await durable(first);
    first.confirm(1);
    first.confirm(2);
    await first.close();
    // A crash in the middle of a write leaves half a line.
    const segment = readdirSync(dir).find((f) => f.endsWith('.seg'))!;
    appendFileSync(join(dir, segment), '{"id":"id-6","key":"mesh.chan');

    const second = await Outbox.open({ dir, maxBytes: 1024 * 1024 });
    expect(second.size).toBe(3);
    expect(second.oldestSeq()).toBe(3);
    expect([3, 4, 5].map((s) => second.get(s)?.id)).toEqual(['id-3', 'id-4', 'id-5']);
    expect(second.peekSeq()).toBe(6);
    add(second, 1);
    expect(second.get(6)?.id).toBe('id-6');
    await second.close();
  });

  it('when full, drops the oldest segment, counts its unconfirmed events, keeps the newest', async () => {
    const dir = newDir();
    const drops: number[] = [];
    const maxBytes = 64 * 1024;
    const o = await Outbox.open({ dir, maxBytes, onDrop: (n) => drops.push(n) });
    add(o, 1000, 200); // ~230 KB of events into 64 KiB
    await durable(o);
    expect(o.bytes).toBeLessThanOrEqual(maxBytes);
    expect(o.counters.dropped).toBe(drops.reduce((a, b) => a + b, 0));
    expect(o.counters.dropped + o.size).toBe(1000);
    // What is left is one run ending with the newest, on disk as in memory.
    expect(o.oldestSeq()).toBe(o.counters.dropped + 1);
    expect(o.get(1000)?.id).toBe('id-1000');
    await waitFor(() => lines(dir).length === o.size, { what: 'dropped segments deleted' });
    expect(lines(dir)).toEqual(Array.from({ length: o.size }, (_, i) => o.oldestSeq() + i));
    await o.close();
  });

  it('deletes a segment once all of it is confirmed, never the one being written', async () => {
    const dir = newDir();
    const o = await Outbox.open({ dir, maxBytes: 64 * 1024 }); // 8 KiB segments
    add(o, 100, 200);
    await durable(o);
    const before = readdirSync(dir).filter((f) => f.endsWith('.seg')).length;
    expect(before).toBeGreaterThan(2);
    for (let seq = 1; seq <= 100; seq++) o.confirm(seq);
    await waitFor(() => readdirSync(dir).filter((f) => f.endsWith('.seg')).length === 1, {
      what: 'confirmed segments deleted',
    });
    await o.close();
  });

  it('one process per directory: a live owner is refused, a crashed one is taken over', async () => {
    const dir = newDir();
    const first = await Outbox.open({ dir, maxBytes: 1024 * 1024 });
    await expect(Outbox.open({ dir, maxBytes: 1024 * 1024 })).rejects.toThrow(
      `in use by another process (pid ${process.pid}, ${join(dir, 'owner')}): give each replica its own --events-outbox-dir`,
    );
    await first.close();
    expect(existsSync(join(dir, 'owner'))).toBe(false);
    const second = await Outbox.open({ dir, maxBytes: 1024 * 1024 });
    await second.close();

    // A process that died long ago: taken over at once.
    writeFileSync(join(dir, 'owner'), '999999 old-token\n');
    const old = new Date(Date.now() - 60_000);
    utimesSync(join(dir, 'owner'), old, old);
    const t0 = Date.now();
    await (await Outbox.open({ dir, maxBytes: 1024 * 1024 })).close();
    expect(Date.now() - t0).toBeLessThan(1_000);

    // One that died just now: its file is not touched again, so it is taken over once stale.
    writeFileSync(join(dir, 'owner'), '999999 crashed-token\n');
    const t1 = Date.now();
    const third = await Outbox.open({ dir, maxBytes: 1024 * 1024 });
    expect(Date.now() - t1).toBeGreaterThan(4_000);
    expect(readFileSync(join(dir, 'owner'), 'utf8')).toMatch(new RegExp(`^${process.pid} `));
    await third.close();
  }, 20_000);
});
