// A JSON catalog split into its service entries, so that only entries whose text changed need
// parsing and validating (incremental-parse.ts): `JSON.parse` of a 10,000-service file and
// keying every entry by its re-stringified JSON took most of a change's parse.
// Only a top-level object with `services` (an array) and optionally `gateways`, each key once,
// is split; anything else returns undefined and the caller parses the whole text, so what is
// accepted and every error message stay the same.
//
// An edit usually touches one entry of thousands. resplitJsonCatalog finds the text the edit
// left alone at both ends (native string comparisons, ~1 ms for 3 MB) and scans only the
// entries in between: scanning the whole 3 MB text character by character was ~19 ms a change
// at 10,000 services. Its result is exactly splitJsonCatalog's for the new text (a property
// test edits texts at random to check it).
import { MAX_DOCUMENT_NESTING, isJsonSpace } from './load-document.js';

export interface JsonCatalogSplit {
  readonly text: string;
  /** Where each service entry starts and ends in `text`, in file order. */
  readonly starts: readonly number[];
  readonly ends: readonly number[];
  /** Just past the services array's `[`, and the index of its `]`. */
  readonly open: number;
  readonly close: number;
  /** The text of the `gateways` value, if the key is there. */
  readonly gateways?: string;
}

/** A resplit: the new split, and how many entries at its start and end are the old ones. */
export interface JsonResplit {
  readonly split: JsonCatalogSplit;
  readonly head: number;
  readonly tail: number;
}

const QUOTE = 34; // "
const BACKSLASH = 92;
const COMMA = 44;
const COLON = 58;
const OPEN_ARRAY = 91; // [
const CLOSE_ARRAY = 93; // ]
const OPEN_OBJECT = 123; // {
const CLOSE_OBJECT = 125; // }

/** `s` without JSON's whitespace at either end (isJsonSpace). */
export function trimJsonSpace(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && isJsonSpace(s.charCodeAt(a))) a++;
  while (b > a && isJsonSpace(s.charCodeAt(b - 1))) b--;
  return s.slice(a, b);
}

export function entryText(split: JsonCatalogSplit, i: number): string {
  return split.text.slice(split.starts[i], split.ends[i]);
}

/** Past the string whose opening quote is at `i`; -1 if it is not terminated. */
function endOfString(text: string, i: number): number {
  const n = text.length;
  for (i++; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === BACKSLASH) i++;
    else if (c === QUOTE) return i + 1;
  }
  return -1;
}

/**
 * Scans service entries from `from` (just past the array's `[` or an entry's `,`), pushing
 * each entry's bounds, up to the array's `]` (its index is returned) or, if the scan arrives
 * there at the start of an entry, to `stopAt` (returned). -1 when the entries are not well
 * formed or nest too deep (the full parse then says what is wrong).
 */
function scanEntries(
  text: string,
  from: number,
  starts: number[],
  ends: number[],
  stopAt = -1,
): number {
  const n = text.length;
  let depth = 0; // inside the current entry
  let start = from; // the current entry's first character, once one was seen
  let seen = false; // anything but whitespace since the last separator
  const close = (end: number) => {
    let e = end;
    while (e > start && isJsonSpace(text.charCodeAt(e - 1))) e--;
    starts.push(start);
    ends.push(e);
  };
  for (let i = from; i < n; i++) {
    const c = text.charCodeAt(i);
    if (!seen) {
      // Between entries (depth 0): where the old entries resume, if the scan is to stop there.
      if (i === stopAt) return i;
      if (isJsonSpace(c)) continue;
      // `[]`; after a separator (entries before it), a trailing comma.
      if (c === CLOSE_ARRAY) return starts.length === 0 ? i : -1;
      if (c === COMMA) return -1; // an empty entry
      seen = true;
      start = i;
    }
    if (c === QUOTE) {
      const end = endOfString(text, i);
      if (end < 0) return -1;
      i = end - 1;
    } else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      // The document's object and the services array are two levels already.
      if (++depth + 2 > MAX_DOCUMENT_NESTING) return -1;
    } else if (depth > 0 && (c === CLOSE_ARRAY || c === CLOSE_OBJECT)) {
      depth--;
    } else if (depth === 0 && c === COMMA) {
      close(i);
      seen = false;
    } else if (depth === 0 && c === CLOSE_ARRAY) {
      close(i);
      return i;
    }
  }
  return -1;
}

/** Past one value starting at i (not the services array); -1 if not well bracketed or too deep. */
function endOfValue(text: string, i: number): number {
  const n = text.length;
  const first = text.charCodeAt(i);
  if (first === QUOTE) return endOfString(text, i);
  if (first !== OPEN_ARRAY && first !== OPEN_OBJECT) {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === COMMA || c === CLOSE_OBJECT || c === CLOSE_ARRAY || isJsonSpace(c)) break;
      i++;
    }
    return i;
  }
  let depth = 1; // the document's own object
  for (; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = endOfString(text, i);
      if (end < 0) return -1;
      i = end - 1;
    } else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      if (++depth > MAX_DOCUMENT_NESTING) return -1;
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) {
      if (--depth === 1) return i + 1;
    }
  }
  return -1;
}

