// FileSource against real files in a temp directory and a real chokidar watcher.
import { mkdtemp, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { waitFor as poll } from '../support/wait.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Catalog } from '../../src/catalog/model.js';
import { FileSource } from '../../src/sources/file-source.js';
import type { CatalogSink } from '../../src/sources/source.js';
import { silentLogger } from '../../src/telemetry/logger.js';

type SinkEvent = { kind: 'update'; catalog: Catalog } | { kind: 'error'; error: Error };

class RecordingSink implements CatalogSink {
  readonly events: SinkEvent[] = [];
  update(catalog: Catalog): void {
    this.events.push({ kind: 'update', catalog });
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
  /** Kinds of the events after index `from`, e.g. ['error', 'update']. */
  kindsSince(from: number): string[] {
    return this.events.slice(from).map((e) => e.kind);
  }
}

/** Polls until `check` returns a value (not undefined/false); fails after `timeoutMs`. */
const waitFor = <T>(what: string, check: () => T | undefined | false, timeoutMs = 10_000) =>
  poll(check, { what, timeoutMs, intervalMs: 20 });

/** The (single) instance port of service `hello`, a compact way to tell versions apart. */
function helloPort(catalog: Catalog | undefined): number | undefined {
  return catalog?.services.find((s) => s.name === 'hello')?.instances[0]?.port;
}

function catalogYaml(port: number | string, extra = ''): string {
  return `# test catalog
services:
  - name: hello
    instances:
      - id: hello-1
        address: 127.0.0.1
        port: ${port}
        sidecarPort: 19101
${extra}`;
}

function catalogJson(port: number): string {
  return JSON.stringify({
    services: [
      { name: 'hello', instances: [{ id: 'hello-1', address: '127.0.0.1', port, sidecarPort: 1 }] },
    ],
  });
}

const BAD_PORT = 'services[0].instances[0].port: expected integer 1-65535, got "80a"';

let dir: string;
let file: string;
const sources: FileSource[] = [];

async function startSource(
  path = file,
  logger: Logger = silentLogger,
  opts?: { pollIntervalMs?: number },
): Promise<{ source: FileSource; sink: RecordingSink }> {
  const source = new FileSource(path, logger, opts);
  sources.push(source);
  const sink = new RecordingSink();
  await source.start(sink);
  return { source, sink };
}

/** Waits until the latest event is an update with hello's port = `port`. */
function waitForPort(sink: RecordingSink, port: number): Promise<Catalog> {
  return waitFor(`an update with hello port ${port}`, () => {
    const last = sink.events.at(-1);
    return last?.kind === 'update' && helloPort(last.catalog) === port ? last.catalog : undefined;
  });
}

function waitForError(sink: RecordingSink, from: number, pattern: RegExp | string): Promise<Error> {
  return waitFor(`an error matching ${String(pattern)}`, () =>
    sink.events
      .slice(from)
      .flatMap((e) => (e.kind === 'error' ? [e.error] : []))
      .find((e) =>
        typeof pattern === 'string' ? e.message.includes(pattern) : pattern.test(e.message),
      ),
  );
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lucid-file-source-'));
  file = join(dir, 'catalog.yaml');
});

afterEach(async () => {
  await Promise.all(sources.splice(0).map((s) => s.stop()));
  await rm(dir, { recursive: true, force: true });
});

describe('FileSource: initial load', () => {
  it('delivers one update with the parsed catalog', async () => {
    await writeFile(file, catalogYaml(9101));
    const { source, sink } = await startSource();
    expect(source.name).toBe('file');
    // start() resolves after the first load has been delivered.
    expect(sink.kindsSince(0)).toEqual(['update']);
    expect(sink.updates[0]).toEqual({
      services: [
        {
          name: 'hello',
          protocol: 'http',
          instances: [
            {
              id: 'hello-1',
              address: '127.0.0.1',
              port: 9101,
              sidecarPort: 19101,
              health: 'passing',
              tags: [],
              meta: {},
            },
          ],
        },
      ],
    });
  });

  it('reports an invalid file naming the file, the field and the value, and sends no update', async () => {
    await writeFile(file, catalogYaml('80a'));
    const { sink } = await startSource();
    expect(sink.kindsSince(0)).toEqual(['error']);
    expect(sink.errors[0]!.message).toBe(`${file}: ${BAD_PORT}`);
    expect((sink.errors[0] as Error & { problems?: string[] }).problems).toEqual([BAD_PORT]);
  });

  it('reports a missing file, then loads it once it appears', async () => {
    const { sink } = await startSource();
    expect(sink.kindsSince(0)).toEqual(['error']);
    expect(sink.errors[0]!.message).toMatch(/file not found/);
    expect(sink.errors[0]!.message).toContain(file);

    await writeFile(file, catalogYaml(9101));
    await waitForPort(sink, 9101);
    expect(sink.kindsSince(0)).toEqual(['error', 'update']);
  });

  it('reads JSON catalogs', async () => {
    const jsonFile = join(dir, 'catalog.json');
    await writeFile(jsonFile, catalogJson(9101));
    const { sink } = await startSource(jsonFile);
    expect(helloPort(sink.updates[0])).toBe(9101);

    await writeFile(jsonFile, catalogJson(9201));
    await waitForPort(sink, 9201);
  });

  it('reports YAML syntax errors with a line number', async () => {
    await writeFile(file, 'services:\n  - name: a\n    name: b\n');
    const { sink } = await startSource();
    expect(sink.kindsSince(0)).toEqual(['error']);
    expect(sink.errors[0]!.message).toBe(`${file}: line 3, column 5: Map keys must be unique`);
  });

  it('resolves relative paths and names the file as given', async () => {
    await writeFile(file, catalogYaml('80a'));
    const relative = join(dir, '..', dir.split(/[\\/]/).at(-1)!, 'catalog.yaml');
    const { sink } = await startSource(relative);
    expect(sink.errors[0]!.message).toBe(`${relative}: ${BAD_PORT}`);
  });
});

describe('FileSource: live edits', () => {
  it('applies an in-place write', async () => {
    await writeFile(file, catalogYaml(9101));
    const { sink } = await startSource();
    await writeFile(file, catalogYaml(9201));
    await waitForPort(sink, 9201);
    await writeFile(file, catalogYaml(9301));
    await waitForPort(sink, 9301);
    expect(sink.updates.map(helloPort)).toEqual([9101, 9201, 9301]);
    expect(sink.errors).toEqual([]);
  });

  it('applies a write-temp-then-rename replacement, repeatedly', async () => {
    await writeFile(file, catalogYaml(9101));
    const { sink } = await startSource();
    for (const port of [9201, 9301, 9401]) {
      await writeFile(`${file}.tmp`, catalogYaml(port));
      await rename(`${file}.tmp`, file);
      await waitForPort(sink, port);
    }
    expect(sink.updates.map(helloPort)).toEqual([9101, 9201, 9301, 9401]);
    expect(sink.errors).toEqual([]);
  });

  it('applies a vim-style save (rename away, write new, delete backup)', async () => {
    await writeFile(file, catalogYaml(9101));
    const { sink } = await startSource();
    await rename(file, `${file}~`);
    await writeFile(file, catalogYaml(9201));
    await unlink(`${file}~`);
    await waitForPort(sink, 9201);
  });

  it('rejects an invalid edit, keeps quiet until it is fixed, then applies the fix', async () => {
    await writeFile(file, catalogYaml(9101));
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: 'warn' }, { write: (s: string) => lines.push(JSON.parse(s)) });
    const { sink } = await startSource(file, logger);

    await writeFile(file, catalogYaml('80a'));
    const err = await waitForError(sink, 1, BAD_PORT);
    expect(err.message).toBe(`${file}: ${BAD_PORT}`);
    expect(sink.kindsSince(0)).toEqual(['update', 'error']);
    expect(lines).toContainEqual(
      expect.objectContaining({
        msg: 'catalog file rejected; keeping the last good catalog',
        file,
        problems: [BAD_PORT],
      }),
    );

    await writeFile(file, catalogYaml(9201));
    await waitForPort(sink, 9201);
    expect(sink.kindsSince(0)).toEqual(['update', 'error', 'update']);
  });

  it('reports a deleted file, then applies it when it is re-created', async () => {
    await writeFile(file, catalogYaml(9101));
    const { sink } = await startSource();
    await unlink(file);
    await waitForError(sink, 1, 'file not found');
    expect(sink.kindsSince(0)).toEqual(['update', 'error']);

    await writeFile(file, catalogYaml(9201));
    await waitForPort(sink, 9201);
    expect(sink.kindsSince(0)).toEqual(['update', 'error', 'update']);
  });

  it('re-applies the last good content when a deleted file comes back unchanged', async () => {
    await writeFile(file, catalogYaml(9101));
    const { sink } = await startSource();
    await unlink(file);
    await waitForError(sink, 1, 'file not found');
    await writeFile(file, catalogYaml(9101));
    await waitFor('a second update', () => sink.updates.length === 2);
    expect(sink.kindsSince(0)).toEqual(['update', 'error', 'update']);
  });

  it('ignores rewrites with identical content', async () => {
    await writeFile(file, catalogYaml(9101));
    const debugLines: Array<Record<string, unknown>> = [];
    const logger = pino(
      { level: 'debug' },
      { write: (s: string) => debugLines.push(JSON.parse(s)) },
    );
    const { sink } = await startSource(file, logger);
    const seen = () => debugLines.filter((l) => l.msg === 'catalog file event').length;

    // The same bytes, in place and by rename; wait until the watcher has reported each one.
    await writeFile(file, catalogYaml(9101));
    await waitFor('the watcher to see the in-place rewrite', () => seen() >= 1);
    const before = seen();
    await writeFile(`${file}.tmp`, catalogYaml(9101));
    await rename(`${file}.tmp`, file);
    await waitFor('the watcher to see the rename', () => seen() > before);

    // Reloads are serialised: once this later, different version arrives, the reloads for
    // the identical rewrites have run too.
    await writeFile(file, catalogYaml(9201));
    await waitForPort(sink, 9201);
    expect(sink.updates.map(helloPort)).toEqual([9101, 9201]);
    expect(sink.errors).toEqual([]);
  });

  it('ends on the last version after a burst of writes', async () => {
    await writeFile(file, catalogYaml(9100));
    const { sink } = await startSource();
    for (let port = 9101; port <= 9120; port++) await writeFile(file, catalogYaml(port));
    await waitForPort(sink, 9120);
    // Every update is a complete, valid version, in order.
    const ports = sink.updates.map(helloPort) as number[];
    expect(ports).toEqual([...ports].sort((a, b) => a - b));
    expect(sink.errors).toEqual([]);
  });

  it('ignores other files in the same directory', async () => {
    await writeFile(file, catalogYaml(9101));
    const { sink } = await startSource();
    await writeFile(join(dir, 'other.yaml'), 'not: [a catalog');
    await writeFile(join(dir, 'catalog.yaml.bak'), catalogYaml('80a'));
    await writeFile(file, catalogYaml(9201));
    await waitForPort(sink, 9201);
    expect(sink.kindsSince(0)).toEqual(['update', 'update']);
  });

  it('works with polling', async () => {
    await writeFile(file, catalogYaml(9101));
    const { sink } = await startSource(file, silentLogger, { pollIntervalMs: 50 });
    await writeFile(`${file}.tmp`, catalogYaml(9201));
    await rename(`${file}.tmp`, file);
    await waitForPort(sink, 9201);
    await unlink(file);
    await waitForError(sink, 2, 'file not found');
    await writeFile(file, catalogYaml(9301));
    await waitForPort(sink, 9301);
  });
});

