// Catalog file text → validated Catalog. `.json` files are parsed as JSON, everything else as
// YAML. Every failure is one CatalogDocumentError whose message starts with the file name, e.g.
//   catalog.yaml: services[0].instances[0].port: expected integer 1-65535, got "80a"
//   catalog.yaml: line 3, column 5: Map keys must be unique
// so a single log line says what is wrong and where.
import { LineCounter, parseDocument } from 'yaml';
import type { Catalog } from './model.js';
import { CatalogValidationError, parseCatalog } from './schema.js';

/** A document (file or key) that cannot be used: every problem, prefixed with where it came from. */
export class DocumentError extends Error {
  override readonly name: string = 'DocumentError';
  constructor(
    /** The file name (or key) the text came from: the prefix of the message. */
    readonly fileName: string,
    /** One line per problem: syntax errors with line/column, or schema problems with the field path. */
    readonly problems: readonly string[],
    options?: { cause?: unknown },
  ) {
    super(`${fileName}: ${problems.join('; ')}`, options);
  }
}

export class CatalogDocumentError extends DocumentError {
  override readonly name: string = 'CatalogDocumentError';
}

/**
 * Parses and validates the text of a catalog file. `fileName` picks the syntax (`.json` → JSON,
 * anything else → YAML) and prefixes every error message.
 * @throws CatalogDocumentError
 */
export function parseCatalogText(text: string, fileName: string): Catalog {
  return validateCatalogDocument(readCatalogDocument(text, fileName), fileName);
}

/**
 * The text of a catalog file as a plain value, not yet validated (refused when empty).
 * @throws CatalogDocumentError
 */
export function readCatalogDocument(text: string, fileName: string): unknown {
  const tooDeep = nestingProblem(text);
  if (tooDeep) throw new CatalogDocumentError(fileName, [tooDeep]);
  const document =
    text.trim() === ''
      ? null
      : isJsonFile(fileName)
        ? parseJson(text, fileName)
        : parseYaml(text, fileName);
  if (document === null || document === undefined) {
    // An empty file is far more likely a half-finished write or an accident than an intent to
    // remove every service; an empty catalog has to be spelled out.
    const empty = isJsonFile(fileName) ? '{"services": []}' : 'services: []';
    throw new CatalogDocumentError(fileName, [
      `the document is empty (write \`${empty}\` for an empty catalog)`,
    ]);
  }
  return document;
}

/**
 * Validates a document read by readCatalogDocument.
 * @throws CatalogDocumentError
 */
export function validateCatalogDocument(document: unknown, fileName: string): Catalog {
  try {
    return parseCatalog(document);
  } catch (err) {
    if (err instanceof CatalogValidationError) {
      throw new CatalogDocumentError(fileName, err.problems, { cause: err });
    }
    throw err;
  }
}

export function isJsonFile(fileName: string): boolean {
  return fileName.toLowerCase().endsWith('.json');
}

function parseYaml(text: string, fileName: string): unknown {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => {
      const { line, col } = lineCounter.linePos(e.pos[0]);
      return `line ${line}, column ${col}: ${e.message}`;
    });
    throw new CatalogDocumentError(fileName, problems, { cause: doc.errors[0] });
  }
  try {
    return doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    // An unresolved alias or too many of them: yaml throws its own errors here.
    throw new CatalogDocumentError(fileName, [(err as Error).message], { cause: err });
  }
}

/** Deeper than any catalog, policy or traffic document needs to be. */
export const MAX_DOCUMENT_NESTING = 64;

/**
 * A document nested deeper than MAX_DOCUMENT_NESTING in flow brackets (`[`, `{`, JSON's only
 * kind), found before any parser recurses into it: the yaml parser overflows its stack on
 * ~1,000 levels and can then abort the process on the next parse (found by fuzzing).
 * Brackets inside quoted strings do not count.
 */
export function nestingProblem(text: string): string | undefined {
  let depth = 0;
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '[' || c === '{') {
      if (++depth > MAX_DOCUMENT_NESTING) {
        return `nested deeper than ${MAX_DOCUMENT_NESTING} levels of [ ] / { } (at offset ${i})`;
      }
    } else if ((c === ']' || c === '}') && depth > 0) depth--;
  }
  return undefined;
}

function parseJson(text: string, fileName: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const position = /at position (\d+)/.exec(message);
    const offset = position ? Number(position[1]) : findJsonErrorOffset(text);
    // The position is restated as line/column below; Node ≥ 22 also appends "(line N column M)".
    const detail = message
      .replace(/ at position \d+/, '')
      .replace(/\s*\(line \d+ column \d+\)$/, '');
    const where = offset === undefined ? '' : `${lineColumn(text, offset)}: `;
    throw new CatalogDocumentError(fileName, [`${where}invalid JSON: ${detail}`], { cause: err });
  }
}

function lineColumn(text: string, offset: number): string {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return `line ${line}, column ${offset - lineStart + 1}`;
}

/**
 * JSON's own whitespace (space, tab, LF, CR) at `c`, a char code. Not what String#trim takes:
 * that includes a no-break space, which JSON.parse refuses, so an entry trimmed with it would
 * be accepted on an edit and refused by the whole text's parse at the next start.
 */
export const isJsonSpace = (c: number): boolean => c === 32 || c === 10 || c === 13 || c === 9;

/**
 * Finds the offset of the first JSON syntax error, for engines whose JSON.parse messages carry
 * no position (Node 20: `Unexpected token '}', "..." is not valid JSON`). Undefined = no error
 * found (should not happen when JSON.parse failed).
 */
export function findJsonErrorOffset(text: string): number | undefined {
  let i = 0;
  class Fail {
    constructor(readonly at: number) {}
  }
  const ws = () => {
    while (i < text.length && isJsonSpace(text.charCodeAt(i))) i++;
  };
  const expect = (ch: string) => {
    if (text[i] !== ch) throw new Fail(i);
    i++;
  };
  const string = () => {
    expect('"');
    for (;;) {
      const c = text.charCodeAt(i);
      if (Number.isNaN(c) || c < 0x20) throw new Fail(i);
      if (c === 0x22) {
        i++;
        return;
      }
      if (c === 0x5c) {
        const e = text[i + 1];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) throw new Fail(i);
          i += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2;
        else throw new Fail(i);
      } else i++;
    }
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        string();
        ws();
        expect(':');
        value();
        ws();
        if (text[i] === ',') i++;
        else return expect('}');
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value();
        ws();
        if (text[i] === ',') i++;
        else return expect(']');
      }
    }
    if (c === '"') return string();
    const rest = text.slice(i);
    const m = /^(?:true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(rest);
    if (!m) throw new Fail(i);
    i += m[0].length;
  };
  try {
    value();
    ws();
    return i < text.length ? i : undefined;
  } catch (err) {
    // Anything else (e.g. a stack overflow on absurd nesting): no position to offer.
    return err instanceof Fail ? err.at : undefined;
  }
}
