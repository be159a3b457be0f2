// A storm's stream open/close lines: the first ones per window at info, the rest counted in
// one summary line (at debug one by one, when debug is on).
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { LifecycleLog } from '../../src/xds/lifecycle-log.js';

function capture(level: 'info' | 'debug') {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l));
      done();
    },
  });
  return { lines, logger: pino({ level }, sink) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('stream lifecycle lines', () => {
  it('past the budget: one summary line with the counts, after the window', async () => {
    const { lines, logger } = capture('info');
    const log = new LifecycleLog(logger, 3, 100);
    for (let i = 0; i < 7; i++) log.line('opened', { stream: i }, 'xds stream opened');
    log.line('closed', { stream: 0 }, 'xds stream closed');
    await sleep(10);
    expect(lines.map((l) => l.msg)).toEqual(Array(3).fill('xds stream opened'));
    await sleep(200);
    const summary = lines.at(-1)!;
    expect(lines).toHaveLength(4);
    expect(summary).toMatchObject({ level: 30, opened: 4, closed: 1, perStreamLinesPerWindow: 3 });
    // A new window: per-stream lines again.
    log.line('closed', { stream: 1 }, 'xds stream closed');
    await sleep(10);
    expect(lines.at(-1)).toMatchObject({ msg: 'xds stream closed', stream: 1 });
  });

  it('at debug every line is still written; flush() writes the summary at once', async () => {
    const { lines, logger } = capture('debug');
    const log = new LifecycleLog(logger, 2, 60_000);
    for (let i = 0; i < 5; i++) log.line('opened', { stream: i }, 'xds stream opened');
    log.flush();
    await sleep(10);
    expect(lines.filter((l) => l.msg === 'xds stream opened').map((l) => l.level)).toEqual([
      30, 30, 20, 20, 20,
    ]);
    expect(lines.at(-1)).toMatchObject({ opened: 3, closed: 0 });
    log.flush(); // nothing held back: no second summary
    await sleep(10);
    expect(lines.filter((l) => 'opened' in l)).toHaveLength(1);
  });

  it('refusals past the budget (streams from many addresses): their summary is a warning', async () => {
    const { lines, logger } = capture('info');
    const log = new LifecycleLog(logger, 2, 60_000);
    for (let i = 0; i < 5; i++)
      log.line('refused', { peer: `10.0.0.${i}:1` }, 'xds stream refused');
    log.flush();
    await sleep(10);
    expect(lines.map((l) => l.level)).toEqual([40, 40, 40]);
    expect(lines.at(-1)).toMatchObject({ refused: 3, opened: 0, closed: 0 });
  });
});
