// A load-client worker (child process): runs a share of the simulated sidecars and reports to
// the harness over IPC. Several of these run side by side so the client is not the bottleneck;
// each reports its own CPU so a reader can check.
import { nowMs, type WorkerEvent, type WorkerMessage, type WorkerStats } from './protocol.js';
import { createSidecar, type ArmedWatch, type Sidecar, type SidecarHooks } from './sidecar.js';
import { checkFieldNumbers, type NodeInfo } from './wire.js';

checkFieldNumbers();

const sidecars: Sidecar[] = [];
const active = new Map<string, ArmedWatch[]>();
type WorkerWatch = ArmedWatch & { detail: boolean; expected: number };
const watches = new Map<number, WorkerWatch>();
const configuredTimes: number[] = [];
let configuredCount = 0;
let openedAt = 0;
const counters = {
  responses: 0,
  responseBytes: 0,
  requests: 0,
  streamErrors: 0,
};
const anomalies: string[] = [];
let failovers = 0;
/** Soak (reconnecting sidecars): the parameters `open` was given, and the reopen timers. */
let opened: Extract<WorkerMessage, { op: 'open' }> | undefined;
const soak = {
  timers: new Map<number, NodeJS.Timeout>(),
  reconnects: 0,
  reconfigured: 0,
};

function newSidecar(index: number): Sidecar {
  const m = opened!;
  const p = m.proxies[index]!;
  const node: NodeInfo = {
    id: p.nodeId,
    service: p.service,
    outboundPort: m.outboundPort,
    // As `lucid-mesh bootstrap` writes it: delta sidecars take VHDS (docs/vhds.md).
    ...(m.mode === 'delta' ? { vhds: true } : {}),
  };
  return createSidecar(m.mode, {
    index,
    node,
    target: m.target,
    hooks,
    ...(m.failover ? { failover: m.failover } : {}),
  });
}

/** Closes sidecar `index`'s stream (client-caused: not a stream error) after a random lifetime and reopens it. */
function scheduleReopen(index: number, minMs: number, maxMs: number): void {
  const life = minMs + Math.random() * (maxMs - minMs);
  const timer = setTimeout(() => {
    sidecars[index]!.close();
    const next = newSidecar(index);
    sidecars[index] = next;
    soak.reconnects++;
    next.start();
    scheduleReopen(index, minMs, maxMs);
  }, life);
  soak.timers.set(index, timer);
}

function send(event: WorkerEvent): void {
  process.send?.(event);
}

function noteAnomaly(message: string): void {
  if (anomalies.length < 20) anomalies.push(message);
}

function summarize(w: WorkerWatch): WorkerEvent {
  let min = Infinity;
  let max = -Infinity;
  const times: number[] = [];
  for (const t of w.times) {
    if (t === 0) continue;
    if (t < min) min = t;
    if (t > max) max = t;
    if (w.detail) times.push(t);
  }
  return {
    ev: 'detected',
    watchId: w.watchId,
    count: w.count,
    min,
    max,
    ...(w.detail ? { times } : {}),
  };
}

function finishWatch(w: WorkerWatch): void {
  watches.delete(w.watchId);
  const list = active.get(w.kind);
  if (list) {
    const i = list.indexOf(w);
    if (i >= 0) list.splice(i, 1);
  }
}

const hooks: SidecarHooks = {
  activeWatches: (kind) => active.get(kind) ?? [],
  detected(w, index, at) {
    if (w.times[index] !== 0) return;
    w.times[index] = at;
    w.count++;
    if (w.count === watches.get(w.watchId)?.expected) {
      const full = watches.get(w.watchId);
      if (full) {
        finishWatch(full);
        send(summarize(full));
      }
    }
  },
  configured(index, at) {
    if (configuredCount >= sidecars.length) {
      // A reopened stream (soak): the storm's report went out already.
      soak.reconfigured++;
      return;
    }
    configuredTimes[index] = at;
    configuredCount++;
    if (configuredCount === sidecars.length) {
      send({
        ev: 'configured',
        times: configuredTimes,
        openedAt,
        connected: sidecars.map((s) => s.stages.connected),
        firstResponse: sidecars.map((s) => s.stages.firstResponse),
      });
    }
  },
  response(bytes) {
    counters.responses++;
    counters.responseBytes += bytes;
  },
  request() {
    counters.requests++;
  },
  reconnecting() {
    failovers++;
  },
  anomaly: noteAnomaly,
  streamError(index, message) {
    counters.streamErrors++;
    noteAnomaly(`stream ${index}: ${message}`);
  },
};

