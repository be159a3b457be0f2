// A traffic file read entry by entry: the texts of the entries of its top-level list (a JSON
// array or a plain YAML sequence, see ../catalog/yaml-sections.ts), each parsed only when its
// text is new. yaml's parser took ~1 s per edit for W7's 800 KB file (3,000 entries), most of a
// router edit's "detect" time; an edit changes one entry. Undefined whenever the text is not
// that simple shape or any entry fails to parse: the caller then parses the whole text, so
// errors read as they always have.
import { isJsonFile, nestingProblem } from '../catalog/load-document.js';
import {
  parseYamlValue,
  plainLines,
  splitItems,
  splitJsonArray,
} from '../catalog/yaml-sections.js';

/** Above this many new entries (and an eighth of all), one parse of the whole text is faster. */
const MAX_ITEM_PARSES = 16;

export interface TrafficItems {
  /** The entries' texts, in file order (repeats kept). */
  readonly texts: readonly string[];
  /** The entries' values, in file order. */
  readonly values: unknown[];
  /** Each entry's text → its value: `known` for the next read. */
  readonly items: Map<string, unknown>;
}

export function readTrafficItems(
  text: string,
  fileName: string,
  known: ReadonlyMap<string, unknown>,
): TrafficItems | undefined {
  if (text.trim() === '' || nestingProblem(text)) return undefined;
  const json = isJsonFile(fileName);
  let texts: string[] | undefined;
  if (json) texts = splitJsonArray(text);
  else {
    const lines = plainLines(text);
    texts = lines && splitItems(lines);
  }
  if (!texts || texts.length === 0) return undefined;
  const misses = texts.filter((t) => !known.has(t)).length;
  let values: unknown[];
  if (misses > Math.max(MAX_ITEM_PARSES, texts.length / 8)) {
    // One parse of the whole text: duplicate keys (JSON too) and syntax, as the full path.
    const whole = parseYamlValue(text);
    if (!whole || !Array.isArray(whole.value) || whole.value.length !== texts.length) return;
    values = json ? (parseEachJson(texts) ?? []) : whole.value;
    if (values.length !== texts.length) return undefined;
  } else {
    values = [];
    for (const item of texts) {
      if (known.has(item)) {
        values.push(known.get(item));
        continue;
      }
      const parsed = parseYamlValue(item);
      if (!parsed) return undefined;
      if (json) {
        const value = parseEachJson([item]);
        if (!value) return undefined;
        values.push(value[0]);
      } else {
        if (!Array.isArray(parsed.value) || parsed.value.length !== 1) return undefined;
        values.push(parsed.value[0]);
      }
    }
  }
  return { texts, values, items: new Map(texts.map((t, i) => [t, values[i]])) };
}

/** JSON.parse of each text (the full path's values for a .json file); undefined on an error. */
function parseEachJson(texts: readonly string[]): unknown[] | undefined {
  try {
    return texts.map((t) => JSON.parse(t) as unknown);
  } catch {
    return undefined;
  }
}
