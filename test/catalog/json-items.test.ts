// The JSON catalog splitter: a resplit (only the part an edit touched scanned) must give
// exactly what a split of the whole new text gives, for any edit, or decline.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IncrementalCatalogParser } from '../../src/catalog/incremental-parse.js';
import {
  entryText,
  resplitJsonCatalog,
  splitJsonCatalog,
  type JsonCatalogSplit,
} from '../../src/catalog/json-items.js';
import { parseCatalogText } from '../../src/catalog/load-document.js';

const entry = (name: string, port: number) =>
  JSON.stringify({ name, instances: [{ id: `${name}-1`, address: '10.0.0.1', port }] });

/** What a split says, independent of how it was made. */
function view(split: JsonCatalogSplit | undefined) {
  if (!split) return undefined;
  return {
    entries: split.starts.map((_, i) => entryText(split, i)),
    starts: [...split.starts],
    ends: [...split.ends],
    open: split.open,
    close: split.close,
    gateways: split.gateways,
  };
}

// Catalog texts with some spacing, a gateways key before or after, and strings that hold
// brackets, commas and escaped quotes (what a character scan could trip on).
const catalogText = fc
  .record({
    names: fc.array(fc.constantFrom('web', 'api', 'd[b]', 'q,"x"', 'a\\"}'), { maxLength: 6 }),
    gap: fc.constantFrom('', ' ', '\n  ', ',\n'),
    gateways: fc.constantFrom('none', 'before', 'after'),
  })
  .map(({ names, gap, gateways }) => {
    const sep = gap === ',\n' ? ',\n' : `,${gap}`;
    const services = `"services": [${gap.trim() === ',' ? '' : gap}${names
      .map((n, i) => entry(n, 80 + i))
      .join(sep)}]`;
    const gw = '"gateways": [{"id": "gw-1", "address": "10.1.0.1", "port": 8443}]';
    if (gateways === 'before') return `{${gw}, ${services}}`;
    if (gateways === 'after') return `{${services},\n${gw}}\n`;
    return `{${services}}`;
  });

// An edit: replace a span of the text with a short string of JSON's structural characters,
// spaces, quotes, escapes, a no-break space or a whole entry.
const edit = fc.record({
  at: fc.nat(),
  remove: fc.nat({ max: 40 }),
  insert: fc.constantFrom(
    '',
    ',',
    ' ',
    '\n',
    '"',
    '\\',
    '\\"',
    '[',
    ']',
    '{',
    '}',
    '1',
    '\u00a0',
    `, ${entry('new', 9)}`,
    `${entry('new', 9)},`,
    '"x": [1, {"y": "]"}]',
  ),
});

function applyEdit(text: string, e: { at: number; remove: number; insert: string }): string {
  const at = e.at % (text.length + 1);
  return text.slice(0, at) + e.insert + text.slice(at + e.remove);
}

describe('resplitJsonCatalog', () => {
  it('gives what a split of the whole new text gives, over any sequence of edits', () => {
    fc.assert(
      fc.property(catalogText, fc.array(edit, { minLength: 1, maxLength: 8 }), (start, edits) => {
        let prev = splitJsonCatalog(start);
        let text = start;
        for (const e of edits) {
          text = applyEdit(text, e);
          const whole = splitJsonCatalog(text);
          if (prev) {
            const re = resplitJsonCatalog(prev, text);
            // Declining is allowed (the caller then splits the whole text); a result must match.
            if (re) {
              expect(view(re.split)).toEqual(view(whole));
              // The kept entries are the old ones, at either end.
              for (let k = 0; k < re.head; k++) {
                expect(entryText(re.split, k)).toBe(entryText(prev, k));
              }
              const n = re.split.starts.length;
              const m = prev.starts.length;
              for (let k = 1; k <= re.tail; k++) {
                expect(entryText(re.split, n - k)).toBe(entryText(prev, m - k));
              }
            }
          }
          prev = whole ?? prev;
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('scans only the entry an edit touched in a long catalog', () => {
    const names = Array.from({ length: 500 }, (_, i) => `svc-${i}`);
    const text = (port: number) =>
      `{"services": [${names.map((n, i) => entry(n, i === 250 ? port : 80)).join(', ')}]}`;
    const prev = splitJsonCatalog(text(80))!;
    const re = resplitJsonCatalog(prev, text(8080))!;
    expect(re.head).toBe(250);
    expect(re.tail).toBe(249);
    expect(entryText(re.split, 250)).toBe(entry('svc-250', 8080));
    // An entry appended at the end: everything before it is kept.
    const appended = text(80).replace(/]}$/, `, ${entry('svc-new', 81)}]}`);
    const grown = resplitJsonCatalog(prev, appended)!;
    expect(grown.head).toBe(499);
    expect(grown.split.starts).toHaveLength(501);
  });

  it('keeps only JSON whitespace out of an entry: a no-break space makes the catalog invalid, as the whole parse says', () => {
    const good = `{"services": [${entry('web', 80)}]}`;
    const bad = `{"services": [\u00a0${entry('web', 81)}]}`;
    const parser = new IncrementalCatalogParser();
    parser.parse(good, 'catalog.json');
    const full = () => parseCatalogText(bad, 'catalog.json');
    expect(full).toThrow(/invalid JSON/);
    expect(() => parser.parse(bad, 'catalog.json')).toThrow(/invalid JSON/);
  });
});
