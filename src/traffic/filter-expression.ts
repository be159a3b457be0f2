// Consul's filter expressions (go-bexpr), the subset a service-resolver's Subsets[].Filter uses
// over an instance's Service.Tags and Service.Meta:
//   Service.Meta.version == v2            "v2" in Service.Tags
//   Service.Tags contains canary          Service.Meta["team-id"] != `a b`
//   Service.Meta.version != v1 and not ("canary" in Service.Tags)
// Operators: == != in, not in, contains, not contains, is empty, is not empty, and, or, not,
// parentheses. Values are "double-quoted" (JSON escapes), `raw`, or bare words (v2, 1.0.3).
// A missing Meta key behaves as in go-bexpr ≥ 0.1.12 (hashicorp/go-bexpr#38): == is false,
// != true, contains / in false, is empty true (and each negation the opposite). Other selectors (Node.Meta, Service.ID, ...) are
// rejected at compile time: lucid-mesh subsets are evaluated from tags and meta only.
// Hand-written: no maintained JavaScript bexpr exists, and the grammar is a page.

export interface FilterInstance {
  readonly tags: readonly string[];
  readonly meta: Readonly<Record<string, string>>;
}

export type FilterPredicate = (instance: FilterInstance) => boolean;

export class FilterSyntaxError extends Error {
  constructor(
    message: string,
    /** 1-based character position in the expression. */
    readonly position: number,
  ) {
    super(message);
    this.name = 'FilterSyntaxError';
  }
}

type Token =
  | { readonly type: 'word' | 'string'; readonly text: string; readonly at: number }
  | { readonly type: 'op'; readonly text: '==' | '!=' | '(' | ')' | '[' | ']'; readonly at: number }
  | { readonly type: 'end'; readonly text: ''; readonly at: number };

const WORD = /[A-Za-z0-9_.\-/:]+/y;
const KEYWORDS = new Set(['and', 'or', 'not', 'in', 'contains', 'is', 'empty']);

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const two = text.slice(i, i + 2);
    if (two === '==' || two === '!=') {
      tokens.push({ type: 'op', text: two, at: i + 1 });
      i += 2;
    } else if ('()[]'.includes(c)) {
      tokens.push({ type: 'op', text: c as '(' | ')' | '[' | ']', at: i + 1 });
      i++;
    } else if (c === '"') {
      const m = /"(?:[^"\\\n]|\\.)*"/y;
      m.lastIndex = i;
      const found = m.exec(text);
      if (!found) throw new FilterSyntaxError(`unterminated string at position ${i + 1}`, i + 1);
      let value: string;
      try {
        value = JSON.parse(found[0]) as string;
      } catch {
        throw new FilterSyntaxError(`invalid escape in string at position ${i + 1}`, i + 1);
      }
      tokens.push({ type: 'string', text: value, at: i + 1 });
      i += found[0].length;
    } else if (c === '`') {
      const end = text.indexOf('`', i + 1);
      if (end < 0) throw new FilterSyntaxError(`unterminated string at position ${i + 1}`, i + 1);
      tokens.push({ type: 'string', text: text.slice(i + 1, end), at: i + 1 });
      i = end + 1;
    } else {
      WORD.lastIndex = i;
      const found = WORD.exec(text);
      if (!found) {
        throw new FilterSyntaxError(
          `unexpected character ${JSON.stringify(c)} at position ${i + 1}`,
          i + 1,
        );
      }
      tokens.push({ type: 'word', text: found[0], at: i + 1 });
      i += found[0].length;
    }
  }
  tokens.push({ type: 'end', text: '', at: text.length + 1 });
  return tokens;
}

/** What a selector reads from an instance: the tag list, the meta map, or one meta value. */
type Selector =
  | { readonly kind: 'tags' }
  | { readonly kind: 'meta' }
  | { readonly kind: 'metaKey'; readonly key: string };

function describeToken(t: Token): string {
  return t.type === 'end' ? 'end of expression' : JSON.stringify(t.text);
}

class Parser {
  private i = 0;
  constructor(private readonly tokens: readonly Token[]) {}

  private peek(offset = 0): Token {
    return this.tokens[Math.min(this.i + offset, this.tokens.length - 1)] as Token;
  }

  private next(): Token {
    const t = this.peek();
    if (this.i < this.tokens.length - 1) this.i++;
    return t;
  }

  private isWord(text: string, offset = 0): boolean {
    const t = this.peek(offset);
    return t.type === 'word' && t.text === text;
  }

  private fail(expected: string, t = this.peek()): never {
    throw new FilterSyntaxError(
      `expected ${expected} at position ${t.at}, got ${describeToken(t)}`,
      t.at,
    );
  }

  parse(): FilterPredicate {
    const predicate = this.or();
    if (this.peek().type !== 'end') this.fail('"and", "or" or the end of the expression');
    return predicate;
  }

  private or(): FilterPredicate {
    let left = this.and();
    while (this.isWord('or')) {
      this.next();
      const a = left;
      const b = this.and();
      left = (x) => a(x) || b(x);
    }
    return left;
  }

  private and(): FilterPredicate {
    let left = this.unary();
    while (this.isWord('and')) {
      this.next();
      const a = left;
      const b = this.unary();
      left = (x) => a(x) && b(x);
    }
    return left;
  }

