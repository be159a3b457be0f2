// Route configurations assembled from their virtual hosts' bytes (src/snapshot/route-assembly.ts)
// must be byte for byte what protobufjs encodes for the whole message: versions are hashes of
// those bytes, and replicas must agree. Checked on every route configuration of the golden
// cases (shared, scoped and per proxy; retries, header edits, typed configs), and that a
// virtual host shared by several configurations is encoded once.
import { describe, expect, it } from 'vitest';
import { meshProxy } from '../../src/mesh/index.js';
import { TYPE_URLS, encodeMessage } from '../../src/protos/envoy.js';
import { contentHash, encodeResource } from '../../src/snapshot/encoded-resource.js';
import {
  encodeRouteConfiguration,
  renamedHostBytes,
  routeAssemblyCounters,
} from '../../src/snapshot/route-assembly.js';
import { vhdsHostName } from '../../src/translate/vhds.js';
import {
  TranslationCache,
  scopeResourceSet,
  translateProxy,
  translateShared,
} from '../../src/translate/index.js';
import { caseNames, loadCase } from '../translate/cases.js';

/** Every route configuration the translators make for the golden cases: shared, scoped, own. */
function goldenRouteConfigurations(): Array<[string, object]> {
  const found: Array<[string, object]> = [];
  for (const name of caseNames()) {
    const { mesh, proxies } = loadCase(name);
    const cache = new TranslationCache();
    const shared = translateShared(mesh, cache);
    for (const [n, r] of shared.routes) found.push([`${name}/shared/${n}`, r]);
    for (const p of proxies) {
      const proxy = meshProxy(mesh, p);
      if (proxy.scope?.services !== undefined) {
        for (const [n, r] of scopeResourceSet(shared, proxy, cache).routes)
          found.push([`${name}/${p.nodeId}/scoped/${n}`, r]);
      }
      for (const [n, r] of translateProxy(mesh, proxy).routes)
        found.push([`${name}/${p.nodeId}/${n}`, r]);
    }
  }
  return found;
}

describe('route configurations assembled from their virtual hosts', () => {
  const configs = goldenRouteConfigurations();

  it('finds the golden cases’ route configurations', () => {
    expect(configs.length).toBeGreaterThan(20);
    const hosts = configs.reduce(
      (n, [, c]) => n + (c as { virtualHosts: unknown[] }).virtualHosts.length,
      0,
    );
    expect(hosts).toBeGreaterThan(50);
  });

  it('versions an assembled configuration by the hash of the bytes it would join', () => {
    for (const [path, config] of configs) {
      const whole = encodeMessage(TYPE_URLS.routes, config, path);
      expect(encodeResource('routes', path, config).version, path).toBe(contentHash(whole));
    }
  });

  it('renames a VHDS host (translate/vhds.ts) to exactly the bytes protobufjs gives it', () => {
    for (const [path, config] of configs) {
      for (const host of (config as { virtualHosts: Array<{ name: string }> }).virtualHosts) {
        const name = vhdsHostName('outbound', host.name);
        const whole = encodeMessage(TYPE_URLS.virtualHosts, { ...host, name }, path);
        expect(Buffer.from(renamedHostBytes(host, name)), `${path} ${host.name}`).toEqual(
          Buffer.from(whole),
        );
      }
    }
  });

  it('gives exactly the bytes protobufjs gives the whole message', () => {
    for (const [path, config] of configs) {
      const whole = Buffer.from(encodeMessage(TYPE_URLS.routes, config, path));
      expect(Buffer.from(encodeRouteConfiguration(config, path)), path).toEqual(whole);
    }
  });

  it('encodes a virtual host shared by several configurations once', () => {
    const host = {
      name: 'svc-a',
      domains: ['svc-a'],
      routes: [{ match: { prefix: '/' }, route: { cluster: 'svc-a' } }],
    };
    const other = { name: 'svc-b', domains: ['svc-b'], routes: [] };
    const before = routeAssemblyCounters.hostsEncoded;
    const one = {
      name: 'outbound',
      virtualHosts: [host, other],
      validateClusters: { value: false },
    };
    const two = { name: 'outbound', virtualHosts: [other, host] };
    for (const c of [one, two]) {
      expect(Buffer.from(encodeRouteConfiguration(c))).toEqual(
        Buffer.from(encodeMessage(TYPE_URLS.routes, c)),
      );
    }
    expect(routeAssemblyCounters.hostsEncoded - before).toBe(2);
  });

  it('reports a bad virtual host as encoding the whole configuration would', () => {
    const bad = {
      name: 'outbound',
      virtualHosts: [
        {
          name: 'x',
          domains: ['x'],
          routes: [{ match: { prefix: 'x' }, route: { timeout: 'soon' } }],
        },
      ],
    };
    const expected = (() => {
      try {
        encodeMessage(TYPE_URLS.routes, bad, '"outbound"');
      } catch (err) {
        return (err as Error).message;
      }
      return 'no error';
    })();
    expect(expected).toContain('cannot encode RouteConfiguration');
    expect(() => encodeRouteConfiguration(bad, '"outbound"')).toThrow(expected);
  });
});
