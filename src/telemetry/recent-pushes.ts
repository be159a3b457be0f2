// The last pushes of every stream in one table of columns (typed arrays for the numbers, one
// array per reference field), each stream's pushes chained newest to oldest. An object per push
// and a list and index object per stream cost ~1 KB a proxy at 10,000 proxies (bench
// --heap-snapshot, W9); a row here is ~80 B and a stream is one Map entry. Freed rows are
// reused; the columns grow by a quarter when full and go back to their first size when the
// last stream is forgotten (otherwise they stay at their high-water mark).
import { RESOURCE_KINDS, type ResourceKind } from '../protos/envoy.js';

export type Outcome = 'pending' | 'acked' | 'nacked';
const OUTCOMES: readonly Outcome[] = ['pending', 'acked', 'nacked'];

/** One push as written and read back (the caller has already cut its name lists). */
export interface PushRow {
  readonly at: number;
  readonly kind: ResourceKind;
  readonly version: string;
  readonly nonce: string;
  readonly resources: number;
  readonly bytes: number;
  readonly upserted: readonly string[] | undefined;
  readonly removed: readonly string[];
  /** How many names there were, when a list was cut (else -1). */
  readonly upsertedCount: number;
  readonly removedCount: number;
  readonly outcome: Outcome;
  readonly answeredAt: number | undefined;
  readonly error: string | undefined;
}

const FIRST_CAPACITY = 1024;
const NONE = -1;
const KIND_INDEX = new Map(RESOURCE_KINDS.map((k, i) => [k, i] as const));

export class RecentPushes {
  /** Stream id → its newest row × 32 + how many rows it has (at most 31). */
  private readonly streams = new Map<number, number>();
  private capacity = 0;
  /** Rows never used yet start here; freed rows are chained from freeRow through `older`. */
  private nextRow = 0;
  private freeRow = NONE;
  private used = 0;
  private at!: Float64Array;
  private answeredAt!: Float64Array;
  private resources!: Int32Array;
  private bytes!: Float64Array;
  private upsertedCount!: Int32Array;
  private removedCount!: Int32Array;
  /** kind index | outcome index << 3. */
  private state!: Uint8Array;
  /** The same stream's next older row (NONE: the oldest), or the next free row. */
  private older!: Int32Array;
  private node: (string | undefined)[] = [];
  private version: (string | undefined)[] = [];
  private nonce: (string | undefined)[] = [];
  private upserted: (readonly string[] | undefined)[] = [];
  private removed: (readonly string[] | undefined)[] = [];
  private error: (string | undefined)[] = [];

  constructor(private readonly perStream: number) {
    if (perStream > 31)
      throw new Error(`RecentPushes: at most 31 pushes per stream, not ${perStream}`);
    this.resize(FIRST_CAPACITY);
  }

  /** Records a push to stream `id` of `node`; the stream's oldest goes past `perStream`. */
  add(id: number, node: string, push: Omit<PushRow, 'outcome' | 'answeredAt' | 'error'>): void {
    const packed = this.streams.get(id);
    const head = packed === undefined ? NONE : Math.floor(packed / 32);
    let count = packed === undefined ? 0 : packed % 32;
    const row = this.allocate();
    this.at[row] = push.at;
    this.answeredAt[row] = NaN;
    this.resources[row] = push.resources;
    this.bytes[row] = push.bytes;
    this.upsertedCount[row] = push.upsertedCount;
    this.removedCount[row] = push.removedCount;
    this.state[row] = KIND_INDEX.get(push.kind)!;
    this.older[row] = head;
    this.node[row] = node;
    this.version[row] = push.version;
    this.nonce[row] = push.nonce;
    this.upserted[row] = push.upserted;
    this.removed[row] = push.removed;
    this.error[row] = undefined;
    if (++count > this.perStream) {
      // Drop the oldest: the row before it (perStream - 1 steps from the new one) ends the chain.
      let last = row;
      for (let i = 1; i < this.perStream; i++) last = this.older[last]!;
      this.release(this.older[last]!);
      this.older[last] = NONE;
      count = this.perStream;
    }
    this.streams.set(id, row * 32 + count);
  }

  /** Marks the stream's newest push of `kind` answered, if it is still pending. */
  answer(
    id: number,
    kind: ResourceKind,
    outcome: 'acked' | 'nacked',
    at: number,
    error?: string,
  ): void {
    const k = KIND_INDEX.get(kind)!;
    for (let row = this.headOf(id); row !== NONE; row = this.older[row]!) {
      const state = this.state[row]!;
      if ((state & 7) !== k) continue;
      if (state >> 3 !== 0) return; // answered already
      this.state[row] = k | (OUTCOMES.indexOf(outcome) << 3);
      this.answeredAt[row] = at;
      if (error !== undefined) this.error[row] = error;
      return;
    }
  }

