// A proxy's own resources differ from one instance to the next only where they name it: the
// inbound listener of `web-1` and of `web-2` are the same bytes around "web-1" and "web-2" (and,
// in a delta entry, around the version). Kept as the pieces between those names, interned,
// 10,000 instances share one copy of the rest (~1 KB an instance; bench --heap-snapshot, W9).
// The split is exact whatever the bytes are: joining the pieces gives them back.

/** A run of bytes (one character per byte) shared by every resource that has it. */
class Segment {
  constructor(readonly text: string) {}
}

/** Each piece: a shared run of bytes, or the index of a variable string. */
export type Pieces = readonly (Segment | number)[];

// Interned while some resource holds the segment: an entry goes when its segment is collected.
const live = new Map<string, WeakRef<Segment>>();
const gone = new FinalizationRegistry<string>((text) => {
  if (live.get(text)?.deref() === undefined) live.delete(text);
});

function intern(text: string): Segment {
  const found = live.get(text)?.deref();
  if (found) return found;
  const segment = new Segment(text);
  live.set(text, new WeakRef(segment));
  gone.register(segment, text);
  return segment;
}

/** Variables shorter than this are not split on (a few bytes are cheaper kept in place). */
const MIN_VARIABLE = 4;

/**
 * `bytes` as shared pieces around every occurrence of `variables` (UTF-8 strings), or
 * undefined when none occurs.
 */
export function splitOn(bytes: Buffer, variables: readonly string[]): Pieces | undefined {
  const text = bytes.toString('latin1');
  const needles = variables.map((v) => Buffer.from(v, 'utf8').toString('latin1'));
  const pieces: (Segment | number)[] = [];
  let at = 0;
  for (;;) {
    let next = -1;
    let which = -1;
    needles.forEach((needle, i) => {
      if (needle.length < MIN_VARIABLE) return;
      const found = text.indexOf(needle, at);
      if (found >= 0 && (next < 0 || found < next)) {
        next = found;
        which = i;
      }
    });
    if (next < 0) break;
    // Each piece its own string (a slice of `text` would keep all of it alive).
    if (next > at) pieces.push(intern(bytes.toString('latin1', at, next)));
    pieces.push(which);
    at = next + needles[which]!.length;
  }
  if (pieces.length === 0) return undefined;
  if (at < text.length) pieces.push(intern(bytes.toString('latin1', at)));
  return pieces;
}

/** The bytes `pieces` were split from, with the same `variables`. */
export function joinPieces(pieces: Pieces, variables: readonly string[]): Buffer {
  const values = variables.map((v) => Buffer.from(v, 'utf8'));
  let size = 0;
  for (const p of pieces) size += typeof p === 'number' ? values[p]!.length : p.text.length;
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const p of pieces) {
    if (typeof p === 'number') at += values[p]!.copy(out, at);
    else at += out.write(p.text, at, 'latin1');
  }
  return out;
}

/** Segments interned now (tests). */
export function sharedSegmentCount(): number {
  return live.size;
}
