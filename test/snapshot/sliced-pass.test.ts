// The fan-out pass on its own (src/snapshot/fanout.ts): a newer pass takes over one still
// running, owing what that one had not reached yet; the replaced pass never reports done.
// A 0 ms slice visits one item per slice, so where a pass stands is known without timing.
import { describe, expect, it } from 'vitest';
import { SlicedPass } from '../../src/snapshot/fanout.js';
import { waitFor } from '../support/wait.js';

function recorder(all: string[]) {
  const visited: string[] = [];
  const done: string[] = [];
  const pass = new SlicedPass<string>(
    () => all,
    (item) => visited.push(item),
    0,
  );
  const finished = (label: string) => () => done.push(label);
  return { pass, visited, done, finished };
}

describe('the sliced fan-out pass', () => {
  it('hands what a replaced pass had not reached to the newer one, first and once each', async () => {
    const { pass, visited, done, finished } = recorder(['a', 'b', 'c', 'd', 'x']);
    pass.start(['a', 'b', 'c', 'd'], finished('first'));
    expect(visited).toEqual(['a']); // the first slice runs at once
    expect(pass.running).toBe(true);
    pass.start(['c', 'x'], finished('second'));
    await waitFor(() => done.length > 0, { what: 'the newer pass to finish' });
    await new Promise((r) => setImmediate(r)); // the replaced pass's next slice, had it one
    expect(visited).toEqual(['a', 'b', 'c', 'd', 'x']);
    expect(done).toEqual(['second']);
    expect(pass.running).toBe(false);
  });

  it('owes nothing to a replaced pass when the newer one visits everything', async () => {
    const { pass, visited, done, finished } = recorder(['a', 'b', 'c']);
    pass.start(['a', 'b', 'c'], finished('first'));
    pass.start(undefined, finished('all'));
    await waitFor(() => done.length > 0, { what: 'the pass over everything to finish' });
    expect(visited).toEqual(['a', 'a', 'b', 'c']);
    expect(done).toEqual(['all']);
  });

  it('after a finished pass, the next one visits only its own items', async () => {
    const { pass, visited, done, finished } = recorder(['a', 'b', 'c']);
    pass.start(['a', 'b'], finished('first'));
    await waitFor(() => done.length > 0, { what: 'the first pass to finish' });
    pass.start(['c'], finished('second'));
    await waitFor(() => done.length > 1, { what: 'the second pass to finish' });
    expect(visited).toEqual(['a', 'b', 'c']);
    expect(done).toEqual(['first', 'second']);
  });
});
