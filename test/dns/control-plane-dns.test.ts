// The control plane's DNS server as a user meets it: `lucid-mesh serve --dns-port` (a child
// process, so its memory is its own) on a watched catalog file, asked with real `dig`.
import dgram from 'node:dgram';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import * as packet from 'dns-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveCommand } from '../../src/cli/serve-command.js';
import {
  plainServeArgs,
  waitServeReady,
  spawnCli,
  type CliProcess,
} from '../support/cli-process.js';
import { dig } from '../support/dig.js';
import { httpGet } from '../support/http-app.js';
import { CatalogFile } from '../support/mesh.js';
import { freePorts } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

const TTL = 5;

/** 60 instances: their A records (~1 KB) do not fit a 512-byte UDP answer. */
const bigInstances = Array.from({ length: 60 }, (_, i) => ({
  id: `big-${i + 1}`,
  address: `10.1.0.${i + 1}`,
  port: 8080,
}));

function catalog(world2Health: 'passing' | 'critical'): unknown {
  return {
    services: [
      { name: 'big', instances: bigInstances },
      {
        name: 'hello',
        instances: [
          { id: 'hello-1', address: '127.0.0.1', port: 9101, sidecarPort: 19101 },
          { id: 'hello-v6', address: 'fd00::11', port: 9101 },
        ],
      },
      {
        name: 'world',
        instances: [
          { id: 'world-1', address: '10.0.0.21', port: 8080, sidecarPort: 15006 },
          {
            id: 'world-2',
            address: '10.0.0.22',
            port: 8080,
            sidecarPort: 15006,
            health: world2Health,
          },
          { id: 'world-3', address: '10.0.0.23', port: 8080, health: 'critical' },
          // Another datacenter's: only `world.dc2.<suffix>` answers them.
          {
            id: 'world-dc2',
            address: '10.2.0.21',
            port: 8080,
            sidecarPort: 15006,
            datacenter: 'dc2',
          },
        ],
      },
    ],
  };
}

let file: CatalogFile;
let serve: CliProcess;
let dnsPort: number;
let adminPort: number;

beforeAll(async () => {
  file = new CatalogFile();
  file.write(catalog('passing'));
  let xdsPort: number;
  [dnsPort, adminPort, xdsPort] = (await freePorts(3)) as [number, number, number];
  serve = spawnCli(
    [
      ...plainServeArgs(file.path, { admin: adminPort, xds: xdsPort }),
      ...['--admin-auth', 'none', '--dns-port', String(dnsPort), '--dns-ttl', String(TTL)],
      ...['--debounce-ms', '20', '--max-debounce-ms', '100'],
    ],
    { LUCID_DATA_DIR: file.dir },
  );
  await waitServeReady(serve, adminPort, 'serve --dns-port to be ready');
}, 60_000);

afterAll(async () => {
  await serve?.stop(60_000);
  file?.remove();
});

const sorted = (values: string[]): string[] => [...values].sort();

