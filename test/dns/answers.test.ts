// What the control plane's DNS answers (src/dns/answers.ts) for names of other datacenters:
// `<service>.<dc>.<suffix>` and `_<service>._tcp.<dc>.<suffix>`, from a multi-dc catalog.
import type { Question, SrvAnswer, StringAnswer } from 'dns-packet';
import { describe, expect, it } from 'vitest';
import { parseCatalog } from '../../src/catalog/schema.js';
import { answerQuestion, RCODE } from '../../src/dns/answers.js';
import { buildMesh, DEFAULT_MESH_SETTINGS } from '../../src/mesh/index.js';
import { EMPTY_TRAFFIC } from '../../src/traffic/types.js';

const mesh = buildMesh({
  catalog: parseCatalog({
    services: [
      {
        name: 'api',
        instances: [
          { id: 'api-dc1', address: '10.1.0.1', port: 8080, sidecarPort: 15006 },
          { id: 'api-dc2', address: '10.2.0.1', port: 8080, sidecarPort: 15006, datacenter: 'dc2' },
          { id: 'api-dc2-v6', address: 'fd00::21', port: 8080, datacenter: 'dc2' },
          {
            id: 'api-dc2-down',
            address: '10.2.0.9',
            port: 8080,
            datacenter: 'dc2',
            health: 'critical',
          },
        ],
      },
      // Named like a datacenter: `dc3.<suffix>` stays this service.
      { name: 'dc3', instances: [{ id: 'dc3-1', address: '10.1.3.1', port: 80 }] },
      { name: 'web', instances: [{ id: 'web-1', address: '10.1.1.1', port: 80 }] },
    ],
    // A datacenter with only a gateway in the catalog is still a known one.
    gateways: [{ id: 'gw-dc3', datacenter: 'dc3', address: '10.3.0.100', port: 8443 }],
  }),
  traffic: EMPTY_TRAFFIC,
  settings: { ...DEFAULT_MESH_SETTINGS, datacenters: ['dc4'] },
});

const ask = (name: string, type: string) =>
  answerQuestion(mesh, { name, type, class: 'IN' } as Question, { ttlSeconds: 5 });
const data = (answers: readonly unknown[]) =>
  (answers as StringAnswer[]).map((a) => `${a.type} ${a.data}`).sort();

describe('DNS names of other datacenters', () => {
  it('<service>.<dc>: the healthy instances in that datacenter only, per family', () => {
    const a = ask('api.dc2.lucid.internal', 'A');
    expect(a.rcode).toBe(RCODE.NOERROR);
    expect(a.authoritative).toBe(true);
    expect(data(a.answers)).toEqual(['A 10.2.0.1']);
    expect(data(ask('API.DC2.lucid.internal.', 'AAAA').answers)).toEqual(['AAAA fd00::21']);
    // This datacenter by its name is the same as the short name.
    expect(data(ask('api.dc1.lucid.internal', 'A').answers)).toEqual(['A 10.1.0.1']);
    expect(data(ask('api.lucid.internal', 'A').answers)).toEqual(['A 10.1.0.1']);
  });

  it('_<service>._tcp.<dc>: SRV per healthy instance there, targets with their address', () => {
    const r = ask('_api._tcp.dc2.lucid.internal', 'SRV');
    expect(r.rcode).toBe(RCODE.NOERROR);
    expect((r.answers as SrvAnswer[]).map((a) => `${a.data.port} ${a.data.target}`).sort()).toEqual(
      ['15006 api-dc2.instance.lucid.internal', '8080 api-dc2-v6.instance.lucid.internal'],
    );
    expect(data(r.additionals)).toEqual(['A 10.2.0.1', 'AAAA fd00::21']);
  });

  it('an unknown datacenter or a service unknown there is NXDOMAIN with the SOA', () => {
    for (const name of [
      'api.dc9.lucid.internal',
      '_api._tcp.dc9.lucid.internal',
      'nope.dc2.lucid.internal',
      'x.api.dc2.lucid.internal',
    ]) {
      const r = ask(name, name.startsWith('_') ? 'SRV' : 'A');
      expect(r.rcode, name).toBe(RCODE.NXDOMAIN);
      expect(
        r.authorities.map((a) => a.type),
        name,
      ).toEqual(['SOA']);
    }
  });

  it('a known datacenter without instances of the service is "no data", not NXDOMAIN', () => {
    // dc4 is known from serve --datacenters, dc3 from its gateway only.
    for (const name of [
      'api.dc4.lucid.internal',
      'web.dc3.lucid.internal',
      'web.dc2.lucid.internal',
    ]) {
      const r = ask(name, 'A');
      expect(r.rcode, name).toBe(RCODE.NOERROR);
      expect(r.answers, name).toEqual([]);
      expect(
        r.authorities.map((a) => a.type),
        name,
      ).toEqual(['SOA']);
    }
    // The datacenter's own name has names below it (RFC 8020): no data too.
    expect(ask('dc2.lucid.internal', 'A').rcode).toBe(RCODE.NOERROR);
    expect(ask('dc9.lucid.internal', 'A').rcode).toBe(RCODE.NXDOMAIN);
  });

  it('a service named like a datacenter keeps its name; instance names ignore datacenters', () => {
    expect(data(ask('dc3.lucid.internal', 'A').answers)).toEqual(['A 10.1.3.1']);
    expect(ask('dc3.dc3.lucid.internal', 'A').answers).toEqual([]);
    expect(data(ask('api-dc2.instance.lucid.internal', 'A').answers)).toEqual(['A 10.2.0.1']);
  });
});
