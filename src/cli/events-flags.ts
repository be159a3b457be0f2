// `serve`'s event stream flags (--events-*): RabbitMQ URL (or a file holding it), exchange,
// outbox. Problems are usage errors that name the flag and never show the password.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError, Option } from 'commander';
import { AmqpUrlError, parseBrokerUrl } from '../events/amqp-url.js';
import {
  DEFAULT_EVENTS_EXCHANGE,
  DEFAULT_OUTBOX_MAX_MB,
  type EventStreamSettings,
} from '../events/event-stream.js';

export interface EventsFlags {
  eventsAmqp?: string;
  eventsAmqpFile?: string;
  eventsAmqpCa?: string;
  eventsExchange: string;
  eventsOutboxDir?: string;
  eventsOutboxMaxMb: number;
  eventsReplica: string;
  dataDir: string;
}

export class EventsFlagError extends Error {
  override readonly name: string = 'EventsFlagError';
}

export function eventsCliOptions(): Option[] {
  return [
    new Option(
      '--events-amqp <url>',
      'publish mesh events to RabbitMQ: amqp://user:password@host:5672/vhost (amqps:// for TLS); see docs/events.md',
    ).env('LUCID_EVENTS_AMQP'),
    new Option(
      '--events-amqp-file <path>',
      'a file holding the --events-amqp URL (keeps the password out of the command line)',
    ).env('LUCID_EVENTS_AMQP_FILE'),
    new Option(
      '--events-amqp-ca <file>',
      'PEM CA certificate(s) that verify an amqps:// broker (default: the system trust store)',
    ).env('LUCID_EVENTS_AMQP_CA'),
    new Option('--events-exchange <name>', 'topic exchange the events go to (declared durable)')
      .env('LUCID_EVENTS_EXCHANGE')
      .default(DEFAULT_EVENTS_EXCHANGE)
      .argParser(exchangeName),
    new Option(
      '--events-outbox-dir <dir>',
      'where events wait until the broker confirms them, one serve process per directory (default: <--data-dir>/events-outbox)',
    ).env('LUCID_EVENTS_OUTBOX_DIR'),
    new Option(
      '--events-outbox-max-mb <mb>',
      'outbox size limit; when full, the oldest unconfirmed events are dropped (lucid_mesh_events_dropped_total)',
    )
      .env('LUCID_EVENTS_OUTBOX_MAX_MB')
      .default(DEFAULT_OUTBOX_MAX_MB)
      .argParser(megabytes),
    new Option(
      '--events-replica <name>',
      'this replica\'s name in every event (with "seq", it orders one replica\'s events)',
    )
      .env('LUCID_EVENTS_REPLICA')
      .default(hostname()),
  ];
}

/** The event stream's settings, or undefined without --events-amqp(-file). */
export function eventStreamFromFlags(flags: EventsFlags): EventStreamSettings | undefined {
  let raw: string;
  let flag: string;
  if (flags.eventsAmqpFile !== undefined) {
    flag = '--events-amqp-file';
    try {
      raw = readFileSync(flags.eventsAmqpFile, 'utf8');
    } catch (err) {
      throw new EventsFlagError(
        `--events-amqp-file: cannot read ${JSON.stringify(flags.eventsAmqpFile)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
    raw = raw.split('\n').find((line) => line.trim() !== '') ?? '';
    if (raw.trim() === '') {
      throw new EventsFlagError(
        `--events-amqp-file: ${JSON.stringify(flags.eventsAmqpFile)} holds no URL`,
      );
    }
  } else if (flags.eventsAmqp !== undefined) {
    flag = '--events-amqp';
    raw = flags.eventsAmqp;
  } else {
    return undefined;
  }
  let ca: string | undefined;
  if (flags.eventsAmqpCa !== undefined) {
    try {
      ca = readFileSync(flags.eventsAmqpCa, 'utf8');
    } catch (err) {
      throw new EventsFlagError(
        `--events-amqp-ca: cannot read ${JSON.stringify(flags.eventsAmqpCa)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
    if (!ca.includes('-----BEGIN CERTIFICATE-----')) {
      throw new EventsFlagError(
        `--events-amqp-ca: ${JSON.stringify(flags.eventsAmqpCa)} holds no PEM certificate`,
      );
    }
  }
  try {
    const url = parseBrokerUrl(raw, flag);
    if (ca !== undefined && !url.tls) {
      throw new EventsFlagError(
        `--events-amqp-ca: only for an amqps:// broker, got ${JSON.stringify(url.redacted)}`,
      );
    }
    return {
      url,
      ...(ca !== undefined ? { ca } : {}),
      flag,
      exchange: flags.eventsExchange,
      outboxDir: flags.eventsOutboxDir ?? join(flags.dataDir, 'events-outbox'),
      outboxMaxBytes: Math.round(flags.eventsOutboxMaxMb * 1024 * 1024),
      replica: flags.eventsReplica,
    };
  } catch (err) {
    if (err instanceof AmqpUrlError) throw new EventsFlagError(err.message);
    throw err;
  }
}

function megabytes(value: string): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value.trim()) || !(n >= 0.01) || n > 1_000_000) {
    throw new InvalidArgumentError(
      `--events-outbox-max-mb: expected a number of megabytes from 0.01 to 1000000, got ${JSON.stringify(value)}`,
    );
  }
  return n;
}

function exchangeName(value: string): string {
  // AMQP 0-9-1 exchange names: up to 255 of letters, digits, - _ . :
  if (!/^[A-Za-z0-9_.:-]{1,255}$/.test(value)) {
    throw new InvalidArgumentError(
      `--events-exchange: expected letters, digits, "-", "_", "." or ":" (1-255), got ${JSON.stringify(value)}`,
    );
  }
  if (value.startsWith('amq.')) {
    throw new InvalidArgumentError(
      `--events-exchange: names starting with "amq." are reserved by the broker, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}