describe('serve --dns-port, asked with dig', () => {
  it('A: the healthy instances of a service, authoritative, with the configured TTL', async () => {
    const r = await dig(dnsPort, 'world.lucid.internal', 'A');
    expect(r.status, r.output).toBe('NOERROR');
    expect(r.flags).toContain('aa');
    expect(sorted(r.answers.map((a) => a.data))).toEqual(['10.0.0.21', '10.0.0.22']);
    expect(r.answers.every((a) => a.type === 'A' && a.ttl === TTL)).toBe(true);
  });

  it('AAAA: IPv6 instances; A and AAAA each give only their own family', async () => {
    const v6 = await dig(dnsPort, 'hello.lucid.internal', 'AAAA');
    expect(v6.answers.map((a) => [a.type, a.data])).toEqual([['AAAA', 'fd00::11']]);
    const v4 = await dig(dnsPort, 'HELLO.Lucid.Internal', 'A');
    expect(v4.answers.map((a) => [a.type, a.data])).toEqual([['A', '127.0.0.1']]);
  });

  it('SRV: one per healthy instance with the port peers use (the sidecar when meshed)', async () => {
    const r = await dig(dnsPort, '_world._tcp.lucid.internal', 'SRV');
    expect(r.status, r.output).toBe('NOERROR');
    expect(sorted(r.answers.map((a) => a.data))).toEqual([
      '1 1 15006 world-1.instance.lucid.internal.',
      '1 1 15006 world-2.instance.lucid.internal.',
    ]);
    // The targets' addresses come along, so no second query is needed.
    expect(
      sorted(r.additional.filter((a) => a.type === 'A').map((a) => `${a.name} ${a.data}`)),
    ).toEqual([
      'world-1.instance.lucid.internal. 10.0.0.21',
      'world-2.instance.lucid.internal. 10.0.0.22',
    ]);
    const big = await dig(dnsPort, '_hello._tcp.lucid.internal', 'SRV');
    expect(sorted(big.answers.map((a) => a.data))).toEqual([
      '1 1 19101 hello-1.instance.lucid.internal.',
      '1 1 9101 hello-v6.instance.lucid.internal.',
    ]);
  });

  it('<service>.<dc> and _<service>._tcp.<dc>: another datacenter; an unknown one is NXDOMAIN', async () => {
    const a = await dig(dnsPort, 'world.dc2.lucid.internal', 'A');
    expect(a.status, a.output).toBe('NOERROR');
    expect(a.flags).toContain('aa');
    expect(a.answers.map((r) => r.data)).toEqual(['10.2.0.21']);
    const srv = await dig(dnsPort, '_world._tcp.dc2.lucid.internal', 'SRV');
    expect(srv.answers.map((r) => r.data)).toEqual([
      '1 1 15006 world-dc2.instance.lucid.internal.',
    ]);
    const unknown = await dig(dnsPort, 'world.dc9.lucid.internal', 'A');
    expect(unknown.status, unknown.output).toBe('NXDOMAIN');
  });

  it('<instance-id>.instance: that instance, whatever its health', async () => {
    const r = await dig(dnsPort, 'world-3.instance.lucid.internal', 'A');
    expect(r.answers.map((a) => a.data)).toEqual(['10.0.0.23']);
  });

  it('NXDOMAIN for unknown mesh names (with the SOA), REFUSED outside the mesh domain', async () => {
    for (const name of [
      'nope.lucid.internal',
      'nope.instance.lucid.internal',
      '_nope._tcp.lucid.internal',
    ]) {
      const r = await dig(dnsPort, name, 'A');
      expect(r.status, r.output).toBe('NXDOMAIN');
      expect(r.authority.map((a) => a.type)).toEqual(['SOA']);
    }
    // A name that exists without records of the type asked: no data, not NXDOMAIN.
    const noData = await dig(dnsPort, 'world.lucid.internal', 'AAAA');
    expect(noData.status).toBe('NOERROR');
    expect(noData.answers).toEqual([]);
    const outside = await dig(dnsPort, 'example.com', 'A');
    expect(outside.status).toBe('REFUSED');
    expect(outside.flags).not.toContain('aa');
  });

  it('names with names below them are "no data", not NXDOMAIN (RFC 8020, minimised queries)', async () => {
    // What a resolver minimising its queries asks on its way to _world._tcp.lucid.internal SRV
    // or world-1.instance.lucid.internal: NXDOMAIN there would end the lookup.
    for (const name of [
      '_tcp.lucid.internal',
      'instance.lucid.internal',
      'dc2.lucid.internal',
      '_tcp.dc2.lucid.internal',
    ]) {
      const r = await dig(dnsPort, name, 'A');
      expect(r.status, `${name}\n${r.output}`).toBe('NOERROR');
      expect(r.answers).toEqual([]);
      expect(r.authority.map((a) => a.type)).toEqual(['SOA']);
    }
    const srv = await dig(dnsPort, '_world._tcp.lucid.internal', 'SRV');
    expect(srv.answers).toHaveLength(2);
  });

  it('EDNS version 1 gets BADVERS (RFC 6891); dig then asks again with version 0', async () => {
    const bad = await dig(dnsPort, 'world.lucid.internal', 'A', ['+edns=1', '+noednsnegotiation']);
    expect(bad.status, bad.output).toBe('BADVERS');
    expect(bad.output).toMatch(/EDNS: version: 0,/);
    expect(bad.answers).toEqual([]);
    const negotiated = await dig(dnsPort, 'world.lucid.internal', 'A', ['+edns=1']);
    expect(negotiated.status, negotiated.output).toBe('NOERROR');
    expect(negotiated.answers).toHaveLength(2);
  });

  it('TCP answers the same', async () => {
    const r = await dig(dnsPort, 'world.lucid.internal', 'A', ['+tcp']);
    expect(sorted(r.answers.map((a) => a.data))).toEqual(['10.0.0.21', '10.0.0.22']);
  });

  it('TCP connections are bounded: past 256 at once the server closes new ones; then it answers again', async () => {
    const sockets = Array.from({ length: 300 }, () => net.connect(dnsPort, '127.0.0.1'));
    let closedByServer = 0;
    for (const socket of sockets) {
      socket.on('error', () => undefined);
      socket.on('close', () => closedByServer++);
    }
    try {
      await waitFor(() => closedByServer >= 300 - 256, {
        timeoutMs: 10_000,
        what: `the connections past 256 to be closed (closed: ${closedByServer})`,
      });
      await new Promise((r) => setTimeout(r, 300));
      expect(closedByServer).toBe(300 - 256);
    } finally {
      for (const socket of sockets) socket.destroy();
    }
    await waitFor(
      async () => (await dig(dnsPort, 'world.lucid.internal', 'A', ['+tcp'])).answers.length === 2,
      { timeoutMs: 10_000, what: 'TCP answers once the connections are gone' },
    );
  });

  it('a UDP answer too large for 512 bytes is truncated (TC); dig then gets it all over TCP', async () => {
    const truncated = await dig(dnsPort, 'big.lucid.internal', 'A', ['+noedns', '+ignore']);
    expect(truncated.flags, truncated.output).toContain('tc');
    expect(truncated.answers).toEqual([]);
    const retried = await dig(dnsPort, 'big.lucid.internal', 'A', ['+noedns']);
    expect(retried.output).toContain('Truncated, retrying in TCP mode');
    expect(retried.answers).toHaveLength(60);
    // With EDNS a client may take larger UDP answers: 4096 bytes hold all 60.
    const edns = await dig(dnsPort, 'big.lucid.internal', 'A', ['+bufsize=4096', '+ignore']);
    expect(edns.flags).not.toContain('tc');
    expect(edns.answers).toHaveLength(60);
  });

  it('malformed packets get FORMERR or are dropped; a flood of 10,000 queries: all answered, memory bounded', async () => {
    const socket = dgram.createSocket('udp4');
    const replies: Buffer[] = [];
    socket.on('message', (m) => replies.push(m));
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const send = (b: Buffer): Promise<void> =>
      new Promise((resolve, reject) =>
        socket.send(b, dnsPort, '127.0.0.1', (err) => (err ? reject(err) : resolve())),
      );
    try {
      const garbage = Buffer.from('not a dns packet at all, just bytes');
      garbage.writeUInt16BE(0x4242, 0);
      garbage.writeUInt16BE(0x0100, 2); // a query header claiming questions it does not hold
      await send(garbage);
      await send(Buffer.from([1, 2, 3])); // shorter than a header: dropped
      const response = packet.encode({
        type: 'response',
        id: 7,
        questions: [{ type: 'A', name: 'world.lucid.internal' }],
      });
      await send(response); // a response: never answered (no reflection loops)
      await waitFor(async () => replies.length >= 1, {
        timeoutMs: 5_000,
        what: 'the FORMERR reply',
      });
      await new Promise((r) => setTimeout(r, 300));
      expect(replies).toHaveLength(1);
      expect(replies[0]!.readUInt16BE(0)).toBe(0x4242);
      expect(replies[0]!.readUInt16BE(2) & 0x800f).toBe(0x8001); // QR, FORMERR
      replies.length = 0;

      const rssBefore = rssOf(serve.child.pid!);
      const query = (id: number): Buffer =>
        packet.encode({
          type: 'query',
          id,
          questions: [{ type: 'A', name: 'world.lucid.internal' }],
        });
      const FLOOD = 10_000;
      // A client that keeps up (bursts of 250, each mostly answered before the next): every
      // query is answered.
      const pacedStart = Date.now();
      for (let sent = 0; sent < FLOOD;) {
        await Promise.all(Array.from({ length: 250 }, () => send(query(sent++ & 0xffff))));
        await waitFor(() => replies.length >= sent, {
          timeoutMs: 2_000,
          intervalMs: 5,
          what: 'the burst to be answered',
        }).catch(() => undefined);
      }
      const paced = replies.length;
      const pacedMs = Date.now() - pacedStart;
      // A blast with no pause: the kernel drops what the socket buffer cannot hold, the server
      // answers what reaches it and keeps no more than its bound in flight.
      replies.length = 0;
      for (let i = 0; i < FLOOD; i += 1000) {
        await Promise.all(Array.from({ length: 1000 }, (_, j) => send(query((i + j) & 0xffff))));
      }
      let seen = -1;
      await waitFor(
        () => {
          const quiet = replies.length === seen;
          seen = replies.length;
          return quiet;
        },
        { timeoutMs: 10_000, intervalMs: 300, what: 'the blast replies to stop' },
      );
      const rssAfter = rssOf(serve.child.pid!);
      console.log(
        `[dns flood] paced ${FLOOD} → ${paced} answered in ${pacedMs} ms (${Math.round((paced * 1000) / pacedMs)}/s); blast ${FLOOD} → ${replies.length} answered; ` +
          `serve RSS ${(rssBefore / 2 ** 20).toFixed(1)} → ${(rssAfter / 2 ** 20).toFixed(1)} MiB`,
      );
      expect(paced).toBeGreaterThanOrEqual(FLOOD * 0.95);
      expect(replies.length).toBeGreaterThan(0);
      expect(rssAfter - rssBefore, `RSS ${rssBefore} → ${rssAfter} bytes`).toBeLessThan(
        32 * 2 ** 20,
      );
    } finally {
      socket.close();
    }
    // Still answering, and the metrics counted it all.
    const after = await dig(dnsPort, 'world.lucid.internal', 'A');
    expect(after.answers).toHaveLength(2);
    const metrics = (await httpGet(`http://127.0.0.1:${adminPort}/metrics`)).body;
    expect(metrics).toMatch(/lucid_mesh_dns_queries_total\{transport="udp",rcode="FORMERR"\} 1\b/);
    expect(metrics).toMatch(/lucid_mesh_dns_dropped_total\{reason="malformed"\} 2\b/);
  }, 90_000);

  // Last: it changes the catalog.
  it('a health flip removes the address within a TTL', async () => {
    const before = await dig(dnsPort, 'world.lucid.internal', 'A');
    expect(before.answers).toHaveLength(2);
    const flippedAt = Date.now();
    file.write(catalog('critical'));
    await waitFor(
      async () => {
        const r = await dig(dnsPort, 'world.lucid.internal', 'A');
        return r.answers.length === 1 && r.answers[0]!.data === '10.0.0.21';
      },
      { timeoutMs: 15_000, intervalMs: 100, what: 'world-2 to leave the answer' },
    );
    const tookMs = Date.now() - flippedAt;
    console.log(`[dns health flip] address gone after ${tookMs} ms (TTL ${TTL} s)`);
    expect(tookMs).toBeLessThan(TTL * 1000);
    const srv = await dig(dnsPort, '_world._tcp.lucid.internal', 'SRV');
    expect(srv.answers.map((a) => a.data)).toEqual(['1 1 15006 world-1.instance.lucid.internal.']);
  });
});

