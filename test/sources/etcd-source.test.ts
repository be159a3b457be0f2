// EtcdSource against a real etcd (Debian's etcd-server 3.4): list + watch, bad values, leases,
// an etcd restart, compaction while the watcher is cut off, a compacted watch, bursts of writes,
// user/password auth. Also the etcd flags, and `register`/`deregister` run in-process.
// Each test uses its own key prefix; tests in this file run one after another.
import { Command } from 'commander';
import { pino, type Logger } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Catalog } from '../../src/catalog/model.js';
import { deregisterCommand, registerCommand } from '../../src/cli/register-command.js';
import { EtcdSource, type EtcdSourceOptions } from '../../src/sources/etcd/etcd-source.js';
import {
  EtcdFlagError,
  etcdCliOptions,
  etcdFlags,
  etcdSourceFromFlags,
} from '../../src/sources/etcd/options.js';
import type { CatalogSink } from '../../src/sources/source.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { startEtcd, startTcpProxy, type EtcdHandle, type TcpProxy } from '../support/etcd.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

type SinkEvent = { kind: 'update'; catalog: Catalog; at: number } | { kind: 'error'; error: Error };

class RecordingSink implements CatalogSink {
  readonly events: SinkEvent[] = [];
  update(catalog: Catalog): void {
    this.events.push({ kind: 'update', catalog, at: Date.now() });
  }
  error(error: Error): void {
    this.events.push({ kind: 'error', error });
  }
  get updates(): Catalog[] {
    return this.events.flatMap((e) => (e.kind === 'update' ? [e.catalog] : []));
  }
  get errors(): Error[] {
    return this.events.flatMap((e) => (e.kind === 'error' ? [e.error] : []));
  }
  get last(): Catalog | undefined {
    return this.updates.at(-1);
  }
}

/** service → "id:port" list, a compact view of a catalog. */
function view(catalog: Catalog | undefined): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const s of catalog?.services ?? [])
    out[s.name] = s.instances.map((i) => `${i.id}:${i.port}`);
  return out;
}

let etcd: EtcdHandle;
const proxies: TcpProxy[] = [];
const sources: EtcdSource[] = [];
let seq = 0;

beforeAll(async () => {
  etcd = await startEtcd('source-test');
});

afterEach(async () => {
  await Promise.all(sources.splice(0).map((s) => s.stop()));
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});

afterAll(async () => {
  await etcd?.remove();
});

function newPrefix(): string {
  return `/t${++seq}/`;
}

async function put(prefix: string, path: string, value: unknown): Promise<void> {
  await etcd.client
    .put(`${prefix}services/${path}`)
    .value(typeof value === 'string' ? value : JSON.stringify(value));
}

async function del(prefix: string, path: string): Promise<void> {
  await etcd.client.delete().key(`${prefix}services/${path}`);
}

const inst = (port: number, extra: Record<string, unknown> = {}) => ({
  address: '127.0.0.1',
  port,
  ...extra,
});

async function startSource(
  prefix: string,
  opts: Partial<EtcdSourceOptions> = {},
  logger: Logger = silentLogger,
): Promise<{ source: EtcdSource; sink: RecordingSink }> {
  const source = new EtcdSource(
    { endpoints: [etcd.endpoint], prefix, retryMinMs: 100, retryMaxMs: 500, ...opts },
    logger,
  );
  sources.push(source);
  const sink = new RecordingSink();
  await source.start(sink);
  return { source, sink };
}

function captureLogs(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: 'debug' },
    { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) },
  );
  return { logger, lines };
}

function until<T>(
  what: string,
  check: () => T | undefined | false,
  timeoutMs = 10_000,
  details?: () => string,
) {
  return waitFor(check, { what, timeoutMs, intervalMs: 20, details });
}

