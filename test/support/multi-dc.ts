// Helpers for failover tests across localities and datacenters (the locality and
// consul-multi-dc tests): a steady ~50 rps request loop through a sidecar across a change,
// what a sidecar's Envoy holds for a cluster (hosts with priority and health from /clusters,
// the applied ClusterLoadAssignment from config_dump), and what a Consul agent holds for a
// service (for failure messages).
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'vitest';
import type { ConsulAgent } from './consul.js';
import type { EnvoyHandle } from './envoy.js';
import type { Sidecar } from './mesh.js';
import { callThrough } from './traffic-app.js';

// ---- a steady request loop across a change ---------------------------------------------------

interface Shot {
  /** performance.now() when sent. */
  readonly sent: number;
  done: boolean;
  app?: string;
  status?: number;
  /** The start of the body of a non-2xx answer (Envoy's own says why). */
  body?: string;
  error?: string;
}

export interface LoadRun {
  readonly total: number;
  /** Requests sent before the change. */
  readonly before: number;
  /** Of those, the ones not answered (2xx) by `from`. */
  readonly beforeOff: number;
  /** Requests sent from the change on. */
  readonly after: number;
  /** Non-2xx answers and requests without an answer, over the whole loop. */
  readonly failed: number;
  /** Of those, the ones sent from the change on. */
  readonly failedAfter: number;
  /** The first 10 failures, with when they were sent relative to the change. */
  readonly failures: readonly string[];
  /** When each failed request was sent, ms relative to the change (negative: before it). */
  readonly failedAtMs: readonly number[];
  /**
   * From the change to the first request of the final run served by `to` (ms); undefined if
   * the loop ended without such a run of at least `settle` requests.
   */
  readonly switchMs?: number;
  /** After the change: requests served by `to` before the final run began (flip-flops). */
  readonly toBeforeSwitch: number;
  /** After the change, before the switch: requests answered by neither `from` nor `to`. */
  readonly strays: number;
  /** Answers per app over the whole loop ("(no answer)", "(envoy)" for the others). */
  readonly apps: Readonly<Record<string, number>>;
  /** How long the change itself took to run (ms), e.g. killing processes. */
  readonly changeMs: number;
}

const ok = (s: Shot): boolean =>
  s.done && s.error === undefined && s.status! >= 200 && s.status! < 300;

/**
 * Sends a request every 1000/rps ms through `caller` to `service`; `change` runs after `leadMs`.
 * Stops once `settle` requests in a row after the change were served by `to` (and at least
 * `minAfterMs` passed), or `maxAfterMs` after the change. Every request is awaited (5 s
 * timeout) before it returns.
 */
