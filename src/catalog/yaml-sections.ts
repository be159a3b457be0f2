// A plain YAML catalog split into the texts of its top-level sections and of each item of a
// block sequence, so that only the items whose text changed need parsing. The yaml parser
// takes ~0.6–1 s for a 1,000-service catalog on this machine; an edit changes a few lines.
//
// Only the plain shape editors and generators write is split: top-level `key:` lines at column
// 0, block sequence items (`- `) at one indentation. Anything else (anchors, aliases, tags,
// tabs, several documents, directives, flow collections at the top) returns undefined and the
// caller parses the whole text, so what is accepted and every error message stay the same.
import { parseDocument } from 'yaml';
import { trimJsonSpace } from './json-items.js';
import { isJsonSpace } from './load-document.js';

/** YAML's anchors (&), aliases (*) and tags (!) where a node may start. */
const NODE_PROPERTY = /(^|[\s[{,:-])[&*!]\S/m;
const TOP_KEY = /^([A-Za-z_][\w-]*):[ ]*(#.*)?$/;
const ITEM = /^( *)-( |$)/;
/**
 * Whitespace other than space and newline: tabs, CR, and what JavaScript's trim() removes but
 * YAML does not count as space (no-break space, BOM, line separators). The line tests below
 * use trim(), so text with any of these is left to the whole parse.
 */
const OTHER_SPACE = /[^\S \n]/;

/** Each top-level key's text (the `key:` line through the line before the next key). */
export function splitTopLevel(text: string): Map<string, string[]> | undefined {
  const lines = plainLines(text);
  if (!lines) return undefined;
  const sections = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of lines) {
    const top = line.length > 0 && line[0] !== ' ' && line[0] !== '#';
    if (top && !(current && ITEM.test(line))) {
      const key = TOP_KEY.exec(line)?.[1];
      if (!key || sections.has(key)) return undefined;
      current = [];
      sections.set(key, current);
      continue;
    }
    if (!current) {
      if (line.trim() !== '' && !line.trimStart().startsWith('#')) return undefined;
      continue;
    }
    current.push(line);
  }
  return sections;
}

/**
 * The lines of a YAML text written plainly: no whitespace but spaces and newlines, no
 * anchors, aliases, tags, document markers or directives. Undefined otherwise.
 */
export function plainLines(text: string): string[] | undefined {
  if (OTHER_SPACE.test(text) || NODE_PROPERTY.test(text)) return undefined;
  const lines = text.split('\n');
  for (const line of lines) {
    if (line.startsWith('---') || line.startsWith('...') || line.startsWith('%')) return undefined;
  }
  return lines;
}

/**
 * The texts of the elements of a JSON array (the whole text), each as written; undefined when
 * the text is not one array (the caller then parses it whole and reports what is wrong).
 */
export function splitJsonArray(text: string): string[] | undefined {
  let i = 0;
  const ws = () => {
    while (i < text.length && isJsonSpace(text.charCodeAt(i))) i++;
  };
  ws();
  if (text[i] !== '[') return undefined;
  i++;
  const items: string[] = [];
  let depth = 0;
  let start = i;
  for (; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
    } else if (c === '[' || c === '{') depth++;
    else if ((c === ']' || c === '}') && depth > 0) depth--;
    else if (c === ',' && depth === 0) {
      items.push(trimJsonSpace(text.slice(start, i)));
      start = i + 1;
    } else if (c === ']') {
      const last = trimJsonSpace(text.slice(start, i));
      if (last !== '' || items.length > 0) items.push(last);
      i++;
      ws();
      return i === text.length && items.every((t) => t !== '') ? items : undefined;
    }
  }
  return undefined;
}

/** The texts of a block sequence's items, each still at its indentation; undefined if not one. */
export function splitItems(lines: readonly string[]): string[] | undefined {
  const items: string[][] = [];
  let indent: number | undefined;
  for (const line of lines) {
    const content = line.trimStart();
    if (content === '' || content.startsWith('#')) {
      items.at(-1)?.push(line);
      continue;
    }
    const depth = line.length - content.length;
    const item = ITEM.exec(line);
    indent ??= item ? depth : undefined;
    if (indent === undefined) return undefined;
    if (item && depth === indent) items.push([line]);
    else if (depth > indent && items.length > 0) items.at(-1)!.push(line);
    else return undefined;
  }
  return items.map((l) => l.join('\n'));
}

/** One YAML text's value, or undefined on any error (the caller then parses the whole file). */
export function parseYamlValue(text: string): { value: unknown } | undefined {
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0 || doc.warnings.length > 0) return undefined;
  try {
    return { value: doc.toJS({ maxAliasCount: 0 }) };
  } catch {
    return undefined;
  }
}