export function splitJsonCatalog(text: string): JsonCatalogSplit | undefined {
  let i = 0;
  const n = text.length;
  const ws = () => {
    while (i < n && isJsonSpace(text.charCodeAt(i))) i++;
  };
  ws();
  if (text.charCodeAt(i) !== OPEN_OBJECT) return undefined;
  i++;
  let services: { starts: number[]; ends: number[]; open: number; close: number } | undefined;
  let gateways: string | undefined;
  ws();
  if (text.charCodeAt(i) === CLOSE_OBJECT) return undefined; // no services: the full parse
  for (;;) {
    ws();
    if (text.charCodeAt(i) !== QUOTE) return undefined;
    const keyStart = i;
    i = endOfString(text, i);
    if (i < 0) return undefined;
    const key = text.slice(keyStart, i);
    ws();
    if (text.charCodeAt(i) !== COLON) return undefined;
    i++;
    ws();
    if (key === '"services"' && services === undefined) {
      if (text.charCodeAt(i) !== OPEN_ARRAY) return undefined;
      const open = i + 1;
      const starts: number[] = [];
      const ends: number[] = [];
      const close = scanEntries(text, open, starts, ends);
      if (close < 0) return undefined;
      services = { starts, ends, open, close };
      i = close + 1;
    } else if (key === '"gateways"' && gateways === undefined) {
      const start = i;
      i = endOfValue(text, i);
      if (i < 0) return undefined;
      gateways = text.slice(start, i);
    } else {
      // Another key, a repeated one, or an escaped spelling: the full parse decides.
      return undefined;
    }
    ws();
    const c = text.charCodeAt(i);
    i++;
    if (c === COMMA) continue;
    if (c !== CLOSE_OBJECT) return undefined;
    ws();
    if (i !== n || !services) return undefined;
    return { text, ...services, ...(gateways !== undefined ? { gateways } : {}) };
  }
}

/**
 * The split of `text`, an edit of `prev.text`, scanning only what lies between the text the
 * edit left alone at either end. Undefined when that is not possible (the edit reaches outside
 * the services array's entries, or the entries scanned do not end where the old ones resume):
 * splitJsonCatalog(text) then decides.
 */
export function resplitJsonCatalog(prev: JsonCatalogSplit, text: string): JsonResplit | undefined {
  const old = prev.text;
  const count = prev.starts.length;
  const prefix = commonPrefix(old, text);
  if (prefix === old.length && prefix === text.length) {
    return { split: { ...prev, text }, head: count, tail: 0 };
  }
  const suffix = commonSuffix(old, text, Math.min(old.length, text.length) - prefix);
  const delta = text.length - old.length;
  // Entries kept at the start: each, and the separator after it, lie in the common prefix.
  let head = 0;
  let from = prev.open;
  if (from > prefix) return undefined; // the edit is before the entries
  while (head < count) {
    const sep = separatorAfter(old, prev.ends[head]!);
    if (sep < 0 || sep >= prefix) break;
    head++;
    from = sep + 1;
  }
  // Entries kept at the end: each starts in the common suffix (so does everything after it).
  const suffixStart = old.length - suffix;
  let firstTail = count;
  while (firstTail > head && prev.starts[firstTail - 1]! >= suffixStart) firstTail--;
  if (prev.close < suffixStart) return undefined; // the edit is after the entries
  const starts = prev.starts.slice(0, head);
  const ends = prev.ends.slice(0, head);
  const stopAt = firstTail < count ? prev.starts[firstTail]! + delta : -1;
  const end = scanEntries(text, from, starts, ends, stopAt);
  if (end < 0) return undefined;
  if (stopAt >= 0) {
    if (end !== stopAt) return undefined; // the entries ended before the old ones resume
    for (let k = firstTail; k < count; k++) {
      starts.push(prev.starts[k]! + delta);
      ends.push(prev.ends[k]! + delta);
    }
  } else if (end !== prev.close + delta) {
    return undefined;
  }
  const split: JsonCatalogSplit = {
    text,
    starts,
    ends,
    open: prev.open,
    close: prev.close + delta,
    ...(prev.gateways !== undefined ? { gateways: prev.gateways } : {}),
  };
  return { split, head, tail: count - firstTail };
}

/** The index of the `,` or `]` after an entry ending at `end`; -1 if something else follows. */
function separatorAfter(text: string, end: number): number {
  let i = end;
  while (i < text.length && isJsonSpace(text.charCodeAt(i))) i++;
  const c = text.charCodeAt(i);
  return c === COMMA ? i : -1;
}

const CHUNK = 4096;

/** Length of the common start of a and b: chunks compared natively, then characters. */
function commonPrefix(a: string, b: string): number {
  const max = Math.min(a.length, b.length);
  let i = 0;
  while (i + CHUNK <= max && a.slice(i, i + CHUNK) === b.slice(i, i + CHUNK)) i += CHUNK;
  while (i < max && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
}

/** Length of the common end of a and b, at most `max`. */
function commonSuffix(a: string, b: string, max: number): number {
  let k = 0;
  const al = a.length;
  const bl = b.length;
  while (k + CHUNK <= max && a.slice(al - k - CHUNK, al - k) === b.slice(bl - k - CHUNK, bl - k)) {
    k += CHUNK;
  }
  while (k < max && a.charCodeAt(al - k - 1) === b.charCodeAt(bl - k - 1)) k++;
  return k;
}
