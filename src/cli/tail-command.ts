// `lucid-mesh tail`: follows GET /v1/events and prints each change as it happens. Reconnects
// (with its operator token) when the control plane restarts; exits 1 if it cannot be reached
// at all at the start, or as soon as the token is refused (revoked, expired).
import { setTimeout as sleep } from 'node:timers/promises';
import { Command, InvalidArgumentError, Option } from 'commander';
import { createParser } from 'eventsource-parser';
import { RESOURCE_KINDS } from '../protos/envoy.js';
import type { MeshEvent } from '../telemetry/events.js';
import {
  AdminAuthError,
  AdminFlagError,
  AdminUnreachable,
  adminConnection,
  openEventStream,
  withOperatorOptions,
  type AdminConnection,
} from './admin-client.js';
import { choiceOption } from './options.js';
import { formatEvent } from './tail-format.js';
import { exitOnceWritten } from './stdout-closed.js';
import { onStopSignal } from './stop-signals.js';

interface TailFlags {
  node?: string;
  type?: string;
  count?: number;
  json: boolean;
}

export function tailCommand(): Command {
  return withOperatorOptions(
    new Command('tail').description(
      'Follow what the control plane sends: snapshot changes (field by field), pushes, ACKs and NACKs.',
    ),
  )
    .option('--node <id>', 'only events concerning this node')
    .addOption(
      new Option('--type <type>', `only this type: ${RESOURCE_KINDS.join(' | ')}`).argParser(
        choiceOption('--type', RESOURCE_KINDS),
      ),
    )
    .addOption(
      new Option('--count <n>', 'exit after N events').argParser((v) => positiveInt('--count', v)),
    )
    .option('--json', 'print events as JSON lines', false)
    .addHelpText(
      'after',
      '\nExit codes: 0 after --count events, on SIGINT/SIGTERM, or once the reader of its output went\n' +
        '(noticed at the next event: `lucid-mesh tail | grep -m1 NACK`); 1 the control plane cannot\n' +
        'be reached at the start or refuses the token; 2 a bad flag.\n',
    )
    .action(async (flags: TailFlags, cmd: Command) => {
      let conn: AdminConnection;
      try {
        conn = adminConnection(cmd);
      } catch (err) {
        if (!(err instanceof AdminFlagError)) throw err;
        process.stderr.write(`lucid-mesh tail: ${err.message}\n`);
        process.exit(2);
      }
      // Stopping a follower is its normal end: exit 0, as events and register --ttl.
      onStopSignal(() => process.exit(0));
      const colour = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
      let printed = 0;
      let connectedOnce = false;
      let backoffMs = 250;
      for (;;) {
        try {
          await follow(
            conn,
            flags,
            () => {
              connectedOnce = true;
              backoffMs = 250;
            },
            (e) => {
              if (flags.count !== undefined && printed >= flags.count) return; // exiting
              process.stdout.write(`${flags.json ? JSON.stringify(e) : formatEvent(e, colour)}\n`);
              if (flags.count !== undefined && ++printed >= flags.count) exitOnceWritten(0);
            },
          );
          if (!connectedOnce) throw new AdminUnreachable('the event stream ended at once');
          process.stderr.write(
            'lucid-mesh tail: the control plane closed the stream; reconnecting\n',
          );
        } catch (err) {
          // A refused token stays refused: say so once instead of retrying forever.
          if (!connectedOnce || err instanceof AdminAuthError) {
            process.stderr.write(`lucid-mesh tail: ${(err as Error).message}\n`);
            process.exit(1);
          }
          process.stderr.write(
            `lucid-mesh tail: connection lost (${(err as Error).message}); reconnecting in ${backoffMs} ms\n`,
          );
        }
        await sleep(backoffMs);
        backoffMs = Math.min(backoffMs * 2, 5000);
      }
    });
}

async function follow(
  conn: AdminConnection,
  flags: TailFlags,
  onOpen: () => void,
  onEvent: (e: MeshEvent) => void,
): Promise<void> {
  const query = new URLSearchParams();
  if (flags.node) query.set('node', flags.node);
  if (flags.type) query.set('type', flags.type);
  // Every attempt, reconnects included, sends the token.
  const res = await openEventStream(conn, `/v1/events?${query}`);
  onOpen();
  const decoder = new TextDecoder();
  const parser = createParser({ onEvent: (e) => onEvent(JSON.parse(e.data) as MeshEvent) });
  for await (const chunk of res) parser.feed(decoder.decode(chunk as Uint8Array, { stream: true }));
}

function positiveInt(flag: string, value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1)
    // InvalidArgumentError: commander's one-line usage error (exit 2), not a stack trace.
    throw new InvalidArgumentError(
      `${flag}: expected a positive integer, got ${JSON.stringify(value)}`,
    );
  return n;
}
