// The durable mesh event stream (serve --events-amqp): listens to the in-process event bus
// (EventHub), the CA's leaves and the configuration problems, turns what it hears into
// envelopes with a routing key, records each in the outbox and lets the publisher carry them
// to the broker. Nothing here waits on the broker or the disk: xDS never slows down for it.
import { randomUUID } from 'node:crypto';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { LeafSource } from '../ca/leaf-source.js';
import type { IssuedLeaf } from '../ca/types.js';
import type { EventHub, MeshEvent } from '../telemetry/events.js';
import type { Logger } from '../telemetry/logger.js';
import { METRIC_PREFIX } from '../telemetry/metrics.js';
import type { ConfigProblem } from '../traffic/provider.js';
import { AmqpPublisher } from './amqp-publisher.js';
import type { BrokerUrl } from './amqp-url.js';
import type { CertData, EventData, EventKey } from './envelope.js';
import { Outbox } from './outbox.js';

export const DEFAULT_EVENTS_EXCHANGE = 'lucid-mesh.events';
export const DEFAULT_OUTBOX_MAX_MB = 64;
/** How often configuration problems are compared with the last look (config.rejected). */
const PROBLEM_POLL_MS = 1_000;

export interface EventStreamSettings {
  readonly url: BrokerUrl;
  /** The flag (or env var) the URL came from, named in errors. */
  readonly flag: string;
  readonly exchange: string;
  /** PEM CA bundle for an amqps:// broker (--events-amqp-ca). */
  readonly ca?: string;
  readonly outboxDir: string;
  readonly outboxMaxBytes: number;
  readonly replica: string;
  /** Longest wait between reconnect attempts (default 5 s). */
  readonly maxRetryMs?: number;
}

export interface EventStreamDeps {
  readonly hub: EventHub;
  readonly logger: Logger;
  readonly registry: Registry;
  /** The CA backend's leaves (built-in or Consul Connect): cert.issued / cert.rotated. */
  readonly leaves?: Pick<LeafSource, 'onIssued'>;
  /** What /v1/config/errors lists now (new entries become config.rejected). */
  readonly problems?: () => readonly ConfigProblem[];
}

export interface RunningEventStream {
  readonly outbox: Outbox;
  readonly publisher: AmqpPublisher;
  /** Records one event (tests; the bus, CA and problem watch call it). */
  emit<K extends EventKey>(key: K, data: EventData[K], at?: string): void;
  stop(): Promise<void>;
}

