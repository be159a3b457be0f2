// What a user sees when the broker refuses the event stream's setup, on a real RabbitMQ: a
// vhost that does not exist, an exchange that exists as another type. `lucid-mesh events`
// exits 1 with one line naming the cause (it retried an exchange it can never declare
// forever, and said "Expected ConnectionOpenOk; got <ConnectionClose channel:0>" for a
// vhost, "ssl3_get_record:wrong version number" on two lines for amqps:// to a plain port);
// `serve` logs the same cause, naming the flag, and keeps retrying. And an outbox directory
// serve cannot make, or one another serve holds: a start failure naming --events-outbox-dir
// (it named nothing; a shared one was used by both, losing events).
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { plainServeArgs, spawnCli, type CliProcess } from '../support/cli-process.js';
import { freePorts } from '../support/ports.js';
import {
  RABBITMQ_START_TIMEOUT_MS,
  startRabbitMq,
  type RabbitMqHandle,
} from '../support/rabbitmq.js';
import { waitFor } from '../support/wait.js';

let broker: RabbitMqHandle;
const FANOUT = 'taken.as.fanout';

beforeAll(async () => {
  broker = await startRabbitMq('events-errors');
  // Someone else's exchange of the same name, of another type.
  const conn = await amqp.connect(broker.url);
  const ch = await conn.createChannel();
  await ch.assertExchange(FANOUT, 'fanout', { durable: true });
  await conn.close();
}, RABBITMQ_START_TIMEOUT_MS + 30_000);
afterAll(async () => {
  await broker?.remove();
});

const running: ChildProcess[] = [];
afterEach(() => {
  for (const p of running.splice(0)) p.kill('SIGKILL');
});
function cli(args: string[]): CliProcess {
  const p = spawnCli(args, { LUCID_DATA_DIR: mkdtempSync(join(tmpdir(), 'lucid-events-err-')) });
  running.push(p.child);
  return p;
}

/** The exit code, or 'still running' after `ms`. */
async function exitWithin(p: CliProcess, ms: number): Promise<number | null | 'still running'> {
  return Promise.race([
    p.exited,
    new Promise<'still running'>((resolve) => setTimeout(() => resolve('still running'), ms)),
  ]);
}

const vhostUrl = (): string => broker.url.replace(/\/$/, '/nope');

describe('lucid-mesh events: setup refused by the broker', () => {
  it('an exchange declared as another type: exit 1, one line naming --exchange', async () => {
    const p = cli(['events', '--amqp', broker.url, '--exchange', FANOUT]);
    expect(await exitWithin(p, 20_000), p.stderr()).toBe(1);
    const lines = p.stderr().trim().split('\n');
    expect(lines, p.stderr()).toHaveLength(1);
    expect(lines[0]).toContain(`lucid-mesh events: cannot follow ${FANOUT} on`);
    expect(lines[0]).toContain("PRECONDITION_FAILED - inequivalent arg 'type'");
    expect(lines[0]).toContain('--exchange: that exchange exists with other properties');
  }, 30_000);

  it('a vhost that does not exist: exit 1 saying so', async () => {
    const p = cli(['events', '--amqp', vhostUrl()]);
    expect(await exitWithin(p, 20_000), p.stderr()).toBe(1);
    expect(p.stderr()).toContain('the broker refused vhost "nope" (NOT_ALLOWED)');
    // guest:guest: the user stays readable, only the password is hidden.
    expect(p.stderr()).toContain(
      `cannot connect to amqp://guest:***@127.0.0.1:${broker.port}/nope`,
    );
    expect(p.stderr()).not.toContain('ConnectionOpenOk');
  }, 30_000);

  it('amqps:// to the plain AMQP port: exit 1, one line saying the port does not answer TLS', async () => {
    const p = cli(['events', '--amqp', broker.url.replace('amqp://', 'amqps://')]);
    expect(await exitWithin(p, 20_000), p.stderr()).toBe(1);
    const lines = p.stderr().trim().split('\n');
    expect(lines, p.stderr()).toHaveLength(1);
    expect(lines[0]).toContain(
      `TLS handshake failed: 127.0.0.1:${broker.port} does not answer TLS (amqps:// needs`,
    );
  }, 30_000);
});