describe('FileSource: stop', () => {
  it('makes no sink calls after stop()', async () => {
    await writeFile(file, catalogYaml(9101));
    const { source, sink } = await startSource();
    // A second source on the same file tells us when the edit has been noticed.
    const { sink: witness } = await startSource();
    await source.stop();
    const calls = sink.events.length;

    await writeFile(file, catalogYaml(9201));
    await waitForPort(witness, 9201);
    await writeFile(file, catalogYaml('80a'));
    await waitForError(witness, 0, BAD_PORT);
    await unlink(file);
    await waitForError(witness, 0, 'file not found');

    expect(sink.events.length).toBe(calls);
  });

  it('can be stopped right after a change, while a read may be in flight', async () => {
    await writeFile(file, catalogYaml(9101));
    const { source, sink } = await startSource();
    await writeFile(file, catalogYaml(9201));
    await source.stop();
    const calls = sink.events.length;
    const { sink: witness } = await startSource();
    await writeFile(file, catalogYaml(9301));
    await waitForPort(witness, 9301);
    expect(sink.events.length).toBe(calls);
  });

  it('stop() is idempotent and start() cannot be repeated', async () => {
    await writeFile(file, catalogYaml(9101));
    const { source, sink } = await startSource();
    await expect(source.start(sink)).rejects.toThrow(/already started/);
    await source.stop();
    await source.stop();
  });
});
