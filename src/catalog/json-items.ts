// A JSON catalog split into the texts of its service entries, so that only entries whose text
// changed need parsing and validating (incremental-parse.ts): `JSON.parse` of a 10,000-service
// file and keying every entry by its re-stringified JSON took most of a change's parse.
// Only a top-level object with `services` (an array) and optionally `gateways`, each key once,
// is split; anything else returns undefined and the caller parses the whole text, so what is
// accepted and every error message stay the same.
import { MAX_DOCUMENT_NESTING } from './load-document.js';

export interface JsonCatalogItems {
  /** Each service entry's text, in file order. */
  readonly services: readonly string[];
  /** The text of the `gateways` value, if the key is there. */
  readonly gateways?: string;
}

const QUOTE = 34; // "
const BACKSLASH = 92;
const COMMA = 44;
const COLON = 58;
const OPEN_ARRAY = 91; // [
const CLOSE_ARRAY = 93; // ]
const OPEN_OBJECT = 123; // {
const CLOSE_OBJECT = 125; // }

const isSpace = (c: number) => c === 32 || c === 10 || c === 13 || c === 9;

export function splitJsonCatalog(text: string): JsonCatalogItems | undefined {
  let i = 0;
  const n = text.length;
  const ws = () => {
    while (i < n && isSpace(text.charCodeAt(i))) i++;
  };
  /** Past a string starting at i (a quote); false if unterminated. */
  const string = (): boolean => {
    for (i++; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) {
        i++;
        return true;
      }
    }
    return false;
  };
  /**
   * Past one value starting at i; with `items`, the value must be an array whose elements'
   * texts are pushed. False when it is not well bracketed or nested too deep (the full parse
   * then says what is wrong).
   */
  const value = (items?: string[]): boolean => {
    const first = text.charCodeAt(i);
    if (items && first !== OPEN_ARRAY) return false;
    if (first === QUOTE) return string();
    if (first !== OPEN_ARRAY && first !== OPEN_OBJECT) {
      while (i < n) {
        const c = text.charCodeAt(i);
        if (c === COMMA || c === CLOSE_OBJECT || c === CLOSE_ARRAY || isSpace(c)) break;
        i++;
      }
      return true;
    }
    // Depth 1 is the document's own object.
    let depth = 1;
    let start = i + 1;
    for (; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c === QUOTE) {
        if (!string()) return false;
        i--;
      } else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
        if (++depth > MAX_DOCUMENT_NESTING) return false;
      } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) {
        if (--depth === 1) {
          if (items) {
            const last = text.slice(start, i).trim();
            if (last !== '') items.push(last);
            else if (items.length > 0) return false; // a trailing comma
          }
          i++;
          return true;
        }
      } else if (c === COMMA && depth === 2 && items) {
        const item = text.slice(start, i).trim();
        if (item === '') return false;
        items.push(item);
        start = i + 1;
      }
    }
    return false;
  };

  ws();
  if (text.charCodeAt(i) !== OPEN_OBJECT) return undefined;
  i++;
  let services: string[] | undefined;
  let gateways: string | undefined;
  ws();
  if (text.charCodeAt(i) === CLOSE_OBJECT) return undefined; // no services: the full parse
  for (;;) {
    ws();
    if (text.charCodeAt(i) !== QUOTE) return undefined;
    const keyStart = i;
    if (!string()) return undefined;
    const key = text.slice(keyStart, i);
    ws();
    if (text.charCodeAt(i) !== COLON) return undefined;
    i++;
    ws();
    if (key === '"services"' && services === undefined) {
      services = [];
      if (!value(services)) return undefined;
    } else if (key === '"gateways"' && gateways === undefined) {
      const start = i;
      if (!value()) return undefined;
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
    return { services, ...(gateways !== undefined ? { gateways } : {}) };
  }
}