export async function loadAcross(
  caller: Sidecar,
  service: string,
  opts: {
    from: (app: string | undefined) => boolean;
    to: (app: string | undefined) => boolean;
    change: () => unknown;
    rps?: number;
    leadMs?: number;
    minAfterMs?: number;
    maxAfterMs?: number;
    settle?: number;
  },
): Promise<LoadRun> {
  const rps = opts.rps ?? 50;
  const leadMs = opts.leadMs ?? 1_000;
  const minAfterMs = opts.minAfterMs ?? 2_000;
  const maxAfterMs = opts.maxAfterMs ?? 10_000;
  const settle = opts.settle ?? 50;
  const shots: Shot[] = [];
  const pending: Promise<void>[] = [];
  const start = performance.now();
  let changeAt: number | undefined;
  let changeMs = 0;
  let changeDone: Promise<unknown> = Promise.resolve();

  /** Index (in `shots`) where the final `to` run after the change begins, if it is complete. */
  const runStart = (): number | undefined => {
    if (changeAt === undefined) return undefined;
    let end = shots.findIndex((s) => !s.done);
    if (end < 0) end = shots.length;
    let i = end;
    while (
      i > 0 &&
      shots[i - 1]!.sent >= changeAt &&
      ok(shots[i - 1]!) &&
      opts.to(shots[i - 1]!.app)
    )
      i--;
    return end - i >= settle ? i : undefined;
  };

  for (let k = 0; ; k++) {
    const wait = start + (k * 1000) / rps - performance.now();
    if (wait > 0) await sleep(wait);
    const now = performance.now();
    if (changeAt === undefined && now - start >= leadMs) {
      changeAt = now;
      const at = now;
      changeDone = Promise.resolve()
        .then(opts.change)
        .finally(() => (changeMs = performance.now() - at));
    }
    if (changeAt !== undefined) {
      const after = now - changeAt;
      if (after >= maxAfterMs || (after >= minAfterMs && runStart() !== undefined)) break;
    }
    const shot: Shot = { sent: now, done: false };
    shots.push(shot);
    pending.push(
      callThrough(caller, service, { timeoutMs: 5_000 }).then(
        (r) => {
          shot.app = r.app;
          shot.status = r.status;
          if (r.status < 200 || r.status > 299) shot.body = r.body.slice(0, 160);
          shot.done = true;
        },
        (err: Error) => {
          shot.error = err.message;
          shot.done = true;
        },
      ),
    );
  }
  await Promise.all(pending);
  await changeDone;

  const at = changeAt!;
  const before = shots.filter((s) => s.sent < at);
  const after = shots.filter((s) => s.sent >= at);
  let i = after.length;
  while (i > 0 && ok(after[i - 1]!) && opts.to(after[i - 1]!.app)) i--;
  const settled = after.length - i >= settle;
  const apps: Record<string, number> = {};
  for (const s of shots) {
    const key = s.app ?? (s.error !== undefined ? '(no answer)' : '(envoy)');
    apps[key] = (apps[key] ?? 0) + 1;
  }
  const failures = shots.filter((s) => !ok(s));
  const beforeSwitch = settled ? after.slice(0, i) : after;
  return {
    total: shots.length,
    before: before.length,
    beforeOff: before.filter((s) => !ok(s) || !opts.from(s.app)).length,
    after: after.length,
    failed: failures.length,
    failedAfter: after.filter((s) => !ok(s)).length,
    failedAtMs: failures.map((s) => s.sent - at),
    failures: failures
      .slice(0, 10)
      .map(
        (s) =>
          `+${(s.sent - at).toFixed(0)}ms: ${s.error ?? `HTTP ${s.status} ${JSON.stringify(s.body ?? '')}`}`,
      ),
    ...(settled ? { switchMs: after[i]!.sent - at } : {}),
    toBeforeSwitch: beforeSwitch.filter((s) => ok(s) && opts.to(s.app)).length,
    strays: beforeSwitch.filter((s) => ok(s) && !opts.to(s.app) && !opts.from(s.app)).length,
    apps,
    changeMs,
  };
}

/**
 * A failover as the issue allows it: every request before the change reached `from`, the loop
 * settled on `to`, at most `maxFailedShare` of its requests failed, and none reached a third app.
 */
export function expectFailover(run: LoadRun, maxFailedShare = 0.01): void {
  expect(run.beforeOff).toBe(0);
  expect(run.switchMs, JSON.stringify(run.apps)).toBeDefined();
  expect(run.failed / run.total, run.failures.join('\n')).toBeLessThanOrEqual(maxFailedShare);
  expect(run.strays).toBe(0);
}

/**
 * A way back as the issue asks: every request before the change reached `from`, the loop
 * settled on `to` within 10 s of the change, and not one request failed.
 */
export function expectCleanReturn(run: LoadRun): void {
  expect(run.beforeOff).toBe(0);
  expect(run.switchMs, JSON.stringify(run.apps)).toBeDefined();
  expect(run.switchMs!).toBeLessThan(10_000);
  expect(run.failed, run.failures.join('\n')).toBe(0);
}

/** A predicate for loadAcross: answered by one of these app names. */
export const among =
  (names: readonly string[]) =>
  (name: string | undefined): boolean =>
    name !== undefined && names.includes(name);

export const pct = (part: number, total: number): string =>
  `${((part / Math.max(1, total)) * 100).toFixed(1)} %`;
export const ms = (v: number | undefined): string =>
  v === undefined ? 'never' : `${v.toFixed(0)} ms`;

// ---- what a sidecar's Envoy holds ------------------------------------------------------------

export interface EnvoyHost {
  priority: number;
  /** health_flags as /clusters prints them: healthy, /failed_eds_health, /failed_outlier_check… */
  flags: string;
  hostname: string;
}