describe('EtcdSource (real etcd)', () => {
  it('delivers the first catalog only after a complete list, then every change from the watch', async () => {
    const prefix = newPrefix();
    await put(prefix, 'api', { protocol: 'grpc' });
    await put(prefix, 'api/api-1', inst(9001, { sidecarPort: 19001, tags: ['v1'] }));
    await put(prefix, 'web/web-1', inst(8001, { id: 'web-1', meta: { zone: 'a' } }));
    await put(prefix, 'web/web-2', inst(8002, { health: 'warning' }));
    await etcd.client.put(`${prefix}other/thing`).value('not ours, ignored');

    // Page size 2: the list takes several pages, all pinned to one revision.
    const { source, sink } = await startSource(prefix, { pageSize: 2 });
    expect(sink.events.map((e) => e.kind)).toEqual(['update']);
    expect(sink.last).toEqual({
      services: [
        {
          name: 'api',
          protocol: 'grpc',
          instances: [
            {
              id: 'api-1',
              address: '127.0.0.1',
              port: 9001,
              sidecarPort: 19001,
              health: 'passing',
              tags: ['v1'],
              meta: {},
            },
          ],
        },
        {
          name: 'web',
          protocol: 'http',
          instances: [
            {
              id: 'web-1',
              address: '127.0.0.1',
              port: 8001,
              health: 'passing',
              tags: [],
              meta: { zone: 'a' },
            },
            {
              id: 'web-2',
              address: '127.0.0.1',
              port: 8002,
              health: 'warning',
              tags: [],
              meta: {},
            },
          ],
        },
      ],
    });

    await put(prefix, 'web/web-3', inst(8003));
    await until('web-3 added', () => view(sink.last).web?.includes('web-3:8003'));
    await put(prefix, 'web/web-1', inst(8011));
    await until('web-1 moved', () => view(sink.last).web?.includes('web-1:8011'));
    await del(prefix, 'web/web-2');
    await until('web-2 removed', () => !view(sink.last).web?.includes('web-2:8002'));
    await del(prefix, 'api');
    await until('api back to http', () => sink.last?.services[0]?.protocol === 'http');
    expect(view(sink.last)).toEqual({ api: ['api-1:9001'], web: ['web-1:8011', 'web-3:8003'] });
    expect(sink.errors).toEqual([]);
    expect(source.status()).toMatchObject({ lists: 1, events: 4, failures: 0, watching: true });
    // Deleting the last instance of a service without settings removes the service.
    await del(prefix, 'api/api-1');
    await until('api removed', () => view(sink.last).api === undefined);
  });

  it('skips a bad value with a log line naming the key and the problem; the rest keeps working', async () => {
    const prefix = newPrefix();
    const { logger, lines } = captureLogs();
    await put(prefix, 'web/web-1', inst(8001));
    await put(prefix, 'web/web-2', '{"address": "127.0.0.1", port: 8002');
    await put(prefix, 'web/web-3', inst(8003, { port: '80a' }));
    await put(prefix, 'web/web-4', inst(8004, { id: 'web-44' }));
    await put(prefix, 'web/web-5', inst(8005, { colour: 'blue' }));
    await put(prefix, 'Bad_Name/x-1', inst(8006));
    await put(prefix, 'web/a/b', inst(8007));
    await put(prefix, 'tcpy', { protocol: 'tcp' }); // tcp needs an outboundPort
    await put(prefix, 'tcpy/tcpy-1', inst(8008));
    await put(prefix, 'other/web-1', inst(8009)); // id already used by service web

    const { sink } = await startSource(prefix, {}, logger);
    expect(view(sink.last)).toEqual({ web: ['web-1:8001'] });

    const problems = new Map<string, string>();
    for (const l of lines) {
      if (l.level === 40 && typeof l.key === 'string') problems.set(l.key, String(l.problem));
    }
    const k = (p: string) => `${prefix}services/${p}`;
    expect(problems.get(k('web/web-2'))).toMatch(/^not JSON/);
    expect(problems.get(k('web/web-3'))).toBe('port: expected integer 1-65535, got "80a"');
    expect(problems.get(k('web/web-4'))).toBe(
      'id: "web-44" does not match the instance id in the key ("web-4")',
    );
    expect(problems.get(k('web/web-5'))).toMatch(/colour/);
    expect(problems.get(k('Bad_Name/x-1'))).toMatch(/DNS label/);
    expect(problems.get(k('web/a/b'))).toMatch(/expected .*services\/<service>\/<instance-id>/);
    expect(problems.get(k('tcpy'))).toMatch(/^outboundPort: required for tcp services/);
    expect(problems.get(k('tcpy/tcpy-1'))).toMatch(/settings at .*tcpy are invalid/);
    expect(problems.get(k('other/web-1'))).toMatch(/"web-1" is already registered at .*web\/web-1/);
    expect(sink.errors).toEqual([]);

    // Fixing values brings them in; a bad new value takes its key out, and nothing else.
    await put(prefix, 'web/web-3', inst(8003));
    await put(prefix, 'tcpy', { protocol: 'tcp', outboundPort: 15100 });
    await until('web-3 and tcpy in', () => {
      const v = view(sink.last);
      return v.web?.includes('web-3:8003') && v.tcpy?.includes('tcpy-1:8008');
    });
    const before = lines.length;
    await put(prefix, 'web/web-1', '[1, 2]');
    await until('web-1 out', () => !view(sink.last).web?.includes('web-1:8001'));
    expect(view(sink.last)).toEqual({
      other: ['web-1:8009'],
      tcpy: ['tcpy-1:8008'],
      web: ['web-3:8003'],
    });
    const logged = lines.slice(before).filter((l) => l.key === k('web/web-1'));
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ level: 40, problem: 'expected a JSON object, got [1,2]' });
  });

  it('removes an instance whose lease expires', async () => {
    const prefix = newPrefix();
    const { sink } = await startSource(prefix);
    const lease = etcd.client.lease(2, { autoKeepAlive: false });
    await lease.put(`${prefix}services/web/web-1`).value(JSON.stringify(inst(8001)));
    const added = await until('web-1 added', () => view(sink.last).web?.length === 1 && Date.now());
    await until('web-1 expired', () => view(sink.last).web === undefined, 15_000);
    const took = Date.now() - added;
    expect(took).toBeGreaterThan(1_000);
    expect(took).toBeLessThan(6_000);
  });

  it('starts while etcd is unreachable: reports it, delivers nothing, then the first complete catalog', async () => {
    const prefix = newPrefix();
    await put(prefix, 'web/web-1', inst(8001));
    const proxy = await startTcpProxy(etcd.clientPort);
    proxies.push(proxy);
    await proxy.cut();
    const { source, sink } = await startSource(prefix, { endpoints: [proxy.endpoint] });
    expect(sink.updates).toEqual([]);
    expect(sink.errors.length).toBeGreaterThanOrEqual(1);
    expect(sink.errors[0]!.message).toMatch(/no catalog yet \(not ready\); retrying/);
    expect(sink.errors[0]!.message).toContain(proxy.endpoint);
    await new Promise((r) => setTimeout(r, 800));
    expect(sink.updates).toEqual([]);
    await proxy.restore();
    await until('first catalog', () => sink.updates.length > 0, 10_000);
    expect(view(sink.updates[0])).toEqual({ web: ['web-1:8001'] });
    await until('watching', () => source.status().watching);
    expect(source.status()).toMatchObject({ lists: 1, failures: 0 });
  });

  it('survives an etcd restart: keeps the last catalog, recovers by itself, later changes propagate', async () => {
    const prefix = newPrefix();
    await put(prefix, 'web/web-1', inst(8001));
    await put(prefix, 'web/web-2', inst(8002));
    const { source, sink } = await startSource(prefix);
    const mark = sink.events.length;
    await etcd.stop();
    await until('error reported', () => sink.errors.length > 0);
    await new Promise((r) => setTimeout(r, 1_000));
    // Down: errors only, no update at all (so certainly no empty one).
    expect(sink.events.slice(mark).every((e) => e.kind === 'error')).toBe(true);
    expect(sink.errors[0]!.message).toMatch(/serving the last good catalog; retrying/);

    await etcd.restart();
    await until(
      're-listed after restart',
      () => source.status().lists >= 2 && source.status().watching,
    );
    await put(prefix, 'web/web-3', inst(8003));
    await until('change after restart', () => view(sink.last).web?.includes('web-3:8003'));
    for (const c of sink.updates)
      expect(view(c).web).toEqual(expect.arrayContaining(['web-1:8001', 'web-2:8002']));
    expect(source.status().failures).toBe(0);
  });

  it('catches up by re-listing when changes and a compaction happened while the watcher was cut off', async () => {
    const prefix = newPrefix();
    const proxy = await startTcpProxy(etcd.clientPort);
    proxies.push(proxy);
    await put(prefix, 'web/web-1', inst(8001));
    await put(prefix, 'web/web-2', inst(8002));
    const { source, sink } = await startSource(prefix, { endpoints: [proxy.endpoint] });
    expect(view(sink.last)).toEqual({ web: ['web-1:8001', 'web-2:8002'] });

    await proxy.cut();
    await until('cut noticed', () => sink.errors.length > 0);
    await del(prefix, 'web/web-1');
    for (let port = 8100; port < 8110; port++) await put(prefix, 'web/web-2', inst(port));
    await put(prefix, 'api/api-1', inst(9001));
    const compacted = await etcd.compact();
    const updatesWhileDown = sink.updates.length;

    await proxy.restore();
    await until('caught up', () => view(sink.last).api !== undefined);
    expect(view(sink.last)).toEqual({ api: ['api-1:9001'], web: ['web-2:8109'] });
    // One update for the catch-up, straight to the current state.
    expect(sink.updates.length).toBe(updatesWhileDown + 1);
    expect(source.status().revision).toBeGreaterThanOrEqual(compacted);
    // And the new watch is live.
    await put(prefix, 'web/web-3', inst(8003));
    await until('live again', () => view(sink.last).web?.includes('web-3:8003'));
  });

  it('re-lists when the watch start revision has been compacted (without reporting a failure)', async () => {
    const prefix = newPrefix();
    await put(prefix, 'web/web-1', inst(8001));
    let first = true;
    const { source, sink } = await startSource(prefix, {
      // Between the list and the watch: two changes, then a compaction past the list revision.
      afterList: async () => {
        if (!first) return;
        first = false;
        await put(prefix, 'web/web-2', inst(8002));
        await put(prefix, 'web/web-3', inst(8003));
        await etcd.compact();
      },
    });
    await until('re-listed', () => view(sink.last).web?.length === 3);
    expect(view(sink.last)).toEqual({ web: ['web-1:8001', 'web-2:8002', 'web-3:8003'] });
    expect(source.status()).toMatchObject({ compactions: 1, lists: 2, failures: 0 });
    expect(sink.errors).toEqual([]);
    await put(prefix, 'web/web-4', inst(8004));
    await until('watching', () => view(sink.last).web?.includes('web-4:8004'));
  });

  it('applies a burst of concurrent writes exactly once each, ending equal to etcd', async () => {
    const prefix = newPrefix();
    const { source, sink } = await startSource(prefix);
    const eventsBefore = source.status().events;
    let revisions = 0; // writes that created a revision (a delete of a missing key does not)
    let lastRevision = 0;
    const ops = Array.from({ length: 400 }, (_, i) => async () => {
      const id = `w-${i % 37}`;
      if (i % 5 === 4) {
        const res = await etcd.client.delete().key(`${prefix}services/web/${id}`);
        revisions += Number(res.deleted);
        lastRevision = Math.max(lastRevision, Number(res.header.revision));
      } else {
        const res = await etcd.client
          .put(
            `${prefix}services/${i % 3 === 0 ? 'api' : 'web'}/${i % 3 === 0 ? 'a' : 'w'}-${i % 37}`,
          )
          .value(JSON.stringify(inst(10_000 + i)))
          .exec();
        revisions++;
        lastRevision = Math.max(lastRevision, Number(res.header.revision));
      }
    });
    // 16 writers at a time.
    const queue = [...ops];
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let op = queue.shift(); op; op = queue.shift()) await op();
      }),
    );
    await until('source at the last revision', () => source.status().revision >= lastRevision);
    const all = await etcd.client.getAll().prefix(`${prefix}services/`).strings();
    const expected: Record<string, string[]> = {};
    for (const [key, value] of Object.entries(all).sort(([a], [b]) => (a < b ? -1 : 1))) {
      const [service, id] = key.slice(`${prefix}services/`.length).split('/') as [string, string];
      (expected[service] ??= []).push(`${id}:${(JSON.parse(value) as { port: number }).port}`);
    }
    await until(
      'last catalog delivered',
      () => JSON.stringify(view(sink.last)) === JSON.stringify(expected),
    );
    // Every write seen exactly once: as many events as revisions, no re-list needed.
    expect(source.status().events - eventsBefore).toBe(revisions);
    expect(source.status()).toMatchObject({ lists: 1, failures: 0 });
  });

  it('ends equal to etcd after a burst of writes with a connection cut in the middle', async () => {
    const prefix = newPrefix();
    const proxy = await startTcpProxy(etcd.clientPort);
    proxies.push(proxy);
    const { source, sink } = await startSource(prefix, { endpoints: [proxy.endpoint] });
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < 300; i++) {
      const key = `${prefix}services/web/w-${i % 23}`;
      writes.push(
        i % 4 === 3
          ? etcd.client.delete().key(key).exec()
          : etcd.client
              .put(key)
              .value(JSON.stringify(inst(20_000 + i)))
              .exec(),
      );
      if (i === 100) await proxy.cut();
      if (i === 200) await proxy.restore();
      if (i % 20 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    await Promise.all(writes);
    const all = await etcd.client.getAll().prefix(`${prefix}services/web/`).strings();
    const expected = Object.entries(all)
      .map(
        ([key, value]) => `${key.split('/').pop()}:${(JSON.parse(value) as { port: number }).port}`,
      )
      .sort();
    await until(
      'caught up with etcd',
      () => JSON.stringify([...(view(sink.last).web ?? [])].sort()) === JSON.stringify(expected),
      10_000,
      () =>
        `status ${JSON.stringify(source.status())}\nexpected ${expected.join(' ')}\n` +
        `got      ${(view(sink.last).web ?? []).join(' ')}`,
    );
    expect(source.status().lists).toBeGreaterThanOrEqual(2);
  });
});

