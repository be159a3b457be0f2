// TrafficFile against real files in a temp directory and a real watcher: a valid file loads, an
// invalid edit keeps the last good configuration and logs every problem, the fix applies, and
// an edit that changes no entry notifies no one.
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TrafficDocumentError } from '../../src/traffic/schema.js';
import { TrafficFile, parseTrafficText } from '../../src/traffic/traffic-file.js';
import type { TrafficConfig } from '../../src/traffic/types.js';
import { waitFor } from '../support/wait.js';

/** A router sending /admin to subset `subset`, and a resolver defining v1 and v2. */
function trafficYaml(subset: string, retries: number | string = 3, comment = ''): string {
  return `# traffic ${comment}
- Kind: service-router
  Name: web
  Routes:
    - Match: { HTTP: { PathPrefix: /admin } }
      Destination: { ServiceSubset: ${subset}, NumRetries: ${retries} }
- Kind: service-resolver
  Name: web
  Subsets:
    v1: { Filter: "Service.Meta.version == v1" }
    v2: { Filter: "Service.Meta.version == v2" }
  PrioritizeByLocality: { Mode: failover }
`;
}

const adminSubset = (c: TrafficConfig | undefined) =>
  c?.routers.get('web')?.Routes[0]?.Destination?.ServiceSubset;

interface LogLine {
  level: number;
  msg: string;
  problems?: string[];
  unsupported?: string[];
}

let dir: string;
let file: string;
const files: TrafficFile[] = [];

async function start(path = file) {
  const logs: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void logs.push(JSON.parse(s)) });
  const trafficFile = new TrafficFile(path, logger);
  files.push(trafficFile);
  const changes: TrafficConfig[] = [];
  const errors: Error[] = [];
  trafficFile.onChange((c) => changes.push(c));
  trafficFile.onError((e) => errors.push(e));
  await trafficFile.start();
  return { trafficFile, changes, errors, logs };
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lucid-traffic-file-'));
  file = join(dir, 'traffic.yaml');
});

afterEach(async () => {
  await Promise.all(files.splice(0).map((f) => f.stop()));
  await rm(dir, { recursive: true, force: true });
});

describe('TrafficFile', () => {
  it('loads at start, lists unsupported fields once, and has no per-entry problems', async () => {
    await writeFile(file, trafficYaml('v2'));
    const { trafficFile, changes, logs } = await start();
    expect(trafficFile.name).toBe('file');
    expect(adminSubset(trafficFile.current())).toBe('v2');
    expect(changes).toHaveLength(1);
    expect(trafficFile.problems()).toEqual([]);
    expect(trafficFile.lastError()).toBeUndefined();
    expect(trafficFile.current()?.unsupported).toEqual([
      { kind: 'service-resolver', name: 'web', field: 'PrioritizeByLocality' },
    ]);
    const warning = logs.find((l) => l.msg.startsWith('traffic file uses Consul features'));
    expect(warning?.unsupported).toEqual(['service-resolver/web: PrioritizeByLocality']);
  });

  it('valid → invalid edit keeps the last good configuration → valid edit applies', async () => {
    await writeFile(file, trafficYaml('v2'));
    const { trafficFile, changes, errors, logs } = await start();
    const good = trafficFile.current();

    await writeFile(file, trafficYaml('v1', -1));
    const error = await waitFor(() => errors[0], { what: 'the rejection', intervalMs: 20 });
    expect(error).toBeInstanceOf(TrafficDocumentError);
    expect(error.message).toBe(
      `${file}: service-router/web: Routes[0].Destination.NumRetries: expected integer ≥ 0, got -1`,
    );
    expect(trafficFile.lastError()).toBe(error);
    expect(trafficFile.current()).toBe(good);
    expect(changes).toHaveLength(1);
    const warning = logs.find(
      (l) => l.msg === 'traffic file rejected; keeping the last good traffic configuration',
    );
    expect(warning?.problems).toEqual([
      'service-router/web: Routes[0].Destination.NumRetries: expected integer ≥ 0, got -1',
    ]);
    expect(warning?.level).toBe(40);

    await writeFile(file, trafficYaml('v1'));
    await waitFor(() => changes.length === 2, { what: 'the fix', intervalMs: 20 });
    expect(adminSubset(trafficFile.current())).toBe('v1');
    expect(trafficFile.lastError()).toBeUndefined();
    // The resolver did not change: the mesh builder sees the same object.
    expect(trafficFile.current()?.resolvers.get('web')).toBe(good?.resolvers.get('web'));
  });

  it('an edit that changes no entry announces nothing', async () => {
    await writeFile(file, trafficYaml('v2'));
    const { trafficFile, changes, logs } = await start();
    const before = trafficFile.current();
    await writeFile(file, trafficYaml('v2', 3, 'edited'));
    await waitFor(
      () => logs.some((l) => l.msg === 'traffic file changed; the configuration did not'),
      { what: 'the re-read', intervalMs: 20 },
    );
    expect(changes).toHaveLength(1);
    expect(trafficFile.current()).toBe(before);
  });

  it('a YAML syntax error names its line; a missing file keeps the configuration', async () => {
    await writeFile(file, trafficYaml('v2'));
    const { trafficFile, errors } = await start();
    await writeFile(file, '- Kind: service-router\n  Name: [web\n');
    const syntax = await waitFor(() => errors[0], { what: 'the rejection', intervalMs: 20 });
    expect(syntax.message).toMatch(new RegExp(`^${file}: line \\d+, column \\d+: `));
    await unlink(file);
    const missing = await waitFor(() => errors[1], { what: 'the missing file', intervalMs: 20 });
    expect(missing.message).toMatch(/file not found/);
    expect(adminSubset(trafficFile.current())).toBe('v2');
  });

  it('an invalid first load leaves no configuration until fixed', async () => {
    await writeFile(file, '');
    const { trafficFile, changes, logs } = await start();
    expect(trafficFile.current()).toBeUndefined();
    expect(trafficFile.lastError()?.message).toBe(
      `${file}: the document is empty (write \`[]\` for no traffic configuration)`,
    );
    expect(
      logs.some((l) => /^traffic file rejected; no traffic configuration loaded/.test(l.msg)),
    ).toBe(true);
    await writeFile(file, '[]\n');
    await waitFor(() => changes.length === 1, { what: 'the fix', intervalMs: 20 });
    expect(trafficFile.current()?.routers.size).toBe(0);
  });
});

describe('parseTrafficText', () => {
  it('reads JSON as `consul config read -format json` prints it', () => {
    const text = JSON.stringify([
      {
        Kind: 'service-splitter',
        Name: 'web',
        Splits: [{ Weight: 100 }],
        CreateIndex: 1,
        ModifyIndex: 2,
      },
    ]);
    expect([...parseTrafficText(text, 'traffic.json').splitters.keys()]).toEqual(['web']);
  });

  it('JSON syntax errors and duplicate keys name the line', () => {
    expect(() => parseTrafficText('[{"Kind": "service-router",}]', 'traffic.json')).toThrow(
      /^traffic\.json: line 1, column 28: invalid JSON: /,
    );
    expect(() =>
      parseTrafficText('[{"Kind": "service-router", "Name": "a", "Name": "b"}]', 'traffic.json'),
    ).toThrow(/^traffic\.json: line 1, column 42: Map keys must be unique/);
  });

  it('YAML duplicate keys are errors too', () => {
    expect(() =>
      parseTrafficText('- Kind: service-router\n  Kind: service-splitter\n', 'traffic.yaml'),
    ).toThrow(/^traffic\.yaml: line 2, column 3: Map keys must be unique/);
  });
});