describe('serve --events-amqp: setup refused by the broker', () => {
  it('logs the refused vhost and the taken exchange, naming the flags', async () => {
    const [admin, xds, admin2, xds2] = (await freePorts(4)) as [number, number, number, number];
    const vhost = cli([
      ...plainServeArgs('examples/catalog.yaml', { admin, xds }),
      ...['--events-amqp', vhostUrl()],
    ]);
    const exchange = cli([
      ...plainServeArgs('examples/catalog.yaml', { admin: admin2, xds: xds2 }),
      ...['--events-amqp', broker.url, '--events-exchange', FANOUT],
    ]);
    // The log is pino JSON lines on stderr: the message of the first broker error.
    const errorLine = (p: CliProcess): string | undefined => {
      const line = p
        .stderr()
        .split('\n')
        .find((l) => l.includes('cannot publish to'));
      return line === undefined ? undefined : (JSON.parse(line) as { msg: string }).msg;
    };
    await waitFor(() => errorLine(vhost) !== undefined && errorLine(exchange) !== undefined, {
      what: 'both broker errors in the logs',
      timeoutMs: 30_000,
      details: () => vhost.stderr() + exchange.stderr(),
    });
    expect(errorLine(vhost)).toContain('(--events-amqp): the broker refused vhost "nope"');
    expect(errorLine(exchange)).toContain('--events-exchange: that exchange exists');
  }, 60_000);
});

describe('serve --events-outbox-dir', () => {
  it('a directory that cannot be made: exit 1, one line naming the flag and the path', async () => {
    const [admin, xds] = (await freePorts(2)) as [number, number];
    const file = join(mkdtempSync(join(tmpdir(), 'lucid-outbox-file-')), 'not-a-dir');
    writeFileSync(file, '');
    const p = cli([
      ...plainServeArgs('examples/catalog.yaml', { admin, xds }),
      ...['--events-amqp', broker.url, '--events-outbox-dir', join(file, 'outbox')],
    ]);
    expect(await exitWithin(p, 30_000), p.stderr()).toBe(1);
    expect(p.stderr()).toContain(
      `lucid-mesh serve: --events-outbox-dir: cannot use "${join(file, 'outbox')}" for the event outbox: ENOTDIR`,
    );
  }, 40_000);

  it('two serve processes on one outbox directory: the second refuses to start, naming the flag', async () => {
    const [a1, x1, a2, x2] = (await freePorts(4)) as [number, number, number, number];
    const outbox = join(mkdtempSync(join(tmpdir(), 'lucid-outbox-shared-')), 'outbox');
    const first = cli([
      ...plainServeArgs('examples/catalog.yaml', { admin: a1, xds: x1 }),
      ...['--events-amqp', broker.url, '--events-outbox-dir', outbox],
    ]);
    await waitFor(() => first.stderr().includes('event stream started'), {
      what: 'the first serve to hold the outbox',
      timeoutMs: 30_000,
      details: () => first.stderr(),
    });
    const second = cli([
      ...plainServeArgs('examples/catalog.yaml', { admin: a2, xds: x2 }),
      ...['--events-amqp', broker.url, '--events-outbox-dir', outbox],
    ]);
    expect(await exitWithin(second, 30_000), second.stderr()).toBe(1);
    expect(second.stderr()).toContain(
      `lucid-mesh serve: --events-outbox-dir: cannot use "${outbox}" for the event outbox: in use by another process (pid ${first.child.pid}`,
    );
    expect(first.child.exitCode).toBeNull();
  }, 60_000);
});
