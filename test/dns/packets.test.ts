// The DNS server's packet handling under seeded random input (fast-check): whatever arrives,
// it answers with a well-formed response carrying the query's id, or drops it, never throws,
// and never sends more than 512 bytes over UDP to a client without EDNS.
import * as packet from 'dns-packet';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseCatalog } from '../../src/catalog/schema.js';
import { DnsServer } from '../../src/dns/server.js';
import { buildMesh, DEFAULT_MESH_SETTINGS } from '../../src/mesh/index.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { EMPTY_TRAFFIC } from '../../src/traffic/types.js';

const mesh = buildMesh({
  catalog: parseCatalog({
    services: [
      {
        name: 'world',
        instances: Array.from({ length: 40 }, (_, i) => ({
          id: `world-${i}`,
          address: `10.0.0.${i + 1}`,
          port: 8080,
          sidecarPort: 15006,
        })),
      },
    ],
  }),
  traffic: EMPTY_TRAFFIC,
  settings: DEFAULT_MESH_SETTINGS,
});
const server = new DnsServer({ mesh: () => mesh, logger: silentLogger });

const names = fc.constantFrom(
  'world.lucid.internal',
  '_world._tcp.lucid.internal',
  'world-3.instance.lucid.internal',
  'nope.lucid.internal',
  'lucid.internal',
  'example.com',
  '',
);
const types = fc.constantFrom(
  'A',
  'AAAA',
  'SRV',
  'TXT',
  'SOA',
  'ANY',
  'MX',
) as fc.Arbitrary<packet.RecordType>;

/** A valid query, with or without EDNS, then some of its bytes overwritten. */
const mutatedQuery = fc
  .record({
    id: fc.integer({ min: 0, max: 0xffff }),
    name: names,
    type: types,
    edns: fc.boolean(),
    flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
  })
  .map(({ id, name, type, edns, flips }) => {
    const bytes = packet.encode({
      type: 'query',
      id,
      flags: packet.RECURSION_DESIRED,
      questions: [{ type, name }],
      ...(edns
        ? {
            additionals: [
              {
                type: 'OPT',
                name: '.',
                udpPayloadSize: 4096,
                extendedRcode: 0,
                ednsVersion: 0,
                flags: 0,
                flag_do: false,
                options: [],
              },
            ],
          }
        : {}),
    });
    for (const [at, value] of flips) bytes[at % bytes.length] = value;
    return bytes;
  });

function check(bytes: Uint8Array): void {
  const msg = Buffer.from(bytes);
  for (const transport of ['udp', 'tcp'] as const) {
    const reply = server.respond(msg, transport);
    if (!reply) continue;
    expect(reply.length).toBeGreaterThanOrEqual(12);
    expect(reply.readUInt16BE(0)).toBe(msg.readUInt16BE(0));
    expect(reply.readUInt16BE(2) & 0x8000).toBe(0x8000); // a response
    // Every reply is itself well-formed DNS.
    const decoded = packet.decode(reply);
    expect(decoded.type).toBe('response');
    const edns = (packet.decode(msg).additionals ?? []).some((a) => a.type === 'OPT');
    if (transport === 'udp' && !edns) expect(reply.length).toBeLessThanOrEqual(512);
  }
}

describe('DNS packet handling (fuzzed)', () => {
  it('random bytes: FORMERR or dropped, never a throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        const msg = Buffer.from(bytes);
        for (const transport of ['udp', 'tcp'] as const) {
          const reply = server.respond(msg, transport);
          if (reply) {
            expect(reply.readUInt16BE(0)).toBe(msg.readUInt16BE(0));
            expect(packet.decode(reply).type).toBe('response');
          }
        }
      }),
      { seed: 15, numRuns: 3000 },
    );
  });

  it('mutated valid queries: a well-formed reply with the same id, within 512 bytes without EDNS', () => {
    fc.assert(
      fc.property(mutatedQuery, (bytes) => {
        try {
          packet.decode(Buffer.from(bytes));
        } catch {
          // Undecodable after mutation: only the FORMERR path applies.
          const reply = server.respond(Buffer.from(bytes), 'udp');
          if (reply) expect(reply.readUInt16BE(2) & 0xf).toBe(1);
          return;
        }
        check(bytes);
      }),
      { seed: 15, numRuns: 3000 },
    );
  });
});
