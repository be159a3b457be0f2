// `lucid-mesh events`: follows the mesh event stream on RabbitMQ (what `serve --events-amqp`
// publishes) through an exclusive, auto-deleted queue of its own, printing each event as
// `lucid-mesh tail` would. Exits 2 on a bad flag, 1 when the broker cannot be reached at the
// start or refuses the setup; a broker lost later is reconnected to with backoff.
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import amqp from 'amqplib';
import { Command, InvalidArgumentError, Option } from 'commander';
import { AmqpUrlError, parseBrokerUrl, scrub, type BrokerUrl } from '../events/amqp-url.js';
import { explainBrokerError } from '../events/broker-errors.js';
import { EVENT_KEYS, type AnyEventEnvelope } from '../events/envelope.js';
import { DEFAULT_EVENTS_EXCHANGE } from '../events/event-stream.js';
import { formatEnvelope } from './events-format.js';
import { eitherOption } from './options.js';
import { exitAfter, onStopSignal } from './stop-signals.js';

interface EventsCommandFlags {
  amqp?: string;
  amqpFile?: string;
  amqpCa?: string;
  exchange: string;
  binding: string[];
  count?: number;
  json: boolean;
}

export function eventsCommand(): Command {
  const command = new Command('events')
    .description(
      'Follow the mesh event stream on RabbitMQ (serve --events-amqp), printed like `lucid-mesh tail`.',
    )
    .addOption(
      new Option(
        '--amqp <url>',
        'the broker: amqp://user:password@host:5672/vhost (amqps:// for TLS)',
      ).env('LUCID_EVENTS_AMQP'),
    )
    .addOption(
      new Option('--amqp-file <path>', 'a file holding the --amqp URL').env(
        'LUCID_EVENTS_AMQP_FILE',
      ),
    )
    .addOption(
      new Option(
        '--amqp-ca <file>',
        'PEM CA certificate(s) that verify an amqps:// broker (default: the system trust store)',
      ).env('LUCID_EVENTS_AMQP_CA'),
    )
    .addOption(
      new Option('--exchange <name>', 'the exchange serve publishes to (--events-exchange)')
        .env('LUCID_EVENTS_EXCHANGE')
        .default(DEFAULT_EVENTS_EXCHANGE),
    )
    .addOption(
      new Option(
        '--binding <pattern>',
        `routing keys to follow, repeatable; * is one word, # any (e.g. proxy.*, cert.#); keys: ${EVENT_KEYS.join(', ')} (default: #, every event)`,
      ).argParser((v: string, all: string[] = []) => [...all, bindingPattern(v)]),
    )
    .addOption(
      new Option('--count <n>', 'exit after N events').argParser((v) => positiveInt('--count', v)),
    )
    .option('--json', 'print each event as its JSON envelope, one per line', false)
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  lucid-mesh events --amqp amqp://guest:guest@127.0.0.1:5672/\n' +
        "  lucid-mesh events --amqp-file /run/secrets/amqp-url --binding 'proxy.*' --binding config.rejected\n" +
        '\nExit codes: 0 after --count events, on SIGINT/SIGTERM (the broker connection closed, 3 s at\n' +
        'most), or once the reader of its output went (noticed at the next event); 1 the broker cannot\n' +
        'be reached at the start or refuses the setup (login, vhost, an exchange of another type);\n' +
        '2 a bad flag.\n',
    );
  return eitherOption(command, '--amqp', '--amqp-file').action(
    async (flags: EventsCommandFlags, cmd: Command) => {
      const usage = (message: string): never =>
        cmd.error(`lucid-mesh events: ${message}`, { exitCode: 2 });
      let url: BrokerUrl;
      try {
        url = brokerUrl(flags);
      } catch (err) {
        if (err instanceof AmqpUrlError) return usage(err.message);
        throw err;
      }
      const fail = (message: string): never => {
        process.stderr.write(`lucid-mesh events: ${scrub(message, url)}\n`);
        process.exit(1);
      };
      let ca: string | undefined;
      if (flags.amqpCa !== undefined) {
        try {
          ca = readFileSync(flags.amqpCa, 'utf8');
        } catch (err) {
          return usage(
            `--amqp-ca: cannot read ${JSON.stringify(flags.amqpCa)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
          );
        }
      }
      const bindings = flags.binding?.length ? flags.binding : ['#'];
      const colour = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
      let printed = 0;
      /** Set once the first connection consumes: from then on, losses are retried. */
      let connectedOnce = false;
      let current: amqp.ChannelModel | undefined;
      let closing = false;
      const stop = (code: number): void => {
        closing = true;
        exitAfter(current?.close() ?? Promise.resolve(), code);
      };
      onStopSignal(() => stop(0));

      /** One connection's life: resolves when it closes (the caller reconnects). */
      const follow = async (): Promise<void> => {
        const conn = await amqp.connect(url.url, {
          timeout: 10_000,
          clientProperties: { connection_name: 'lucid-mesh events (consumer)' },
          ...(url.tls && ca !== undefined ? { ca: [ca] } : {}),
        });
        current = conn;
        const closed = new Promise<void>((resolve) => conn.once('close', () => resolve()));
        conn.on('error', () => undefined);
        const ch = await conn.createChannel();
        await ch.assertExchange(flags.exchange, 'topic', { durable: true });
        const { queue } = await ch.assertQueue('', { exclusive: true, autoDelete: true });
        for (const pattern of bindings) await ch.bindQueue(queue, flags.exchange, pattern);
        process.stderr.write(
          `lucid-mesh events: following ${flags.exchange} (${bindings.join(', ')}) on ${url.redacted}\n`,
        );
        await ch.consume(
          queue,
          (msg) => {
            if (!msg || closing) return; // closing: --count reached, or stopped
            let envelope: AnyEventEnvelope;
            try {
              envelope = JSON.parse(msg.content.toString('utf8')) as AnyEventEnvelope;
            } catch {
              process.stderr.write(
                `lucid-mesh events: skipped a message that is not JSON (routing key ${msg.fields.routingKey})\n`,
              );
              return;
            }
            process.stdout.write(
              `${flags.json ? JSON.stringify(envelope) : formatEnvelope(envelope, colour)}\n`,
            );
            if (flags.count !== undefined && ++printed >= flags.count) stop(0);
          },
          { noAck: true },
        );
        connectedOnce = true;
        await closed;
      };

      // As tail: the first connection must work, up to its queue consuming (a refused vhost,
      // an exchange declared with other properties: retrying would only repeat it); later
      // losses are retried with backoff (the queue is exclusive, so events published while
      // disconnected are not seen).
      let backoffMs = 250;
      for (;;) {
        try {
          const life = follow();
          await life;
        } catch (err) {
          const reason = explainBrokerError((err as Error).message, {
            url,
            exchangeFlag: '--exchange',
          });
          if (!connectedOnce) {
            const what = current === undefined ? 'connect to' : `follow ${flags.exchange} on`;
            return fail(`cannot ${what} ${url.redacted}: ${reason}`);
          }
          if (closing) return;
          process.stderr.write(
            `lucid-mesh events: ${scrub(reason, url)}; reconnecting in ${backoffMs} ms\n`,
          );
          await sleep(backoffMs);
          backoffMs = Math.min(backoffMs * 2, 5_000);
          continue;
        }
        if (closing) return;
        backoffMs = 250;
        process.stderr.write(
          `lucid-mesh events: lost the broker (${url.redacted}); reconnecting (events published meanwhile are missed)\n`,
        );
        await sleep(backoffMs);
      }
    },
  );
}

function brokerUrl(flags: EventsCommandFlags): BrokerUrl {
  if (flags.amqpFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(flags.amqpFile, 'utf8');
    } catch (err) {
      throw new AmqpUrlError(
        `--amqp-file: cannot read ${JSON.stringify(flags.amqpFile)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
    return parseBrokerUrl(text.split('\n').find((l) => l.trim() !== '') ?? '', '--amqp-file');
  }
  if (flags.amqp === undefined) {
    throw new AmqpUrlError('--amqp (or --amqp-file, LUCID_EVENTS_AMQP) is required');
  }
  return parseBrokerUrl(flags.amqp, '--amqp');
}

function bindingPattern(value: string): string {
  if (!/^([A-Za-z0-9_-]+|\*|#)(\.([A-Za-z0-9_-]+|\*|#))*$/.test(value)) {
    throw new InvalidArgumentError(
      `--binding: expected dot-separated words, * or # (e.g. proxy.*), got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

function positiveInt(flag: string, value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1)
    throw new InvalidArgumentError(
      `${flag}: expected a positive integer, got ${JSON.stringify(value)}`,
    );
  return n;
}