  /** Forgets stream `id` and its pushes. */
  forget(id: number): void {
    let row = this.headOf(id);
    if (!this.streams.delete(id)) return;
    while (row !== NONE) {
      const next = this.older[row]!;
      this.release(row);
      row = next;
    }
    // A mesh that has emptied gives its rows back (the columns only grow while in use).
    if (this.used === 0 && this.capacity > FIRST_CAPACITY) this.resize(FIRST_CAPACITY);
  }

  /** Every stream of `node`: its pushes newest first, and whether each is its type's newest. */
  *pushesOf(node: string): IterableIterator<{ row: PushRow; newestOfKind: boolean }> {
    for (const packed of this.streams.values()) {
      const head = Math.floor(packed / 32);
      if (this.node[head] !== node) continue;
      let seen = 0; // kinds met so far (newer rows)
      for (let row = head; row !== NONE; row = this.older[row]!) {
        const bit = 1 << (this.state[row]! & 7);
        yield { row: this.read(row), newestOfKind: (seen & bit) === 0 };
        seen |= bit;
      }
    }
  }

  /** Rows in use and allocated (tests). */
  get size(): { rows: number; capacity: number; streams: number } {
    return { rows: this.used, capacity: this.capacity, streams: this.streams.size };
  }

  private headOf(id: number): number {
    const packed = this.streams.get(id);
    return packed === undefined ? NONE : Math.floor(packed / 32);
  }

  private read(row: number): PushRow {
    const state = this.state[row]!;
    const answeredAt = this.answeredAt[row]!;
    return {
      at: this.at[row]!,
      kind: RESOURCE_KINDS[state & 7]!,
      version: this.version[row]!,
      nonce: this.nonce[row]!,
      resources: this.resources[row]!,
      bytes: this.bytes[row]!,
      upserted: this.upserted[row],
      removed: this.removed[row]!,
      upsertedCount: this.upsertedCount[row]!,
      removedCount: this.removedCount[row]!,
      outcome: OUTCOMES[state >> 3]!,
      answeredAt: Number.isNaN(answeredAt) ? undefined : answeredAt,
      error: this.error[row],
    };
  }

  private allocate(): number {
    this.used++;
    if (this.freeRow !== NONE) {
      const row = this.freeRow;
      this.freeRow = this.older[row]!;
      return row;
    }
    if (this.nextRow === this.capacity) this.resize(this.capacity + (this.capacity >> 2));
    return this.nextRow++;
  }

  /** Frees a row, dropping what it refers to (names, strings) at once. */
  private release(row: number): void {
    this.used--;
    this.node[row] = this.version[row] = this.nonce[row] = this.error[row] = undefined;
    this.upserted[row] = this.removed[row] = undefined;
    this.older[row] = this.freeRow;
    this.freeRow = row;
  }

  /** New columns of `capacity` rows, keeping rows below it (only shrinks when none is used). */
  private resize(capacity: number): void {
    const keep = Math.min(this.nextRow, capacity);
    const grow = <T extends Float64Array | Int32Array | Uint8Array>(
      old: T | undefined,
      fresh: T,
    ): T => {
      if (old) fresh.set(old.subarray(0, keep));
      return fresh;
    };
    this.at = grow(this.at as Float64Array | undefined, new Float64Array(capacity));
    this.answeredAt = grow(this.answeredAt as Float64Array | undefined, new Float64Array(capacity));
    this.resources = grow(this.resources as Int32Array | undefined, new Int32Array(capacity));
    this.bytes = grow(this.bytes as Float64Array | undefined, new Float64Array(capacity));
    this.upsertedCount = grow(
      this.upsertedCount as Int32Array | undefined,
      new Int32Array(capacity),
    );
    this.removedCount = grow(this.removedCount as Int32Array | undefined, new Int32Array(capacity));
    this.state = grow(this.state as Uint8Array | undefined, new Uint8Array(capacity));
    this.older = grow(this.older as Int32Array | undefined, new Int32Array(capacity));
    const refs = <T>(old: T[]): T[] => {
      const fresh = new Array<T>(capacity).fill(undefined as T);
      for (let i = 0; i < keep; i++) fresh[i] = old[i]!;
      return fresh;
    };
    this.node = refs(this.node);
    this.version = refs(this.version);
    this.nonce = refs(this.nonce);
    this.upserted = refs(this.upserted);
    this.removed = refs(this.removed);
    this.error = refs(this.error);
    if (this.used === 0) {
      this.nextRow = 0;
      this.freeRow = NONE;
    }
    this.capacity = capacity;
  }
}