describe('serve --dns-* flags', () => {
  /** Runs `serve ARGS` to its exit: code and output. */
  function serveOnce(args: string[]): Promise<{ code: number | null; output: string }> {
    const p = spawnCli(['serve', ...args], { LUCID_DATA_DIR: file.dir });
    return p.exited.then((code) => ({ code, output: p.output() }));
  }

  it('bad values are usage errors naming the flag; a taken port fails the start; the help lists them', async () => {
    const base = ['--catalog', file.path, '--mtls', 'off', '--auth', 'none', '--host', '127.0.0.1'];
    // The DNS port of the serve this file runs: taken.
    const taken = serveOnce([
      ...base,
      '--dns-port',
      String(dnsPort),
      '--xds-port',
      '0',
      '--admin-port',
      '0',
    ]);
    const usage = async (args: string[]): Promise<{ code: number; output: string }> => {
      let output = '';
      const cmd = serveCommand()
        .exitOverride()
        .configureOutput({ writeErr: (t) => (output += t), writeOut: (t) => (output += t) });
      try {
        await cmd.parseAsync(args, { from: 'user' });
      } catch (err) {
        return { code: (err as { exitCode: number }).exitCode, output };
      }
      return { code: 0, output };
    };
    const port = await usage([...base, '--dns-port', '53a']);
    // A CommanderError: the CLI (src/cli/main.ts) exits 2 for it, a usage error.
    expect(port.code).not.toBe(0);
    expect(port.output).toContain('--dns-port: expected integer 0-65535, got "53a"');
    const ttl = await usage([...base, '--dns-port', '0', '--dns-ttl', '5s']);
    expect(ttl.output).toContain('--dns-ttl: expected whole seconds 0-86400, got "5s"');
    const domain = await usage([...base, '--dns-domain', 'bad_domain!']);
    expect(domain.output).toContain('--dns-domain: expected a DNS name');
    const { code: takenCode, output: takenOutput } = await taken;
    expect(takenCode, takenOutput).toBe(1);
    expect(takenOutput).toContain(`DNS server: cannot listen on 127.0.0.1:${dnsPort}`);
    const help = serveCommand().helpInformation();
    for (const flag of ['--dns-port', '--dns-ttl', '--dns-domain', 'LUCID_DNS_PORT']) {
      expect(help).toContain(flag);
    }
  }, 60_000);
});