describe('etcd flags', () => {
  const parse = (args: string[], env: Record<string, string> = {}) => {
    const cmd = new Command('t').exitOverride();
    for (const o of etcdCliOptions()) cmd.addOption(o);
    const saved = { ...process.env };
    Object.assign(process.env, env);
    try {
      cmd.parse(args, { from: 'user' });
    } finally {
      for (const k of Object.keys(env)) delete process.env[k];
      Object.assign(process.env, saved);
    }
    return cmd.opts();
  };

  it('has defaults, reads ETCD_ENDPOINTS, and lets flags win', () => {
    expect(etcdFlags(parse([]))).toEqual({
      connection: { endpoints: ['http://127.0.0.1:2379'] },
      prefix: '/lucid-mesh/',
    });
    expect(
      etcdFlags(parse([], { ETCD_ENDPOINTS: 'http://10.0.0.1:2379, 10.0.0.2' })).connection
        .endpoints,
    ).toEqual(['http://10.0.0.1:2379', 'http://10.0.0.2:2379']);
    expect(
      etcdFlags(parse(['--etcd', 'http://a:1', '--etcd-prefix', '/x'], { ETCD_ENDPOINTS: 'b' })),
    ).toEqual({ connection: { endpoints: ['http://a:1'] }, prefix: '/x/' });
    expect(
      etcdFlags(parse(['--etcd-user', 'root', '--etcd-password', 'pw'])).connection.auth,
    ).toEqual({ username: 'root', password: 'pw' });
  });

  it('names the flag and the value in every error', () => {
    const problem = (args: string[]) => {
      try {
        etcdSourceFromFlags(parse(args), silentLogger);
        return 'no error';
      } catch (err) {
        expect(err).toBeInstanceOf(EtcdFlagError);
        return (err as Error).message;
      }
    };
    expect(problem(['--etcd', 'ftp://x:1'])).toBe(
      '--etcd: expected an http:// or https:// URL, got "ftp://x:1"',
    );
    expect(problem(['--etcd', ' , '])).toBe(
      '--etcd: expected one or more etcd URLs (http://host:port), got " , "',
    );
    expect(problem(['--etcd', 'http://a:1,https://b:2'])).toMatch(/^--etcd: all endpoints must/);
    expect(problem(['--etcd', 'http://a:1/v3'])).toBe(
      '--etcd: expected scheme://host:port only, got "http://a:1/v3"',
    );
    expect(problem(['--etcd-prefix', 'a b'])).toMatch(/^--etcd-prefix: .*got "a b"$/);
    expect(problem(['--etcd-cacert', '/nonexistent/ca.pem'])).toMatch(
      /^--etcd-cacert: TLS files need https:\/\/ endpoints/,
    );
    expect(problem(['--etcd', 'https://a:1', '--etcd-cacert', '/nonexistent/ca.pem'])).toBe(
      '--etcd-cacert: cannot read "/nonexistent/ca.pem": ENOENT',
    );
    expect(problem(['--etcd-cert', 'c.pem'])).toBe('--etcd-cert: needs --etcd-key as well');
    expect(problem(['--etcd-password', 'pw'])).toBe('--etcd-password: needs --etcd-user as well');
    expect(problem([])).toBe('no error');
  });
});

