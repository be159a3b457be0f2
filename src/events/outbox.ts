// The event stream's on-disk outbox: every event is appended here first and leaves only when
// the broker has confirmed it, so a broker outage (or a restart of this process) loses nothing
// that fits in the outbox.
//
// Layout: append-only segment files `<first seq>.seg` (one JSON envelope per line) plus
// `confirmed` (the highest seq through which everything was confirmed, and so where numbering
// goes on after a restart). A segment is deleted once all of it is confirmed and a newer one
// is being written. When the outbox is over its size limit the oldest segment is deleted,
// confirmed or not: those events are dropped and counted, the newest are kept.
//
// fsync policy: appends are written in batches, one batch per event-loop turn, and each batch
// is fdatasync'ed before any of its events is handed to the publisher. A crash can lose at most
// the batch being written (a few milliseconds of events), never one already published.
// `confirmed` is rewritten (write + rename) at most every CONFIRMED_WRITE_MS: after a crash the
// events confirmed since are published again (consumers see the same id twice).
//
// Appending is synchronous and does no I/O, so the event bus (and xDS) never waits for the disk.
import { mkdir, open, readFile, readdir, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../telemetry/logger.js';
import { claimOutbox, type OutboxOwner } from './outbox-owner.js';

const SEGMENT_SUFFIX = '.seg';
const CONFIRMED_FILE = 'confirmed';
const CONFIRMED_WRITE_MS = 500;
/** The outbox keeps this many segments' worth: dropping when full removes about 1/8. */
const SEGMENTS_PER_OUTBOX = 8;
const MIN_SEGMENT_BYTES = 4 * 1024;

export interface OutboxRecord {
  readonly seq: number;
  readonly key: string;
  readonly id: string;
  /** The envelope's JSON (no newline). */
  readonly json: string;
  readonly segment: Segment;
  durable: boolean;
  confirmed: boolean;
}

interface Segment {
  readonly path: string;
  readonly firstSeq: number;
  lastSeq: number;
  bytes: number;
  dropped: boolean;
}

export interface OutboxCounters {
  /** Events dropped unconfirmed because the outbox was full. */
  dropped: number;
  /** Events confirmed by the broker and removed. */
  confirmed: number;
}

export interface OutboxOptions {
  readonly dir: string;
  readonly maxBytes: number;
  readonly logger?: Logger;
  /** Called with the number of events dropped each time the oldest segment goes. */
  readonly onDrop?: (events: number) => void;
}

export class Outbox {
  private readonly records: OutboxRecord[] = [];
  /** records[head] is the oldest unconfirmed record (earlier slots are garbage). */
  private head = 0;
  private readonly segments: Segment[] = [];
  private readonly segmentBytes: number;
  private nextSeq: number;
  private confirmedThrough: number;
  private totalBytes = 0;
  private unwritten: Array<{ segment: Segment; text: string; records: OutboxRecord[] }> = [];
  private flushing: Promise<void> | undefined;
  private flushQueued = false;
  private confirmedTimer: NodeJS.Timeout | undefined;
  private confirmedWrite: Promise<void> = Promise.resolve();
  private durableListener: (() => void) | undefined;
  private writeErrorLogged = false;
  readonly counters: OutboxCounters = { dropped: 0, confirmed: 0 };

  private constructor(
    private readonly opts: OutboxOptions,
    confirmedThrough: number,
    private readonly owner: OutboxOwner,
  ) {
    this.segmentBytes = Math.max(
      MIN_SEGMENT_BYTES,
      Math.floor(opts.maxBytes / SEGMENTS_PER_OUTBOX),
    );
    this.confirmedThrough = confirmedThrough;
    this.nextSeq = confirmedThrough + 1;
  }

  /**
   * Opens (creating) the directory, claims it for this process (outbox-owner.ts: another live
   * process's directory is refused) and loads what a previous process left unconfirmed.
   */
  static async open(opts: OutboxOptions): Promise<Outbox> {
    await mkdir(opts.dir, { recursive: true });
    const owner = await claimOutbox(opts.dir, opts.logger);
    try {
      let confirmed = 0;
      try {
        const text = (await readFile(join(opts.dir, CONFIRMED_FILE), 'utf8')).trim();
        if (/^\d+$/.test(text)) confirmed = Number(text);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      const outbox = new Outbox(opts, confirmed, owner);
      await outbox.load();
      return outbox;
    } catch (err) {
      await owner.release();
      throw err;
    }
  }

  /** Sequence number the next event gets. */
  peekSeq(): number {
    return this.nextSeq;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  /** Unconfirmed events held (on disk or about to be). */
  get size(): number {
    return this.records.length - this.head;
  }

  /** Records an event (`build` gets its seq). Synchronous; the write follows in a batch. */
  append(key: string, id: string, build: (seq: number) => unknown): OutboxRecord {
    const seq = this.nextSeq++;
    const json = JSON.stringify(build(seq));
    const size = Buffer.byteLength(json) + 1;
    let segment = this.segments.at(-1);
    if (!segment || segment.dropped || segment.bytes >= this.segmentBytes) {
      segment = {
        path: join(this.opts.dir, `${String(seq).padStart(16, '0')}${SEGMENT_SUFFIX}`),
        firstSeq: seq,
        lastSeq: seq,
        bytes: 0,
        dropped: false,
      };
      this.segments.push(segment);
    }
    segment.lastSeq = seq;
    segment.bytes += size;
    this.totalBytes += size;
    const record: OutboxRecord = {
      seq,
      key,
      id,
      json,
      segment,
      durable: false,
      confirmed: false,
    };
    this.records.push(record);
    const last = this.unwritten.at(-1);
    if (last && last.segment === segment) {
      last.text += `${json}\n`;
      last.records.push(record);
    } else {
      this.unwritten.push({ segment, text: `${json}\n`, records: [record] });
    }
    this.scheduleFlush();
    this.enforceLimit();
    return record;
  }

  /** The record with this seq, if still held. */
  get(seq: number): OutboxRecord | undefined {
    const first = this.records[this.head];
    if (!first || seq < first.seq) return undefined;
    return this.records[this.head + (seq - first.seq)];
  }

  /** The oldest unconfirmed record's seq (or the next seq if none). */
  oldestSeq(): number {
    return this.records[this.head]?.seq ?? this.nextSeq;
  }

  /** Called whenever more records became durable (the publisher's cue). */
  onDurable(listener: () => void): void {
    this.durableListener = listener;
  }

  /** The broker confirmed `seq`: forget it once everything before it is confirmed too. */
  confirm(seq: number): void {
    const record = this.get(seq);
    if (!record || record.seq !== seq || record.confirmed) return;
    record.confirmed = true;
    this.counters.confirmed++;
    while (this.head < this.records.length && this.records[this.head]!.confirmed) {
      this.confirmedThrough = this.records[this.head]!.seq;
      this.head++;
    }
    this.compact();
    this.deleteConfirmedSegments();
    this.scheduleConfirmedWrite();
  }

  /** Writes what is pending and the confirmed mark; resolves when both are on disk. */
  async close(): Promise<void> {
    await this.flush();
    if (this.confirmedTimer) clearTimeout(this.confirmedTimer);
    this.confirmedTimer = undefined;
    await this.writeConfirmed();
    await this.owner.release();
  }

  private async load(): Promise<void> {
    const names = (await readdir(this.opts.dir))
      .filter((n) => n.endsWith(SEGMENT_SUFFIX) && /^\d+\.seg$/.test(n))
      .sort();
    for (const name of names) {
      const path = join(this.opts.dir, name);
      const lines = (await readFile(path, 'utf8')).split('\n');
      const kept: Array<{ seq: number; key: string; id: string; json: string }> = [];
      let lastSeq = 0;
      for (const line of lines) {
        if (line === '') continue;
        let parsed: { seq?: unknown; key?: unknown; id?: unknown };
        try {
          parsed = JSON.parse(line) as typeof parsed;
        } catch {
          // A line cut short by a crash mid-write: it was never published.
          continue;
        }
        if (typeof parsed.seq !== 'number' || typeof parsed.key !== 'string') continue;
        lastSeq = Math.max(lastSeq, parsed.seq);
        if (parsed.seq <= this.confirmedThrough) continue;
        kept.push({ seq: parsed.seq, key: parsed.key, id: String(parsed.id), json: line });
      }
      this.nextSeq = Math.max(this.nextSeq, lastSeq + 1);
      if (kept.length === 0) {
        await unlink(path).catch(() => undefined);
        continue;
      }
      const bytes = kept.reduce((n, r) => n + Buffer.byteLength(r.json) + 1, 0);
      const segment: Segment = {
        path,
        firstSeq: kept[0]!.seq,
        lastSeq: kept.at(-1)!.seq,
        bytes,
        dropped: false,
      };
      this.segments.push(segment);
      this.totalBytes += bytes;
      for (const r of kept) {
        this.records.push({ ...r, segment, durable: true, confirmed: false });
      }
    }
    if (this.records.length > 0) {
      this.opts.logger?.info(
        { dir: this.opts.dir, events: this.records.length, from: this.records[0]!.seq },
        'event outbox: unconfirmed events from before are published again',
      );
    }
    // A new segment for this process's appends: old ones stay as they were read.
    this.segments.push({
      path: join(this.opts.dir, `${String(this.nextSeq).padStart(16, '0')}${SEGMENT_SUFFIX}`),
      firstSeq: this.nextSeq,
      lastSeq: this.nextSeq - 1,
      bytes: 0,
      dropped: false,
    });
    this.enforceLimit();
  }

  private scheduleFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    setImmediate(() => {
      this.flushQueued = false;
      void this.flush();
    });
  }

  /** Writes and fdatasyncs every pending batch, one after the other (then the publisher's cue). */
  flush(): Promise<void> {
    if (this.flushing) {
      return this.flushing.then(() => (this.unwritten.length > 0 ? this.flush() : undefined));
    }
    if (this.unwritten.length === 0) return Promise.resolve();
    const batches = this.unwritten;
    this.unwritten = [];
    this.flushing = (async () => {
      for (const batch of batches) {
        if (!batch.segment.dropped) await this.write(batch.segment, batch.text);
        for (const r of batch.records) r.durable = true;
        // Dropped while being written: the file must not outlive the drop.
        if (batch.segment.dropped) await unlink(batch.segment.path).catch(() => undefined);
      }
    })().finally(() => {
      this.flushing = undefined;
      this.durableListener?.();
      if (this.unwritten.length > 0) this.scheduleFlush();
    });
    return this.flushing;
  }

  private async write(segment: Segment, text: string): Promise<void> {
    try {
      const handle = await open(segment.path, 'a');
      try {
        await handle.write(text);
        await handle.datasync();
      } finally {
        await handle.close();
      }
      this.writeErrorLogged = false;
    } catch (err) {
      // A full or read-only disk: the events are still published from memory (not durable
      // across a restart). Said once per streak of failures.
      if (!this.writeErrorLogged) {
        this.writeErrorLogged = true;
        this.opts.logger?.error(
          { path: segment.path, error: (err as Error).message },
          'event outbox: cannot write; events are kept in memory only until the disk recovers',
        );
      }
    }
  }

  /** Over the limit: drop the oldest segments (never the one being written, if it is alone). */
  private enforceLimit(): void {
    while (this.totalBytes > this.opts.maxBytes && this.segments.length > 1) {
      const oldest = this.segments.shift()!;
      oldest.dropped = true;
      this.totalBytes -= oldest.bytes;
      let dropped = 0;
      while (this.head < this.records.length && this.records[this.head]!.segment === oldest) {
        if (!this.records[this.head]!.confirmed) dropped++;
        this.confirmedThrough = this.records[this.head]!.seq;
        this.head++;
      }
      this.compact();
      void unlink(oldest.path).catch(() => undefined);
      if (dropped > 0) {
        this.counters.dropped += dropped;
        this.opts.onDrop?.(dropped);
        this.opts.logger?.warn(
          {
            dropped,
            from: oldest.firstSeq,
            to: oldest.lastSeq,
            maxBytes: this.opts.maxBytes,
          },
          'event outbox full (--events-outbox-max-mb): dropped the oldest unconfirmed events',
        );
      }
      this.scheduleConfirmedWrite();
    }
  }

  private deleteConfirmedSegments(): void {
    while (this.segments.length > 1 && this.segments[0]!.lastSeq <= this.confirmedThrough) {
      const done = this.segments.shift()!;
      done.dropped = true;
      this.totalBytes -= done.bytes;
      void unlink(done.path).catch(() => undefined);
    }
  }

  /** Frees the slots of forgotten records now and then (amortised O(1) per record). */
  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.records.length) {
      this.records.splice(0, this.head);
      this.head = 0;
    }
  }

  private scheduleConfirmedWrite(): void {
    if (this.confirmedTimer) return;
    this.confirmedTimer = setTimeout(() => {
      this.confirmedTimer = undefined;
      void this.writeConfirmed();
    }, CONFIRMED_WRITE_MS);
    this.confirmedTimer.unref();
  }

  private writeConfirmed(): Promise<void> {
    const value = this.confirmedThrough;
    this.confirmedWrite = this.confirmedWrite.then(async () => {
      const path = join(this.opts.dir, CONFIRMED_FILE);
      try {
        await writeFile(`${path}.tmp`, `${value}\n`);
        await rename(`${path}.tmp`, path);
      } catch (err) {
        this.opts.logger?.warn(
          { path, error: (err as Error).message },
          'event outbox: cannot record the confirmed position',
        );
      }
    });
    return this.confirmedWrite;
  }
}