describe('serve --dns-port 0 (env LUCID_DNS_PORT, LUCID_DNS_TTL)', () => {
  it('logs the port it got, where dig is answered with the TTL asked', async () => {
    const [admin, xds] = (await freePorts(2)) as [number, number];
    const p = spawnCli(plainServeArgs(file.path, { admin, xds }), {
      LUCID_DATA_DIR: file.dir,
      LUCID_DNS_PORT: '0',
      LUCID_DNS_TTL: '9',
    });
    try {
      const line = await waitFor(
        () =>
          p
            .output()
            .split('\n')
            .find((l) => l.includes('DNS server listening')),
        {
          timeoutMs: 30_000,
          what: 'the DNS server line in the log',
          failIf: () =>
            p.child.exitCode !== null ? `serve exited ${p.child.exitCode}` : undefined,
          details: () => p.output().slice(-5000),
        },
      );
      const logged = JSON.parse(line) as { host: string; dnsPort: number; ttlSeconds: number };
      expect(logged).toMatchObject({ host: '127.0.0.1', ttlSeconds: 9 });
      await waitFor(async () => (await httpGet(`http://127.0.0.1:${admin}/ready`)).status === 200, {
        timeoutMs: 30_000,
        what: 'serve ready',
      });
      const r = await dig(logged.dnsPort, 'world-1.instance.lucid.internal', 'A');
      expect(r.answers.map((a) => [a.data, a.ttl])).toEqual([['10.0.0.21', 9]]);
    } finally {
      await p.stop();
    }
  }, 60_000);
});

/** Resident set size of a process, in bytes. */
function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  if (!kb) throw new Error(`no VmRSS for ${pid}`);
  return Number(kb) * 1024;
}