describe('lucid-mesh register / deregister (in-process, real etcd)', () => {
  class Exit extends Error {
    constructor(readonly code: number) {
      super(`exit ${code}`);
    }
  }
  async function run(
    command: 'register' | 'deregister',
    args: string[],
  ): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const io = {
      stdout: (s: string) => void (out += s),
      stderr: (s: string) => void (err += s),
      exit: (code: number): never => {
        throw new Exit(code);
      },
    };
    const cmd = command === 'register' ? registerCommand(io) : deregisterCommand(io);
    try {
      await cmd.parseAsync(args, { from: 'user' });
      return { code: 0, out, err };
    } catch (e) {
      if (e instanceof Exit) return { code: e.code, out, err };
      throw e;
    }
  }
  const base = (prefix: string) => [
    '--service',
    'web',
    '--id',
    'web-1',
    '--address',
    '127.0.0.1',
    '--port',
    '8080',
    '--etcd',
    etcd.endpoint,
    '--etcd-prefix',
    prefix,
  ];

  it('writes the validated instance (and service settings) as the source reads them', async () => {
    const prefix = newPrefix();
    const res = await run('register', [
      ...base(prefix),
      '--sidecar-port',
      '15006',
      '--health',
      'warning',
      '--tag',
      'v1',
      '--tag',
      'canary',
      '--meta',
      'zone=a',
      '--meta',
      'note=x=y',
      '--protocol',
      'grpc',
    ]);
    expect(res).toMatchObject({ code: 0, err: '' });
    expect(res.out).toContain(`registered web-1 (service web) at ${prefix}services/web/web-1`);
    expect(JSON.parse((await etcd.client.get(`${prefix}services/web/web-1`).string())!)).toEqual({
      id: 'web-1',
      address: '127.0.0.1',
      port: 8080,
      sidecarPort: 15006,
      health: 'warning',
      tags: ['v1', 'canary'],
      meta: { zone: 'a', note: 'x=y' },
    });
    expect(await etcd.client.get(`${prefix}services/web`).string()).toBe('{"protocol":"grpc"}');
    const { sink } = await startSource(prefix);
    expect(sink.last?.services).toMatchObject([
      { name: 'web', protocol: 'grpc', instances: [{ id: 'web-1', sidecarPort: 15006 }] },
    ]);

    // The same id in another service is refused; deregister removes; again is a no-op.
    const taken = await run('register', [...base(prefix).map((a) => (a === 'web' ? 'api' : a))]);
    expect(taken.code).toBe(1);
    expect(taken.err).toMatch(/--id: instance id "web-1" is already registered in service "web"/);
    const gone = await run('deregister', [
      '--service',
      'web',
      '--id',
      'web-1',
      '--etcd',
      etcd.endpoint,
      '--etcd-prefix',
      prefix,
    ]);
    expect(gone).toMatchObject({ code: 0 });
    expect(gone.out).toContain('deregistered web-1');
    await until('web-1 gone', () => sink.last?.services[0]?.instances.length === 0);
    const again = await run('deregister', [
      '--service',
      'web',
      '--id',
      'web-1',
      '--etcd',
      etcd.endpoint,
      '--etcd-prefix',
      prefix,
    ]);
    expect(again.out).toContain('was not registered');
  });

  it('--local-app-idle-timeout-ms: written with the service settings, read by the source', async () => {
    const prefix = newPrefix();
    const res = await run('register', [
      ...base(prefix),
      '--protocol',
      'http2',
      '--local-app-idle-timeout-ms',
      '3000',
    ]);
    expect(res).toMatchObject({ code: 0, err: '' });
    expect(await etcd.client.get(`${prefix}services/web`).string()).toBe(
      '{"protocol":"http2","localAppIdleTimeoutMs":3000}',
    );
    const { sink } = await startSource(prefix);
    expect(sink.last?.services).toMatchObject([
      { name: 'web', protocol: 'http2', localAppIdleTimeoutMs: 3000 },
    ]);
  });

  it('rejects bad flags with exit code 2 and a message naming the flag, before touching etcd', async () => {
    const prefix = newPrefix();
    const cases: Array<[string[], RegExp]> = [
      [['--port', '80a'], /--port: expected integer 1-65535, got "80a"/],
      [['--address', 'localhost'], /--address: expected an IPv4 or IPv6 address, got "localhost"/],
      [['--service', 'Web_1'], /--service: expected a DNS label .*got "Web_1"/],
      [['--id', '-x'], /--id: expected an id of letters, digits/],
      [['--health', 'ok'], /--health: expected one of passing \| warning \| critical, got "ok"/],
      [['--meta', 'novalue'], /--meta: expected key=value, got "novalue"/],
      [['--protocol', 'tcp'], /--outbound-port: required for tcp services/],
      [['--outbound-port', '9000'], /--outbound-port: only valid for tcp services/],
      [
        ['--local-app-idle-timeout-ms', '4s'],
        /--local-app-idle-timeout-ms: expected milliseconds 0-86400000, got "4s"/,
      ],
      [['--ttl', '1.5'], /--ttl: expected whole seconds/],
      [['--etcd', 'nope://x'], /--etcd: expected an http:\/\/ or https:\/\/ URL/],
    ];
    for (const [extra, message] of cases) {
      const res = await run('register', [...base(prefix), ...extra]);
      expect(res.code, extra.join(' ')).toBe(2);
      expect(res.err, extra.join(' ')).toMatch(message);
      expect(res.err.startsWith('lucid-mesh register: '), res.err).toBe(true);
    }
    const missing = await run('register', ['--service', 'web']);
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/required option '--id <id>' not specified/);
    expect(await etcd.client.getAll().prefix(prefix).keys()).toEqual([]);
  });

  it('fails with exit code 1 naming the endpoint when etcd is unreachable', async () => {
    const port = await freePort(); // nothing listens there
    const res = await run('register', [
      ...base('/x/').slice(0, 8),
      '--etcd',
      `http://127.0.0.1:${port}`,
    ]);
    expect(res.code).toBe(1);
    expect(res.err).toMatch(
      new RegExp(
        `cannot register web-1 \\(service web\\): etcd http://127.0.0.1:${port}: 14 UNAVAILABLE`,
      ),
    );
  });
});

