// Publishes the outbox to the broker in sequence order over a confirm channel (amqplib's
// ConfirmChannel): an event leaves the outbox only when the broker has confirmed it. When the
// connection goes, everything unconfirmed is published again, from the oldest, after a
// reconnect with exponential backoff; consumers may then see an event twice, always with
// the same id.
import { createRequire } from 'node:module';
import type amqp from 'amqplib';
import type { Logger } from '../telemetry/logger.js';
import { scrub, type BrokerUrl } from './amqp-url.js';
import { explainBrokerError } from './broker-errors.js';
import type { Outbox } from './outbox.js';

/** Unconfirmed messages on the wire at once. */
const WINDOW = 256;
const FIRST_RETRY_MS = 250;
export const DEFAULT_MAX_RETRY_MS = 5_000;
/** A broker still down is logged again after this long (not at every retry). */
const RELOG_MS = 60_000;

export interface PublisherOptions {
  readonly url: BrokerUrl;
  /** The flag the URL came from, named in errors. */
  readonly flag: string;
  readonly exchange: string;
  /** PEM CA bundle that verifies an amqps:// broker (default: Node's trusted CAs). */
  readonly ca?: string;
  readonly outbox: Outbox;
  readonly logger: Logger;
  readonly maxRetryMs?: number;
  /** Called with each confirmed event's routing key. */
  readonly onConfirmed?: (key: string) => void;
  readonly onConnected?: (connected: boolean) => void;
}

type ConfirmChannel = Awaited<ReturnType<amqp.ChannelModel['createConfirmChannel']>>;

export class AmqpPublisher {
  private conn: amqp.ChannelModel | undefined;
  private ch: ConfirmChannel | undefined;
  /** Bumped per connection: callbacks of an older one only confirm, never count. */
  private generation = 0;
  /** Last seq handed to the current channel. */
  private cursor = 0;
  private inflight = 0;
  private blocked = false;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private everConnected = false;
  private lastError: { message: string; at: number } | undefined;
  private readonly log: Logger;

  constructor(private readonly opts: PublisherOptions) {
    this.log = opts.logger.child({ component: 'events' });
  }

  get connected(): boolean {
    return this.ch !== undefined;
  }

  start(): void {
    this.opts.outbox.onDurable(() => this.pump());
    void this.connect();
  }

  /**
   * While connected, waits up to `graceMs` until every durable event is confirmed (the last
   * ones, e.g. a drain's disconnects, go out now, not at the next start), then closes.
   */
  async stop(graceMs = 2_000): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const until = Date.now() + graceMs;
    while (this.ch && this.opts.outbox.size > 0 && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const conn = this.conn;
    this.conn = undefined;
    this.ch = undefined;
    await conn?.close().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const { url, exchange } = this.opts;
    let conn: amqp.ChannelModel | undefined;
    try {
      // amqplib is loaded on the first connect: a control plane without --events-amqp never loads it.
      const client = createRequire(import.meta.url)('amqplib') as typeof amqp;
      conn = await client.connect(url.url, {
        timeout: 10_000,
        clientProperties: { connection_name: 'lucid-mesh events' },
        ...(url.tls && this.opts.ca ? { ca: [this.opts.ca] } : {}),
      });
      const current = conn;
      // 'close' follows every 'error': handled there.
      conn.on('error', () => undefined);
      conn.on('close', (err?: Error) => this.lost(current, err));
      const ch = await conn.createConfirmChannel();
      ch.on('error', () => undefined);
      // A channel closed by the broker (e.g. a nack storm, a deleted exchange): start over.
      ch.on('close', () => void current.close().catch(() => undefined));
      await ch.assertExchange(exchange, 'topic', { durable: true });
      if (this.stopped) {
        await conn.close().catch(() => undefined);
        return;
      }
      this.conn = conn;
      this.ch = ch;
      this.generation++;
      this.inflight = 0;
      this.blocked = false;
      this.cursor = this.opts.outbox.oldestSeq() - 1;
      this.attempt = 0;
      this.lastError = undefined;
      this.log.info(
        {
          broker: url.redacted,
          exchange,
          unconfirmed: this.opts.outbox.size,
          reconnect: this.everConnected,
        },
        'event stream connected to the broker',
      );
      this.everConnected = true;
      this.opts.onConnected?.(true);
      this.pump();
    } catch (err) {
      await conn?.close().catch(() => undefined);
      this.failed(err as Error);
    }
  }

  private failed(err: Error): void {
    if (this.stopped) return;
    const message = scrub(
      explainBrokerError(err.message, { url: this.opts.url, exchangeFlag: '--events-exchange' }),
      this.opts.url,
    );
    const now = Date.now();
    const repeat = this.lastError?.message === message && now - this.lastError.at < RELOG_MS;
    if (!repeat) {
      this.lastError = { message, at: now };
      const fields = {
        broker: this.opts.url.redacted,
        error: message,
        outbox: this.opts.outbox.size,
      };
      const text = `event stream: cannot publish to ${this.opts.url.redacted} (${this.opts.flag}): ${message}; events wait in the outbox and are retried`;
      if (this.everConnected) this.log.warn(fields, text);
      else this.log.error(fields, text);
    }
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.stopped || this.retryTimer) return;
    const max = this.opts.maxRetryMs ?? DEFAULT_MAX_RETRY_MS;
    const base = Math.min(max, FIRST_RETRY_MS * 2 ** this.attempt++);
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.connect();
    }, delay);
    this.retryTimer.unref();
  }

  private lost(conn: amqp.ChannelModel, err: Error | undefined): void {
    if (conn !== this.conn) return;
    this.conn = undefined;
    this.ch = undefined;
    this.generation++;
    this.inflight = 0;
    this.opts.onConnected?.(false);
    if (this.stopped) return;
    this.failed(err ?? new Error('the broker closed the connection'));
  }

  /** Hands durable, unconfirmed events to the channel in seq order, WINDOW at a time. */
  private pump(): void {
    const ch = this.ch;
    if (!ch || this.blocked) return;
    const { outbox, exchange } = this.opts;
    const generation = this.generation;
    while (this.inflight < WINDOW) {
      // Events dropped (outbox full) while not yet sent are skipped.
      if (this.cursor + 1 < outbox.oldestSeq()) this.cursor = outbox.oldestSeq() - 1;
      const record = outbox.get(this.cursor + 1);
      if (!record?.durable) return;
      this.cursor = record.seq;
      if (record.confirmed) continue;
      this.inflight++;
      const ok = ch.publish(
        exchange,
        record.key,
        Buffer.from(record.json),
        {
          persistent: true,
          contentType: 'application/json',
          messageId: record.id,
          type: record.key,
          appId: 'lucid-mesh',
          timestamp: Math.floor(Date.now() / 1000),
        },
        (nack: unknown) => {
          if (!nack) {
            outbox.confirm(record.seq);
            this.opts.onConfirmed?.(record.key);
          }
          if (generation !== this.generation) return;
          this.inflight--;
          if (nack) {
            // The broker could not take it: publish everything unconfirmed again.
            this.log.warn(
              { seq: record.seq },
              'event stream: the broker refused an event; reconnecting',
            );
            void this.conn?.close().catch(() => undefined);
            return;
          }
          this.pump();
        },
      );
      if (!ok) {
        this.blocked = true;
        ch.once('drain', () => {
          if (generation !== this.generation) return;
          this.blocked = false;
          this.pump();
        });
        return;
      }
    }
  }
}
