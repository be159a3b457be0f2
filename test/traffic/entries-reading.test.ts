// A watched traffic file is read entry by entry (parseTrafficTextByEntries): whatever the
// edits, it must give exactly what parseTrafficText gives (configuration or error message),
// in YAML and JSON.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { parseTrafficText, parseTrafficTextByEntries } from '../../src/traffic/traffic-file.js';
import type { TrafficConfig } from '../../src/traffic/types.js';

const example = parse(
  readFileSync(new URL('../../examples/traffic.yaml', import.meta.url), 'utf8'),
) as Array<Record<string, unknown>>;

type Outcome = { ok: unknown } | { error: string };
function outcome(run: () => TrafficConfig): Outcome {
  try {
    return {
      ok: JSON.parse(JSON.stringify(run(), (_k, v: unknown) => (v instanceof Map ? [...v] : v))),
    };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

// Edits: drop, duplicate or break an entry (a bad value, a duplicate key), rename one, give
// one another valid value, or reverse the order of the entries.
const edit = fc.record({
  kind: fc.constantFrom(
    'drop',
    'duplicate',
    'bad',
    'rename',
    'dupkey',
    'retime',
    'reverse',
    'none',
  ),
  at: fc.nat(),
});
function apply(entries: Array<Record<string, unknown>>, e: { kind: string; at: number }) {
  const out = entries.map((x) => ({ ...x }));
  const i = e.at % out.length;
  if (e.kind === 'drop') out.splice(i, 1);
  if (e.kind === 'duplicate') out.push({ ...out[i]! });
  if (e.kind === 'bad') out[i] = { ...out[i]!, ConnectTimeout: 'soon' };
  if (e.kind === 'rename') out[i] = { ...out[i]!, Name: `svc-${e.at % 7}` };
  if (e.kind === 'retime') out[i] = { ...out[i]!, ConnectTimeout: `${(e.at % 5) + 1}s` };
  if (e.kind === 'reverse') out.reverse();
  return out;
}
function text(entries: Array<Record<string, unknown>>, json: boolean, dupKeyAt?: number) {
  if (!json) {
    const t = stringify(entries);
    return dupKeyAt === undefined ? t : t.replace(/^(- Kind: [^\n]*)$/m, '$1\n  Kind: x');
  }
  const parts = entries.map((x) => JSON.stringify(x, null, 1));
  if (dupKeyAt !== undefined && parts.length > 0) {
    const i = dupKeyAt % parts.length;
    parts[i] = parts[i]!.replace('{', '{"Kind": "x",');
  }
  return `[\n${parts.join(',\n')}\n]\n`;
}

describe('parseTrafficTextByEntries', () => {
  for (const json of [false, true]) {
    it(`gives what parseTrafficText gives over any sequence of edits (${json ? 'JSON' : 'YAML'})`, () => {
      const file = json ? 'traffic.json' : 'traffic.yaml';
      fc.assert(
        fc.property(
          fc.array(fc.array(edit, { maxLength: 3 }), { minLength: 1, maxLength: 5 }),
          (steps) => {
            let previousA: TrafficConfig | undefined;
            let previousB: TrafficConfig | undefined;
            for (const edits of steps) {
              let entries = example;
              let dupKeyAt: number | undefined;
              for (const e of edits) {
                if (e.kind === 'dupkey') dupKeyAt = e.at;
                else entries = apply(entries, e);
              }
              if (entries.length === 0) continue;
              const t = text(entries, json, dupKeyAt);
              const a = outcome(() => (previousA = parseTrafficTextByEntries(t, file, previousA)));
              const b = outcome(() => (previousB = parseTrafficText(t, file, previousB)));
              expect(a).toEqual(b);
            }
          },
        ),
        { numRuns: 120 },
      );
    });
  }

  it('an edit after a good read gives parseTrafficText’s configuration, unchanged entries kept', () => {
    const file = 'traffic.yaml';
    const first = parseTrafficTextByEntries(stringify(example), file);
    const renamed = apply(example, { kind: 'rename', at: 1 });
    const second = parseTrafficTextByEntries(stringify(renamed), file, first);
    expect(second.resolvers.get('hello')).toBe(first.resolvers.get('hello'));
    expect(second).toEqual(parseTrafficText(stringify(renamed), file, first));
  });

  it('a no-break space next to a JSON entry is refused on an edit, as at the next start', () => {
    const file = 'traffic.json';
    const entries = example.map((e) => JSON.stringify(e));
    const first = parseTrafficTextByEntries(`[${entries.join(', ')}]`, file);
    const edited = `[\u00a0${entries.join(', ')}]`;
    const whole = outcome(() => parseTrafficText(edited, file, first));
    expect(whole).toMatchObject({ error: expect.stringMatching(/invalid JSON/) as unknown });
    expect(outcome(() => parseTrafficTextByEntries(edited, file, first))).toEqual(whole);
  });
});