describe('etcd with authentication', () => {
  let secured: EtcdHandle;
  beforeAll(async () => {
    secured = await startEtcd('auth-test');
    await secured.etcdctl(['user', 'add', 'root:s3cret']);
    await secured.etcdctl(['auth', 'enable']);
    await secured.etcdctl([
      '--user',
      'root:s3cret',
      'put',
      '/lucid-mesh/services/web/web-1',
      '{"address": "127.0.0.1", "port": 8080}',
    ]);
  });
  afterAll(async () => {
    await secured?.remove();
  });

  it('lists and watches with --etcd-user/--etcd-password; a wrong password is reported', async () => {
    const good = etcdSourceFromFlags(
      { etcd: secured.endpoint, etcdUser: 'root', etcdPassword: 's3cret' },
      silentLogger,
    ) as EtcdSource;
    sources.push(good);
    const sink = new RecordingSink();
    await good.start(sink);
    expect(view(sink.last)).toEqual({ web: ['web-1:8080'] });
    await secured.etcdctl([
      '--user',
      'root:s3cret',
      'put',
      '/lucid-mesh/services/web/web-2',
      '{"address": "127.0.0.1", "port": 8081}',
    ]);
    await until('watch event with auth', () => view(sink.last).web?.length === 2);

    const bad = etcdSourceFromFlags(
      { etcd: secured.endpoint, etcdUser: 'root', etcdPassword: 'wrong' },
      silentLogger,
    ) as EtcdSource;
    sources.push(bad);
    const badSink = new RecordingSink();
    await bad.start(badSink);
    expect(badSink.updates).toEqual([]);
    expect(badSink.errors[0]?.message).toMatch(/authentication failed/i);
  });
});