/** The hosts of a cluster in /clusters, by port (everything listens on 127.0.0.1). */
export async function envoyHosts(
  envoy: EnvoyHandle,
  cluster: string,
): Promise<Map<number, EnvoyHost>> {
  const hosts = new Map<number, EnvoyHost>();
  for (const line of (await envoy.clusters()).split('\n')) {
    const [name, host, field, value] = line.split('::');
    if (name !== cluster || !host || !/:\d+$/.test(host) || field === undefined) continue;
    const port = Number(host.slice(host.lastIndexOf(':') + 1));
    const h = hosts.get(port) ?? { priority: -1, flags: '', hostname: '' };
    if (field === 'priority') h.priority = Number(value);
    if (field === 'health_flags') h.flags = value ?? '';
    if (field === 'hostname') h.hostname = value ?? '';
    hosts.set(port, h);
  }
  return hosts;
}

/** healthy / unhealthy (EDS said so) / the flags as they are (ejected, ...). */
export function edsHealth(flags: string): string {
  if (flags === 'healthy') return 'healthy';
  if (flags === '/failed_eds_health') return 'unhealthy';
  return flags;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Dumped = Record<string, any>;

/** The ClusterLoadAssignment an Envoy applied for `cluster` (config_dump, snake_case). */
export async function envoyAssignment(
  envoy: EnvoyHandle,
  cluster: string,
): Promise<Dumped | undefined> {
  const dump = (await envoy.configDump()) as { configs: Dumped[] };
  for (const section of dump.configs) {
    for (const c of (section.dynamic_endpoint_configs ?? []) as Dumped[]) {
      if (c.endpoint_config?.cluster_name === cluster) return c.endpoint_config as Dumped;
    }
  }
  return undefined;
}

/** One line per priority group: `P1 dc2 [api-dc2-1-sidecar-proxy@21001 HEALTHY]; …`. */
export async function assignmentSummary(envoy: EnvoyHandle, cluster: string): Promise<string> {
  const cla = await envoyAssignment(envoy, cluster).catch(() => undefined);
  if (!cla) return '(no assignment)';
  const groups = ((cla.endpoints ?? []) as Dumped[]).map((g) => {
    const where = [g.locality?.region, g.locality?.zone].filter(Boolean).join('/');
    const hosts = ((g.lb_endpoints ?? []) as Dumped[]).map(
      (e) =>
        `${e.endpoint?.hostname}@${e.endpoint?.address?.socket_address?.port_value} ${e.health_status ?? 'UNKNOWN'}`,
    );
    return `P${g.priority ?? 0} ${where || '-'} [${hosts.join(', ')}]`;
  });
  const factor = (cla.policy?.overprovisioning_factor as number | undefined) ?? '(default 140)';
  return `${groups.join('; ')}; overprovisioning_factor ${factor}`;
}

/** `/clusters` lines of one cluster's hosts, for failure messages. */
export async function clusterLines(envoy: EnvoyHandle, cluster: string): Promise<string> {
  const lines = (await envoy.clusters().catch((e: Error) => e.message))
    .split('\n')
    .filter(
      (l) =>
        l.startsWith(`${cluster}::127.`) &&
        /::(priority|health_flags|hostname|cx_connect_fail|rq_success|rq_error)::/.test(l),
    );
  return lines.join('\n');
}

// ---- what Consul holds -----------------------------------------------------------------------

/**
 * `/v1/health/service/<service>` of an agent (optionally of another datacenter): every
 * instance with the status of each of its checks, e.g. `api-dc1-1 [api-dc1-1-ttl passing,
 * serfHealth passing]`.
 */
export async function consulHealth(
  agent: ConsulAgent,
  service: string,
  datacenter?: string,
): Promise<string> {
  const res = await agent
    .api('GET', `/v1/health/service/${service}${datacenter ? `?dc=${datacenter}` : ''}`)
    .catch((e: Error) => ({ status: 0, body: e.message }));
  if (res.status !== 200) return `HTTP ${res.status}: ${res.body.slice(0, 200)}`;
  const entries = JSON.parse(res.body) as Array<{
    Service: { ID: string; Port: number };
    Checks: Array<{ CheckID: string; Status: string }>;
  }>;
  return entries
    .map(
      (e) =>
        `${e.Service.ID}:${e.Service.Port} [${e.Checks.map((c) => `${c.CheckID} ${c.Status}`).join(', ')}]`,
    )
    .join('; ');
}