export async function startEventStream(
  deps: EventStreamDeps,
  settings: EventStreamSettings,
): Promise<RunningEventStream> {
  const { logger, registry } = deps;
  const dropped = new Counter({
    name: `${METRIC_PREFIX}events_dropped_total`,
    help: 'Mesh events dropped unpublished because the outbox was full (--events-outbox-max-mb)',
    registers: [registry],
  });
  const published = new Counter({
    name: `${METRIC_PREFIX}events_published_total`,
    help: 'Mesh events the broker confirmed, by routing key',
    labelNames: ['key'],
    registers: [registry],
  });
  let outbox: Outbox;
  try {
    outbox = await Outbox.open({
      dir: settings.outboxDir,
      maxBytes: settings.outboxMaxBytes,
      logger: logger.child({ component: 'events' }),
      onDrop: (n) => dropped.inc(n),
    });
  } catch (err) {
    // The directory is the user's choice (or <--data-dir>/events-outbox): name the flag.
    throw new Error(
      `--events-outbox-dir: cannot use ${JSON.stringify(settings.outboxDir)} for the event outbox: ${(err as Error).message}`,
    );
  }
  const publisher = new AmqpPublisher({
    url: settings.url,
    flag: settings.flag,
    exchange: settings.exchange,
    ...(settings.ca !== undefined ? { ca: settings.ca } : {}),
    outbox,
    logger,
    maxRetryMs: settings.maxRetryMs,
    onConfirmed: (key) => published.inc({ key }),
  });
  new Gauge({
    name: `${METRIC_PREFIX}events_outbox_events`,
    help: 'Mesh events in the outbox, not yet confirmed by the broker',
    registers: [registry],
    collect() {
      this.set(outbox.size);
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}events_outbox_bytes`,
    help: 'Bytes of the outbox segment files',
    registers: [registry],
    collect() {
      this.set(outbox.bytes);
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}events_broker_connected`,
    help: '1 while the event stream has a confirm channel to the broker',
    registers: [registry],
    collect() {
      this.set(publisher.connected ? 1 : 0);
    },
  });

  const emit = <K extends EventKey>(key: K, data: EventData[K], at?: string): void => {
    const id = randomUUID();
    const when = at ?? new Date().toISOString();
    outbox.append(key, id, (seq) => ({
      id,
      key,
      replica: settings.replica,
      seq,
      at: when,
      data,
    }));
  };

  const cleanups: Array<() => void> = [];
  cleanups.push(deps.hub.subscribe({ events: BUS_EVENTS }, (e) => fromBus(e, emit)));
  if (deps.leaves) {
    cleanups.push(
      deps.leaves.onIssued((leaf, renewed) =>
        emit(renewed ? 'cert.rotated' : 'cert.issued', certData(leaf)),
      ),
    );
  }
  if (deps.problems) {
    const problems = deps.problems;
    let seen = new Set<string>();
    const look = (): void => {
      const now = new Set<string>();
      for (const p of problems()) {
        const key = `${p.kind}\0${p.name}\0${p.message}`;
        now.add(key);
        if (!seen.has(key))
          emit('config.rejected', { kind: p.kind, name: p.name, message: p.message });
      }
      seen = now;
    };
    const timer = setInterval(look, PROBLEM_POLL_MS);
    timer.unref();
    cleanups.push(() => clearInterval(timer));
  }
  publisher.start();
  logger.info(
    {
      broker: settings.url.redacted,
      exchange: settings.exchange,
      outbox: settings.outboxDir,
      outboxMaxBytes: settings.outboxMaxBytes,
      replica: settings.replica,
      nextSeq: outbox.peekSeq(),
    },
    'event stream started',
  );

  return {
    outbox,
    publisher,
    emit,
    async stop() {
      for (const cleanup of cleanups.splice(0)) cleanup();
      // What was recorded up to now becomes durable, so the publisher sends it before closing.
      await outbox.flush();
      await publisher.stop();
      await outbox.close();
    },
  };
}

/** The bus events the stream carries (pushes and ACKs stay on the admin stream). */
const BUS_EVENTS: ReadonlySet<MeshEvent['event']> = new Set([
  'snapshot',
  'connect',
  'disconnect',
  'nack',
]);

function fromBus(e: MeshEvent, emit: RunningEventStream['emit']): void {
  switch (e.event) {
    case 'snapshot':
      emit(
        'mesh.changed',
        {
          version: e.version,
          ...(e.previous !== undefined ? { previous: e.previous } : {}),
          // As tail: an added resource is named, not spelled out (its whole JSON as one "field"
          // would make the first event of a large mesh megabytes long).
          resources: e.resources.map((r) => (r.change === 'added' ? { ...r, fields: [] } : r)),
          proxies: e.proxies,
        },
        e.at,
      );
      return;
    case 'connect':
      emit('proxy.connected', { node: e.node, mode: e.mode }, e.at);
      return;
    case 'disconnect':
      emit(
        'proxy.disconnected',
        { node: e.node, mode: e.mode, ...(e.reason !== undefined ? { reason: e.reason } : {}) },
        e.at,
      );
      return;
    case 'nack':
      emit(
        'proxy.nacked',
        { node: e.node, type: e.type, version: e.version, error: e.error },
        e.at,
      );
      return;
    default:
      return;
  }
}

function certData(leaf: IssuedLeaf): CertData {
  return {
    service: leaf.service,
    serial: leaf.serial,
    root: leaf.rootSerial,
    notBefore: leaf.notBefore.toISOString(),
    notAfter: leaf.notAfter.toISOString(),
  };
}
