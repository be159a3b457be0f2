// Equal inputs rebuild to the very same mesh objects, for every golden case. The store patches
// the last build, and its fan-out visits only the watchers a change touched, only while the
// parts of the mesh that did not change keep their object identity (MeshCache, the translation
// cache and touched.ts compare them by identity): a new equal object is a full translation.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { reuseUnchanged, type Catalog } from '../../src/catalog/model.js';
import { parseCatalog } from '../../src/catalog/schema.js';
import {
  buildMesh,
  MeshCache,
  meshServiceNames,
  proxyScope,
  type Mesh,
} from '../../src/mesh/index.js';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { parseTrafficTextByEntries } from '../../src/traffic/traffic-file.js';
import { EMPTY_TRAFFIC, type TrafficConfig } from '../../src/traffic/types.js';
import { parse } from 'yaml';
import { caseInputs, caseNames, type CaseInputs } from '../translate/cases.js';

/** An entry of a service no case has: an edit elsewhere in the file. */
const UNRELATED_ENTRY = '\n- Kind: service-defaults\n  Name: zz-unrelated\n  Protocol: http\n';

interface Texts {
  catalog: string;
  traffic: string | undefined;
}

function textsOf(dir: string): Texts {
  const traffic = join(dir, 'traffic.yaml');
  return {
    catalog: readFileSync(join(dir, 'catalog.yaml'), 'utf8'),
    traffic: existsSync(traffic) ? readFileSync(traffic, 'utf8') : undefined,
  };
}

/** The catalog as its file source reads it afresh: new objects, equal content. */
function readCatalog(text: string): Catalog {
  return parseCatalog(parse(text) as unknown);
}

/** The traffic file as its source parses a read, with the configuration in force. */
function readTraffic(text: string | undefined, previous?: TrafficConfig): TrafficConfig {
  return text === undefined
    ? EMPTY_TRAFFIC
    : parseTrafficTextByEntries(text, 'traffic.yaml', previous);
}

/** The traffic text with an entry of another service added. */
function unrelatedEdit(text: string | undefined): string {
  return (text ?? '') + UNRELATED_ENTRY;
}

/** A copy of `catalog` where one service's first instance flipped its health. */
function endpointChange(catalog: Catalog): { catalog: Catalog; name: string } | undefined {
  const target = [...catalog.services].reverse().find((s) => s.instances.length > 0);
  if (!target) return undefined;
  const services = catalog.services.map((s) =>
    s !== target
      ? s
      : {
          ...s,
          instances: s.instances.map((i, n) =>
            n === 0 ? { ...i, health: i.health === 'critical' ? 'passing' : 'critical' } : i,
          ),
        },
  );
  return { catalog: { ...catalog, services } as Catalog, name: target.name };
}

/** `catalog` with a service of one instance added (sorted in as a source lists it). */
function withService(catalog: Catalog, name: string): Catalog {
  const added = parseCatalog({
    services: [{ name, instances: [{ id: `${name}-1`, address: '10.9.9.9', port: 8080 }] }],
  }).services[0]!;
  return { ...catalog, services: [...catalog.services, added] };
}

/** Every part the patch paths compare by identity is the last build's object when equal. */
function expectKept(before: Mesh, after: Mesh, changed: ReadonlySet<string> = new Set()): void {
  const was = new Map(before.services.map((s) => [s.name, s]));
  for (const service of after.services) {
    const old = was.get(service.name);
    if (changed.has(service.name)) {
      expect(service, `service ${service.name} changed`).not.toBe(old);
    } else if (old && isDeepStrictEqual(old, service)) {
      expect(service, `service ${service.name}`).toBe(old);
    }
  }
  expect(after.settings).toBe(before.settings);
  expect(after.gateways, 'gateways').toBe(before.gateways);
  expect(after.observability, 'observability').toBe(before.observability);
  expect(after.observability?.tracing, 'tracing').toBe(before.observability?.tracing);
  expect(after.observability?.accessLog, 'access log').toBe(before.observability?.accessLog);
  expect(after.unsupported, 'unsupported').toBe(before.unsupported);
}