  private unary(): FilterPredicate {
    if (this.isWord('not')) {
      this.next();
      const inner = this.unary();
      return (x) => !inner(x);
    }
    const t = this.peek();
    if (t.type === 'op' && t.text === '(') {
      this.next();
      const inner = this.or();
      const close = this.peek();
      if (close.type !== 'op' || close.text !== ')') this.fail('")"');
      this.next();
      return inner;
    }
    return this.match();
  }

  private match(): FilterPredicate {
    // `value in Selector` / `value not in Selector`, else `Selector <operator> ...`.
    const valueFirst =
      this.peek().type === 'string' ||
      this.isWord('in', 1) ||
      (this.isWord('not', 1) && this.isWord('in', 2));
    if (valueFirst) {
      const value = this.value('a value or a selector');
      const negate = this.isWord('not');
      if (negate) this.next();
      if (!this.isWord('in')) this.fail('"in" or "not in"');
      this.next();
      const test = contains(this.selector(), value);
      return negate ? (x) => !test(x) : test;
    }
    const selector = this.selector();
    const at = this.peek();
    const op = this.next();
    if (op.type === 'op' && (op.text === '==' || op.text === '!=')) {
      if (selector.kind !== 'metaKey') {
        throw new FilterSyntaxError(
          `${JSON.stringify(op.text)} at position ${op.at} compares one value, but ${selectorName(selector)} ` +
            'is a collection (use contains, in or is empty)',
          op.at,
        );
      }
      const value = this.value(`a value after ${JSON.stringify(op.text)}`);
      const key = selector.key;
      const equal: FilterPredicate = (x) => metaValue(x, key) === value;
      return op.text === '==' ? equal : (x) => !equal(x);
    }
    if (op.type === 'word' && op.text === 'contains') {
      return contains(selector, this.value('a value after "contains"'));
    }
    if (op.type === 'word' && op.text === 'not' && this.isWord('contains')) {
      this.next();
      const test = contains(selector, this.value('a value after "not contains"'));
      return (x) => !test(x);
    }
    if (op.type === 'word' && op.text === 'is') {
      const negate = this.isWord('not');
      if (negate) this.next();
      if (!this.isWord('empty')) this.fail(negate ? '"empty"' : '"empty" or "not empty"');
      this.next();
      const test = isEmpty(selector);
      return negate ? (x) => !test(x) : test;
    }
    return this.fail(
      `==, !=, contains, not contains, is empty or is not empty after ${selectorName(selector)}`,
      at,
    );
  }

  private value(expected: string): string {
    const t = this.peek();
    if (t.type === 'string' || (t.type === 'word' && !KEYWORDS.has(t.text))) {
      this.next();
      return t.text;
    }
    return this.fail(expected);
  }

  private selector(): Selector {
    const t = this.peek();
    if (t.type !== 'word' || KEYWORDS.has(t.text))
      this.fail('a selector (Service.Tags or Service.Meta)');
    this.next();
    if (t.text === 'Service.Tags') return { kind: 'tags' };
    if (t.text === 'Service.Meta') {
      const open = this.peek();
      if (open.type !== 'op' || open.text !== '[') return { kind: 'meta' };
      this.next();
      const key = this.peek();
      if (key.type !== 'string') this.fail('a quoted key after "Service.Meta["');
      this.next();
      const close = this.peek();
      if (close.type !== 'op' || close.text !== ']') this.fail('"]"');
      this.next();
      return { kind: 'metaKey', key: key.text };
    }
    if (t.text.startsWith('Service.Meta.') && t.text.length > 'Service.Meta.'.length) {
      return { kind: 'metaKey', key: t.text.slice('Service.Meta.'.length) };
    }
    throw new FilterSyntaxError(
      `unknown selector ${JSON.stringify(t.text)} at position ${t.at} ` +
        '(lucid-mesh filters on Service.Tags, Service.Meta and Service.Meta.<key>)',
      t.at,
    );
  }
}

function selectorName(s: Selector): string {
  if (s.kind === 'tags') return 'Service.Tags';
  return s.kind === 'meta' ? 'Service.Meta' : `Service.Meta[${JSON.stringify(s.key)}]`;
}

/** bexpr's `in`/`contains`: list membership, map key presence, or substring of a string. */
function contains(selector: Selector, value: string): FilterPredicate {
  if (selector.kind === 'tags') return (x) => x.tags.includes(value);
  if (selector.kind === 'meta') return (x) => Object.hasOwn(x.meta, value);
  const key = selector.key;
  return (x) => metaValue(x, key)?.includes(value) ?? false;
}

function isEmpty(selector: Selector): FilterPredicate {
  if (selector.kind === 'tags') return (x) => x.tags.length === 0;
  if (selector.kind === 'meta') return (x) => Object.keys(x.meta).length === 0;
  const key = selector.key;
  return (x) => !metaValue(x, key);
}

/** Own keys only: a key named "constructor" must not read Object.prototype. */
function metaValue(x: FilterInstance, key: string): string | undefined {
  return Object.hasOwn(x.meta, key) ? x.meta[key] : undefined;
}

/**
 * Compiles a filter expression; the empty expression matches every instance.
 * @throws FilterSyntaxError naming the position (1-based) and the offending token
 */
export function compileFilter(text: string): FilterPredicate {
  if (text.trim() === '') return () => true;
  return new Parser(tokenize(text)).parse();
}
