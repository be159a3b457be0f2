// A proxy's own resources (its inbound listener, local app cluster, ...) are the same message
// for every instance of a service but for the instance's id ("inbound|web-1", "inbound|web-2").
// Protobuf-encoding each of them (protobufjs fromObject + encode) was the largest single cost of
// a cold storm (W9 declared, delta: ~1.2 s of 8.7 s on the control plane's thread for 30,000
// own resources). Here the first instance's bytes are kept as the template of its siblings: a
// sibling whose JSON equals it with the id swapped gets those bytes with the id swapped.
//
// That is exact when every occurrence of the id in the JSON is a verbatim part of a string (a
// string field or a map key, which protobuf copies as they are) and the two ids are as long in
// UTF-8 (no length prefix changes). So: ids of URL-safe characters with a letter in them (never
// part of a number, never escaped in JSON), equally long, and the bytes must hold exactly as many
// occurrences as the JSON does; anything else is encoded as usual.
import type { ResourceKind } from '../protos/envoy.js';
import { contentHash } from './encoded-resource.js';
import type { Pieces } from './shared-segments.js';

/** What a template is looked up by: a hash of the JSON with the id taken out. */
type TemplateKey = string;

/** What a template is read from: an encoded own resource (lazy-resource.ts). */
export interface TemplateSource {
  readonly version: string;
  readonly value: Uint8Array;
  /** Its SotW or delta entry as kept (split around its id and version), if it has one. */
  keptPieces(entry: 'sotw' | 'delta'): Pieces | undefined;
}

interface Template {
  readonly id: string;
  /** Occurrences of the id in the JSON (the same for every sibling: the rest is equal). */
  readonly count: number;
  /** The resource whose message bytes are the template (weakly: it goes with its proxy). */
  readonly source: WeakRef<TemplateSource>;
}

const ID = /^[A-Za-z0-9._:-]{4,}$/;
const HAS_LETTER = /[A-DF-Za-df-z_:]/; // not a digit, sign, point or exponent: never in a number

/** Templates kept at most (a few per service); past it the table starts again. */
const MAX_TEMPLATES = 16_384;
const templates = new Map<TemplateKey, Template>();

/** Own resources made from a sibling (`pieces`: of them, straight from its kept pieces). */
export const siblingCounters = { reused: 0, encoded: 0, pieces: 0 };

/** The instance's part of an own resource's name ("inbound|web-1" → "web-1"), if usable. */
function instanceIdOf(name: string): string | undefined {
  const id = name.slice(name.indexOf('|') + 1);
  return ID.test(id) && HAS_LETTER.test(id) ? id : undefined;
}

/**
 * What `name` (an own resource of `kind` whose JSON is `json`) shares a template with its
 * siblings by: a hash of the JSON with the id taken out, or undefined when it has no usable
 * id. Made where the JSON is made anyway (the encoder versions by it), not stringified again.
 */
export function templateKeyOf(kind: ResourceKind, name: string, json: string): string | undefined {
  const id = instanceIdOf(name);
  if (!id) return undefined;
  // '\u0000' never appears raw in JSON.stringify's output: the parts cannot run together.
  const parts = json.split(id);
  if (parts.length < 2) return undefined;
  return contentHash(`${kind}\u0000${parts.join('\u0000')}`);
}

/** Occurrences of `needle` in `bytes`, left to right, not overlapping. */
function occurrences(bytes: Buffer, needle: Buffer): number[] {
  const at: number[] = [];
  for (let i = bytes.indexOf(needle); i >= 0; i = bytes.indexOf(needle, i + needle.length)) {
    at.push(i);
  }
  return at;
}

/**
 * The message bytes of `name` (an own resource with template key `key`) made from a
 * sibling's, or undefined (encode it, then offer it with remember()).
 */
export function fromSibling(name: string, key: string): Uint8Array | undefined {
  const template = templates.get(key);
  const source = template?.source.deref();
  if (!template || !source) return undefined;
  const id = instanceIdOf(name);
  if (!id || template.id.length !== id.length) return undefined;
  const from = Buffer.from(template.id, 'latin1');
  const bytes = Buffer.from(source.value);
  const at = occurrences(bytes, from);
  if (at.length !== template.count) return undefined;
  for (const i of at) bytes.write(id, i, 'latin1');
  siblingCounters.reused++;
  return bytes;
}

/**
 * A sibling's entry of one protocol (`which`) as it keeps it, to be joined with `name`'s id
 * and `version` instead of copying its bytes, swapping the id, wrapping them in an entry and
 * splitting that again. Only when the pieces' variable slots are exactly where the id and the
 * version go: the id as often as the JSON holds it (once more in a delta entry's name), the
 * version once in a delta entry and never in a SotW one, ids and versions as long as the
 * sibling's (lengths inside the bytes stay right). The same guarantee as fromSibling's count.
 */
export function siblingPieces(
  name: string,
  version: string,
  key: string,
  which: 'sotw' | 'delta',
): Pieces | undefined {
  const template = templates.get(key);
  const source = template?.source.deref();
  if (!template || !source || source.version.length !== version.length) return undefined;
  const id = instanceIdOf(name);
  if (!id || template.id.length !== id.length) return undefined;
  const pieces = source.keptPieces(which);
  if (!pieces) return undefined;
  let ids = 0;
  let versions = 0;
  for (const p of pieces) {
    if (p === 0) ids++;
    else if (p === 1) versions++;
  }
  const delta = which === 'delta' ? 1 : 0;
  if (ids !== template.count + delta || versions !== delta) return undefined;
  siblingCounters.reused++;
  siblingCounters.pieces++;
  return pieces;
}

/** Offers an encoded own resource (JSON `json`, key `key`) as the template of its siblings. */
export function remember(name: string, key: string, json: string, resource: TemplateSource): void {
  const id = instanceIdOf(name);
  if (!id || templates.get(key)?.source.deref()) return;
  if (templates.size >= MAX_TEMPLATES) templates.clear();
  const count = json.split(id).length - 1;
  templates.set(key, { id, count, source: new WeakRef(resource) });
  siblingCounters.encoded++;
}

/** Templates kept now (tests). */
export function siblingTemplateCount(): number {
  return templates.size;
}