/** Lets a fan-out pass run its remaining slices (each is one setImmediate). */
async function passesDone(): Promise<void> {
  for (let i = 0; i < 50; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** The proxies the fan-out visits on every change: no instance of their service. */
function strays(c: CaseInputs): string[] {
  const ids = new Map(
    c.catalog.services.map((s) => [s.name, new Set(s.instances.map((i) => i.id))]),
  );
  return c.proxies.filter((p) => !ids.get(p.service)?.has(p.nodeId)).map((p) => p.nodeId);
}

/** What the fan-out and proxies' own resources compare by identity, per proxy. */
function expectSameProxyParts(c: CaseInputs, before: Mesh, after: Mesh): void {
  expect(meshServiceNames(after), 'DNS names').toBe(meshServiceNames(before));
  for (const proxy of c.proxies) {
    expect(proxyScope(after, proxy.service), `scope of ${proxy.nodeId}`).toBe(
      proxyScope(before, proxy.service),
    );
  }
}

function inputsOf(c: CaseInputs, catalog: Catalog, traffic: TrafficConfig) {
  return { catalog, traffic, policy: c.policy, settings: c.settings };
}

describe.each(caseNames())('golden case %s rebuilds to the same objects', (name) => {
  const c = caseInputs(name);
  const texts = textsOf(c.dir);

  it('the mesh keeps every part on a re-read, an unrelated edit and an endpoint change', () => {
    const cache = new MeshCache();
    const catalog1 = readCatalog(texts.catalog);
    const traffic1 = readTraffic(texts.traffic);
    const mesh1 = buildMesh(inputsOf(c, catalog1, traffic1), cache);

    // A touch: every file read afresh, equal content.
    const catalog2 = reuseUnchanged(catalog1, readCatalog(texts.catalog));
    const traffic2 = readTraffic(texts.traffic, traffic1);
    const mesh2 = buildMesh(inputsOf(c, catalog2, traffic2), cache);
    expectKept(mesh1, mesh2);
    expectSameProxyParts(c, mesh1, mesh2);
    expect(mesh2.services).toEqual(mesh1.services);
    mesh1.services.forEach((s, i) => expect(mesh2.services[i], s.name).toBe(s));

    // An edit of another service's entry: a new traffic object, the others' entries kept.
    const traffic3 = readTraffic(unrelatedEdit(texts.traffic), traffic2);
    const mesh3 = buildMesh(inputsOf(c, catalog2, traffic3), cache);
    expectKept(mesh2, mesh3);
    expectSameProxyParts(c, mesh2, mesh3);
    mesh2.services.forEach((s, i) => expect(mesh3.services[i], s.name).toBe(s));

    // A service joins: the others keep their objects.
    const added = reuseUnchanged(catalog2, withService(catalog2, 'zz-added'));
    const mesh5 = buildMesh(inputsOf(c, added, traffic3), cache);
    expectKept(mesh3, mesh5);
    const back = buildMesh(inputsOf(c, catalog2, traffic3), cache);
    expectKept(mesh5, back);

    // One service's endpoint changes: only what reads it changes.
    const edit = endpointChange(catalog2);
    if (!edit) return;
    const catalog4 = reuseUnchanged(catalog2, edit.catalog);
    const mesh4 = buildMesh(inputsOf(c, catalog4, traffic3), cache);
    expectKept(back, mesh4, new Set([edit.name]));
  });

  it('a store fed the same texts again translates, encodes and visits nothing', async () => {
    const store = new SnapshotStore({
      logger: silentLogger,
      debounceMs: 0,
      maxDebounceMs: 0,
      settings: c.settings,
    });
    try {
      store.setPolicy(c.policy);
      const traffic1 = readTraffic(texts.traffic);
      store.setTraffic(traffic1);
      store.setCatalog(readCatalog(texts.catalog));
      store.flush();
      for (const proxy of c.proxies) store.watch(proxy, () => {});
      await passesDone();
      const mesh1 = store.mesh!;
      const counts = () => ({
        translated: store.counters.servicesTranslated,
        encoded: store.encoder.counters.encoded,
        visited: store.counters.watchersVisited,
      });
      const before = counts();

      // The traffic source tells its listeners of effective changes only: an equal read is
      // its last configuration itself, and nothing is offered.
      const traffic2 = readTraffic(texts.traffic, traffic1);
      expect(traffic2).toBe(traffic1);
      store.setCatalog(readCatalog(texts.catalog));
      store.flush();
      expectKept(mesh1, store.mesh!);
      expect(counts(), 'a re-read of every file').toEqual(before);

      store.setTraffic(readTraffic(unrelatedEdit(texts.traffic), traffic2));
      store.flush();
      await passesDone();
      expectKept(mesh1, store.mesh!);
      const { translated, encoded, visited } = counts();
      expect({ translated, encoded }, 'an edit of an entry of no service in the catalog').toEqual({
        translated: before.translated,
        encoded: before.encoded,
      });
      // Only proxies that are no instance of their service (mesh gateways among them), also
      // with failover backends and mesh gateways (touched.ts visited every watcher then).
      expect(visited - before.visited, 'watchers visited').toBe(strays(c).length);

      // One service's endpoint changes: that service alone is translated again.
      const catalog = readCatalog(texts.catalog);
      const edit = endpointChange(catalog);
      if (!edit) return;
      store.setCatalog(edit.catalog);
      store.flush();
      await passesDone();
      expect(counts().translated - translated, `services translated (${edit.name})`).toBe(1);
    } finally {
      store.close();
    }
  });
});
