// --max-stream-age for every stream of a replica with one timer. Streams are kept in a
// min-heap by when they are due, and one timer is armed for the earliest; a stream that is
// forgotten (closed) leaves the heap at once (each entry knows its place in it). A setTimeout
// per stream, with the two closures that armed and fired it and a map entry to cancel it,
// was ~250 B a proxy and a timer-list insert per new stream in a 10,000-sidecar storm
// (bench W9).

/** What is aged out: the xDS stream (its answer state, and how to end it). */
export interface AgeingStream {
  /** A response is on its way and not yet answered (ACK or NACK). */
  readonly awaitingAnswer: boolean;
  goAway(details: string): void;
}

interface Entry {
  readonly id: number;
  readonly stream: AgeingStream;
  /** When it is due (performance.now() ms). */
  at: number;
  postponed: number;
  /** Its place in the heap. */
  index: number;
}

export interface AgeOutOptions {
  /** How long a stream waiting for an answer is given, each time. */
  readonly postponeMs: number;
  /** Times it is given that, at most. */
  readonly maxPostpones: number;
  /** Why the stream is ended (its UNAVAILABLE status details). */
  readonly details: string;
}

export class AgeOut {
  private readonly heap: Entry[] = [];
  private readonly live = new Map<number, Entry>();
  private timer: NodeJS.Timeout | undefined;
  private armedAt = Infinity;

  constructor(private readonly options: AgeOutOptions) {}

  /** Ends stream `id` in `delayMs` (one waiting for an answer a little later). */
  add(id: number, stream: AgeingStream, delayMs: number): void {
    const entry: Entry = { id, stream, at: performance.now() + delayMs, postponed: 0, index: 0 };
    this.live.set(id, entry);
    this.push(entry);
    this.arm();
  }

  /** The stream is gone: it is not aged out, and not kept. */
  forget(id: number): void {
    const entry = this.live.get(id);
    if (!entry) return;
    this.live.delete(id);
    this.remove(entry.index);
  }

  /** Streams waiting to age out (tests). */
  get size(): number {
    return this.heap.length;
  }

  private fire(): void {
    this.timer = undefined;
    this.armedAt = Infinity;
    const now = performance.now();
    const { postponeMs, maxPostpones, details } = this.options;
    // Within a millisecond: a timer may fire a little early by the performance clock.
    while (this.heap.length > 0 && this.heap[0]!.at <= now + 1) {
      const entry = this.heap[0]!;
      if (entry.stream.awaitingAnswer && entry.postponed < maxPostpones) {
        entry.postponed++;
        entry.at = now + postponeMs;
        this.down(0);
        continue;
      }
      this.forget(entry.id);
      entry.stream.goAway(details);
    }
    this.arm();
  }

  /** One timer, for the earliest stream due (re-armed when an earlier one arrives). */
  private arm(): void {
    const next = this.heap[0];
    if (!next || next.at >= this.armedAt) return;
    clearTimeout(this.timer);
    this.armedAt = next.at;
    this.timer = setTimeout(() => this.fire(), Math.max(0, next.at - performance.now()));
    this.timer.unref();
  }

  private push(entry: Entry): void {
    entry.index = this.heap.push(entry) - 1;
    this.up(entry.index);
  }

  /** Takes the entry at `index` out of the heap. */
  private remove(index: number): void {
    const heap = this.heap;
    const last = heap.pop()!;
    if (index >= heap.length) return; // it was the last
    heap[index] = last;
    last.index = index;
    this.down(index);
    this.up(last.index);
  }

  private up(index: number): void {
    const heap = this.heap;
    const entry = heap[index]!;
    let i = index;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const above = heap[parent]!;
      if (above.at <= entry.at) break;
      heap[i] = above;
      above.index = i;
      i = parent;
    }
    heap[i] = entry;
    entry.index = i;
  }

  private down(index: number): void {
    const heap = this.heap;
    const entry = heap[index]!;
    let i = index;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && heap[right]!.at < heap[left]!.at ? right : left;
      const below = heap[child]!;
      if (below.at >= entry.at) break;
      heap[i] = below;
      below.index = i;
      i = child;
    }
    heap[i] = entry;
    entry.index = i;
  }
}