function stats(): WorkerStats {
  const cpu = process.cpuUsage();
  return {
    cpuUserUs: cpu.user,
    cpuSystemUs: cpu.system,
    rss: process.memoryUsage.rss(),
    streams: sidecars.length,
    configured: configuredCount,
    ...counters,
    anomalies: [...anomalies],
    reconnects: soak.reconnects,
    reconfigured: soak.reconfigured,
    configuredNow: sidecars.filter((s) => s.configuredAt > 0).length,
    failovers,
  };
}

function digests(byService: boolean): Record<string, { digests: Record<string, number> }> {
  const out: Record<string, { digests: Record<string, number> }> = {};
  for (const [i, s] of sidecars.entries()) {
    const prefix = byService ? `${opened!.proxies[i]!.service}|` : '';
    for (const [kind, digest] of Object.entries(s.digests())) {
      const d = prefix + digest;
      const entry = (out[kind] ??= { digests: {} });
      entry.digests[d] = (entry.digests[d] ?? 0) + 1;
    }
  }
  return out;
}

function handle(msg: WorkerMessage): unknown {
  switch (msg.op) {
    case 'open': {
      openedAt = nowMs();
      opened = msg;
      msg.proxies.forEach((_, index) => sidecars.push(newSidecar(index)));
      configuredTimes.length = sidecars.length;
      // All at once: the storm is the point.
      for (const s of sidecars) s.start();
      return { openedAt };
    }
    case 'watch': {
      for (const spec of msg.watches) {
        const audience = spec.audience ? new Set(spec.audience) : undefined;
        const w: WorkerWatch = {
          watchId: spec.watchId,
          kind: spec.kind,
          name: spec.name,
          nameBuf: Buffer.from(spec.name),
          marker: Buffer.from(spec.marker),
          present: spec.present,
          times: new Float64Array(sidecars.length),
          count: 0,
          detail: spec.detail,
          expected: audience
            ? (opened?.proxies ?? []).filter((p) => audience.has(p.service)).length
            : sidecars.length,
        };
        if (w.expected === 0) {
          // None of this worker's sidecars should see it: done already.
          send(summarize(w));
          continue;
        }
        watches.set(w.watchId, w);
        const list = active.get(w.kind) ?? [];
        list.push(w);
        active.set(w.kind, list);
      }
      return { armed: msg.watches.length };
    }
    case 'unwatch': {
      // Gives up on watches that did not complete (timeouts): what was seen so far.
      const out: WorkerEvent[] = [];
      for (const id of msg.watchIds) {
        const w = watches.get(id);
        if (!w) continue;
        finishWatch(w);
        out.push(summarize(w));
      }
      return out;
    }
    case 'stats':
      return stats();
    case 'digest':
      return digests(msg.byService === true);
    case 'soakStart': {
      for (let i = 0; i < sidecars.length; i++) scheduleReopen(i, msg.minMs, msg.maxMs);
      return { started: sidecars.length };
    }
    case 'soakStop': {
      for (const t of soak.timers.values()) clearTimeout(t);
      soak.timers.clear();
      return stats();
    }
    case 'close': {
      for (const t of soak.timers.values()) clearTimeout(t);
      for (const s of sidecars) s.close();
      setTimeout(() => process.exit(0), 50);
      return stats();
    }
  }
}

process.on('message', (msg: WorkerMessage) => {
  try {
    send({ ev: 'reply', id: msg.id, body: handle(msg) });
  } catch (err) {
    send({ ev: 'reply', id: msg.id, body: { error: (err as Error).message } });
  }
});
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
