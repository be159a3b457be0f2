// The control plane's DNS server on a wildcard host (serve --host 0.0.0.0, the default, or ::)
// on a host with several addresses, asked with real `dig`. A UDP socket bound to the wildcard
// answers from the address the kernel picks for the way back to the client, not the one the
// client asked: a query to this host's own (non-loopback) address from 127.0.0.1 was answered
// from 127.0.0.1, and dig, whose socket is connected to the address it asked, never saw it (a
// timeout). The same on a multi-homed host whenever the route back leaves from another
// address. Now each local address has its own UDP socket, which answers from that address.
import { Writable } from 'node:stream';
import { networkInterfaces } from 'node:os';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseCatalog } from '../../src/catalog/schema.js';
import { DnsServer, udpAddresses } from '../../src/dns/server.js';
import { buildMesh, DEFAULT_MESH_SETTINGS } from '../../src/mesh/index.js';
import { EMPTY_TRAFFIC } from '../../src/traffic/types.js';
import { dig } from '../support/dig.js';

const mesh = buildMesh({
  catalog: parseCatalog({
    services: [{ name: 'world', instances: [{ id: 'world-1', address: '10.0.0.21', port: 80 }] }],
  }),
  traffic: EMPTY_TRAFFIC,
  settings: DEFAULT_MESH_SETTINGS,
});

const servers: DnsServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function start(host: string) {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l));
      done();
    },
  });
  const server = new DnsServer({ mesh: () => mesh, logger: pino({ level: 'info' }, sink) });
  servers.push(server);
  const port = await server.listen(host, 0);
  const listening = lines.find((l) => l.msg === 'DNS server listening (UDP and TCP)');
  return { port, udpAddresses: listening?.udpAddresses as string[] };
}

/** This host's first non-loopback IPv4 address: the test needs one besides 127.0.0.1. */
function ownAddress(): string {
  const found = Object.values(networkInterfaces())
    .flat()
    .find((a) => a?.family === 'IPv4' && !a.internal)?.address;
  if (!found) throw new Error('this test needs a non-loopback IPv4 address on the host');
  return found;
}

const worldA = (r: { answers: ReadonlyArray<{ data: string }> }) => r.answers.map((a) => a.data);

describe('control-plane DNS on --host 0.0.0.0, asked with dig', () => {
  it('a query to one of the host addresses is answered from it, whichever way the answer goes back', async () => {
    const own = ownAddress();
    const { port, udpAddresses } = await start('0.0.0.0');
    expect(udpAddresses).toEqual(expect.arrayContaining(['127.0.0.1', own]));
    // The route back to 127.0.0.1 leaves from 127.0.0.1, not from `own` (and the reverse).
    const toOwn = await dig(port, 'world.lucid.internal', 'A', ['-b', '127.0.0.1'], own);
    expect(worldA(toOwn)).toEqual(['10.0.0.21']);
    const toLoopback = await dig(port, 'world.lucid.internal', 'A', ['-b', own], '127.0.0.1');
    expect(worldA(toLoopback)).toEqual(['10.0.0.21']);
  });

  it('loopback addresses other than 127.0.0.1 are not listed, so not served over UDP (TCP is)', async () => {
    const { port } = await start('0.0.0.0');
    // Closed at once (ICMP port unreachable), rather than an answer dig drops after its timeout.
    await expect(dig(port, 'world.lucid.internal', 'A', [], '127.0.0.2')).rejects.toThrow(
      /connection refused/,
    );
    const tcp = await dig(port, 'world.lucid.internal', 'A', ['+tcp'], '127.0.0.2');
    expect(worldA(tcp)).toEqual(['10.0.0.21']);
  });

  it(':: serves both families, each address from its own socket', async () => {
    const { port, udpAddresses } = await start('::');
    expect(udpAddresses).toEqual(expect.arrayContaining(['127.0.0.1', '::1']));
    expect(worldA(await dig(port, 'world.lucid.internal', 'A', [], '::1'))).toEqual(['10.0.0.21']);
    expect(worldA(await dig(port, 'world.lucid.internal', 'A', [], '127.0.0.1'))).toEqual([
      '10.0.0.21',
    ]);
  });
});

describe('udpAddresses', () => {
  const interfaces = {
    lo: [
      { address: '127.0.0.1', family: 'IPv4', internal: true },
      { address: '::1', family: 'IPv6', internal: true, scopeid: 0 },
    ],
    eth0: [
      { address: '192.0.2.2', family: 'IPv4', internal: false },
      { address: 'fe80::1', family: 'IPv6', internal: false, scopeid: 4 },
    ],
    eth1: [{ address: '192.0.2.2', family: 'IPv4', internal: false }],
  } as unknown as ReturnType<typeof networkInterfaces>;

  it('a wildcard: each address once (IPv6 with ::, link-local with its zone); anything else as given', () => {
    expect(udpAddresses('0.0.0.0', interfaces)).toEqual(['127.0.0.1', '192.0.2.2']);
    expect(udpAddresses('::', interfaces)).toEqual([
      '127.0.0.1',
      '::1',
      '192.0.2.2',
      'fe80::1%eth0',
    ]);
    expect(udpAddresses('127.0.0.1', interfaces)).toEqual(['127.0.0.1']);
    expect(udpAddresses('::1', interfaces)).toEqual(['::1']);
    expect(udpAddresses('0.0.0.0', {})).toEqual(['0.0.0.0']);
  });
});
