// The control plane's DNS server (serve --dns-port; docs/dns.md): UDP and TCP on one port,
// answering from the current mesh model (answers.ts). Packets are decoded and encoded with
// dns-packet. Bounded by construction: UDP keeps no per-client state (each datagram is
// answered or dropped on its own, with at most MAX_UDP_IN_FLIGHT replies queued), TCP takes
// a bounded number of connections, each with a size limit and an idle timeout.
import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import net from 'node:net';
import { networkInterfaces } from 'node:os';
import * as packet from 'dns-packet';
import { Counter, type Registry } from 'prom-client';
import type { Mesh } from '../mesh/types.js';
import type { Logger } from '../telemetry/logger.js';
import { answerQuestion, RCODE } from './answers.js';

export const DEFAULT_DNS_TTL_SECONDS = 5;
/** UDP replies sent and not yet handed to the kernel; past it queries are dropped (counted). */
const MAX_UDP_IN_FLIGHT = 1024;
const UDP_RECV_BUFFER_BYTES = 4 * 1024 * 1024;
const MAX_TCP_CONNECTIONS = 256;
const TCP_IDLE_MS = 10_000;
/** A TCP client that does not read its answers is cut off past this much queued output. */
const MAX_TCP_BACKLOG_BYTES = 1024 * 1024;
/** Classic DNS over UDP (RFC 1035); with EDNS the client's size, up to EDNS_MAX. */
const UDP_PLAIN_MAX = 512;
const EDNS_MAX = 4096;
/** What this server advertises in its own OPT record (the DNS flag day 2020 value). */
const EDNS_ADVERTISED = 1232;
/** A DNS message over TCP has a two-byte length (RFC 1035 4.2.2). */
const TCP_MAX = 65_535;
const HEADER_BYTES = 12;
/** RFC 6891's extended RCODE 16: its upper 8 bits go in the OPT record, the lower 4 are 0. */
const BADVERS = 16;
const QR = 0x8000;

/** serve --dns-port / --dns-ttl. */
export interface DnsServerSettings {
  /** 0: any free port (tests). */
  readonly port: number;
  readonly ttlSeconds?: number;
}

export interface DnsServerOptions {
  /** The current mesh model (undefined before the first catalog: SERVFAIL). */
  readonly mesh: () => Mesh | undefined;
  readonly ttlSeconds?: number;
  readonly logger: Logger;
  /** Prometheus registry for lucid_mesh_dns_* (the control plane's). */
  readonly registry?: Registry;
}

type Transport = 'udp' | 'tcp';

export class DnsServer {
  /** One socket, or with a wildcard --host one per local address (udpAddresses). */
  private udp: dgram.Socket[] = [];
  private tcp: net.Server | undefined;
  private udpInFlight = 0;
  private readonly ttlSeconds: number;
  private readonly queries: Counter<'transport' | 'rcode'>;
  private readonly dropped: Counter<'reason'>;

  constructor(private readonly options: DnsServerOptions) {
    this.ttlSeconds = options.ttlSeconds ?? DEFAULT_DNS_TTL_SECONDS;
    const registers = options.registry ? [options.registry] : [];
    this.queries = new Counter({
      name: 'lucid_mesh_dns_queries_total',
      help: 'DNS queries answered by the control plane, by transport and response code',
      labelNames: ['transport', 'rcode'],
      registers,
    });
    this.dropped = new Counter({
      name: 'lucid_mesh_dns_dropped_total',
      help: 'DNS packets not answered: malformed (too short, or a response), or over the in-flight bound',
      labelNames: ['reason'],
      registers,
    });
  }

  /**
   * Binds UDP and TCP on `port` (0: one free port for all); resolves with the port. With a
   * wildcard `host`, UDP binds each local address instead (udpAddresses).
   */
  async listen(host: string, port: number): Promise<number> {
    const addresses = udpAddresses(host);
    for (let attempt = 0; ; attempt++) {
      const sockets: dgram.Socket[] = [];
      try {
        let bound = port;
        for (const address of addresses) {
          // A larger receive buffer rides out bursts (the kernel caps it at net.core.rmem_max).
          const udp = dgram.createSocket({
            type: isIPv6(address.replace(/%.*$/, '')) ? 'udp6' : 'udp4',
            recvBufferSize: UDP_RECV_BUFFER_BYTES,
          });
          try {
            bound = await bindUdp(udp, address, bound);
            sockets.push(udp);
          } catch (err) {
            udp.close();
            // An address going away (or IPv6's still tentative) since it was listed: the others.
            if ((err as NodeJS.ErrnoException).code !== 'EADDRNOTAVAIL' || addresses.length === 1)
              throw err;
            this.options.logger.warn({ err, address }, 'DNS server: cannot listen on an address');
          }
        }
        if (sockets.length === 0) throw new Error(`none of ${addresses.join(', ')} can be bound`);
        this.tcp = await this.listenTcp(host, bound);
        this.udp = sockets;
        for (const udp of sockets) {
          udp.on('message', (msg, rinfo) => this.onDatagram(udp, msg, rinfo));
          udp.on('error', (err) => this.options.logger.warn({ err }, 'DNS UDP socket error'));
        }
        // The port is news with --dns-port 0, and the line says DNS is on at all.
        this.options.logger.info(
          {
            host,
            dnsPort: bound,
            ttlSeconds: this.ttlSeconds,
            udpAddresses: sockets.map((u) => u.address().address),
          },
          'DNS server listening (UDP and TCP)',
        );
        return bound;
      } catch (err) {
        for (const udp of sockets) udp.close();
        // A free UDP port may be taken for TCP (or on another address): with port 0, try again.
        const inUse = (err as NodeJS.ErrnoException).code === 'EADDRINUSE';
        if (port !== 0 || !inUse || attempt >= 10) {
          throw new Error(
            `DNS server: cannot listen on ${host}:${port} (UDP and TCP): ${(err as Error).message}`,
          );
        }
      }
    }
  }

  async close(): Promise<void> {
    const udp = this.udp;
    const tcp = this.tcp;
    this.udp = [];
    this.tcp = undefined;
    await Promise.all([
      ...udp.map((u) => new Promise<void>((resolve) => u.close(() => resolve()))),
      tcp ? new Promise<void>((resolve) => tcp.close(() => resolve())) : undefined,
    ]);
  }

  /** Answered from the socket it came to: its address is the one the client asked. */
  private onDatagram(udp: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (!this.udp.includes(udp)) return;
    if (this.udpInFlight >= MAX_UDP_IN_FLIGHT) {
      this.dropped.inc({ reason: 'overload' });
      return;
    }
    const reply = this.respond(msg, 'udp');
    if (!reply) return;
    this.udpInFlight++;
    udp.send(reply, rinfo.port, rinfo.address, () => this.udpInFlight--);
  }

  private listenTcp(host: string, port: number): Promise<net.Server> {
    const server = net.createServer((socket) => this.onConnection(socket));
    // Past it Node closes new connections at once: no queue of them builds up.
    server.maxConnections = MAX_TCP_CONNECTIONS;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port, exclusive: true }, () => {
        server.off('error', reject);
        server.on('error', (err) => this.options.logger.warn({ err }, 'DNS TCP server error'));
        resolve(server);
      });
    });
  }

  /** RFC 1035 4.2.2 / RFC 7766: messages with a two-byte length prefix, possibly pipelined. */
  private onConnection(socket: net.Socket): void {
    socket.setTimeout(TCP_IDLE_MS, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      // Never more than one message (at most 65,537 bytes) plus one chunk is held.
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= 2) {
        const length = pending.readUInt16BE(0);
        if (pending.length < 2 + length) break;
        const msg = pending.subarray(2, 2 + length);
        pending = pending.subarray(2 + length);
        const reply = this.respond(msg, 'tcp');
        if (!reply) {
          socket.destroy();
          return;
        }
        const prefix = Buffer.alloc(2);
        prefix.writeUInt16BE(reply.length);
        socket.write(Buffer.concat([prefix, reply]));
        if (socket.writableLength > MAX_TCP_BACKLOG_BYTES) {
          this.dropped.inc({ reason: 'tcp_backlog' });
          socket.destroy();
          return;
        }
      }
    });
  }

  /** The reply to one message, or undefined when it must be dropped. */
  respond(msg: Buffer, transport: Transport): Buffer | undefined {
    if (msg.length < HEADER_BYTES) {
      this.dropped.inc({ reason: 'malformed' });
      return undefined;
    }
    const id = msg.readUInt16BE(0);
    const flags = msg.readUInt16BE(2);
    // Never answer a response: two servers would bounce packets between them forever.
    if ((flags & QR) !== 0) {
      this.dropped.inc({ reason: 'malformed' });
      return undefined;
    }
    const opcode = (flags >> 11) & 0xf;
    let query: packet.DecodedPacket;
    try {
      query = packet.decode(msg);
    } catch {
      return this.error(id, opcode, RCODE.FORMERR, transport);
    }
    if (opcode !== 0) return this.error(id, opcode, RCODE.NOTIMP, transport);
    const question = query.questions?.[0];
    if (!question || query.questions!.length !== 1) {
      return this.error(id, opcode, RCODE.FORMERR, transport);
    }
    try {
      return this.answer(id, flags, question, query, transport);
    } catch (err) {
      // A question dns-packet read but cannot write back (a bug of ours or of it): SERVFAIL.
      this.options.logger.warn({ err, name: question.name }, 'DNS answer failed');
      return this.error(id, opcode, RCODE.SERVFAIL, transport);
    }
  }

  private answer(
    id: number,
    flags: number,
    question: packet.Question,
    query: packet.DecodedPacket,
    transport: Transport,
  ): Buffer {
    const opt = query.additionals?.find((a) => a.type === 'OPT');
    const ownOpt = (extendedRcode: number): packet.Answer => ({
      type: 'OPT',
      name: '.',
      udpPayloadSize: EDNS_ADVERTISED,
      extendedRcode,
      ednsVersion: 0,
      flags: 0,
      flag_do: false,
      options: [],
    });
    // Only EDNS version 0 exists: a higher one gets BADVERS with this server's version, so
    // the client asks again with 0 (RFC 6891 6.1.3) instead of reading an answer it did not ask.
    if (opt && ((opt as { ednsVersion?: number }).ednsVersion ?? 0) > 0) {
      this.queries.inc({ transport, rcode: 'BADVERS' });
      return packet.encode({
        type: 'response',
        id,
        flags: flags & packet.RECURSION_DESIRED,
        questions: [question],
        additionals: [ownOpt(BADVERS >> 4)],
      });
    }
    const answer = answerQuestion(this.options.mesh(), question, { ttlSeconds: this.ttlSeconds });
    const edns: packet.Answer[] = opt ? [ownOpt(0)] : [];
    const header =
      (answer.authoritative ? packet.AUTHORITATIVE_ANSWER : 0) |
      (flags & packet.RECURSION_DESIRED) |
      answer.rcode;
    const encode = (answers: packet.Answer[], additionals: packet.Answer[]): Buffer =>
      packet.encode({
        type: 'response',
        id,
        flags: header,
        questions: [question],
        answers,
        authorities: answer.authorities,
        additionals: [...additionals, ...edns],
      });
    const full = encode(answer.answers, answer.additionals);
    this.queries.inc({ transport, rcode: rcodeName(answer.rcode) });
    if (transport === 'tcp') {
      return full.length <= TCP_MAX ? full : fitTcp(answer.answers, answer.additionals, encode);
    }
    const limit = opt
      ? Math.min(
          Math.max((opt as { udpPayloadSize: number }).udpPayloadSize, UDP_PLAIN_MAX),
          EDNS_MAX,
        )
      : UDP_PLAIN_MAX;
    if (full.length <= limit) return full;
    // Too large for UDP: the TC bit tells the client to ask again over TCP (RFC 7766).
    return packet.encode({
      type: 'response',
      id,
      flags: header | packet.TRUNCATED_RESPONSE,
      questions: [question],
      additionals: edns,
    });
  }

  private error(id: number, opcode: number, rcode: number, transport: Transport): Buffer {
    this.queries.inc({ transport, rcode: rcodeName(rcode) });
    // Header only: the question could not be read (or is not one this server takes).
    const reply = Buffer.alloc(HEADER_BYTES);
    reply.writeUInt16BE(id, 0);
    reply.writeUInt16BE(QR | (opcode << 11) | rcode, 2);
    return reply;
  }
}

/**
 * The first records of an answer too large for one TCP message (a service with hundreds of
 * instances: ~80 bytes per SRV record and its address) that fit in it; an SRV
 * record's address stays with it. Binary search: each try is one encode.
 */
function fitTcp(
  answers: packet.Answer[],
  additionals: packet.Answer[],
  encode: (answers: packet.Answer[], additionals: packet.Answer[]) => Buffer,
): Buffer {
  const take = (n: number): Buffer => {
    const kept = answers.slice(0, n);
    const targets = new Set(
      kept.map((a) => (a.type === 'SRV' ? a.data.target.toLowerCase() : undefined)),
    );
    return encode(
      kept,
      additionals.filter((a) => targets.has(a.name.toLowerCase())),
    );
  };
  // The most records that fit: take(low) fits, take(answers.length) does not.
  let low = 0;
  let high = answers.length - 1;
  while (low < high) {
    const mid = (low + high + 1) >> 1;
    if (take(mid).length <= TCP_MAX) low = mid;
    else high = mid - 1;
  }
  return take(low);
}

function rcodeName(rcode: number): string {
  return Object.entries(RCODE).find(([, v]) => v === rcode)?.[0] ?? String(rcode);
}

/**
 * Where UDP listens for `host`. A socket bound to a wildcard (0.0.0.0, ::) answers from the
 * address the kernel picks for the way back to the client, not the one the client asked, and
 * Node cannot read a datagram's destination (no IP_PKTINFO): on a host with several addresses
 * a client asking one got its answer from another and dropped it (dig: a timeout). So, as
 * dnsmasq's bind-interfaces, a wildcard binds each address os.networkInterfaces() lists at
 * start (0.0.0.0: the IPv4 ones; ::, dual-stack like Node's own, both families; IPv6
 * link-local ones with their zone). Not covered (docs/dns.md): addresses added later, and the
 * loopback addresses other than the one listed (127.0.0.2... : no answer, the port is closed).
 * Another host, or a host without any address listed, is bound as given.
 */
export function udpAddresses(host: string, interfaces = networkInterfaces()): string[] {
  const v4 = host === '0.0.0.0';
  const v6 = isIPv6(host) && /^[:0]+$/.test(host);
  if (!v4 && !v6) return [host];
  const out = new Set<string>();
  for (const [name, list] of Object.entries(interfaces)) {
    for (const a of list ?? []) {
      if (a.family === 'IPv4') out.add(a.address);
      else if (v6) out.add(a.scopeid ? `${a.address}%${name}` : a.address);
    }
  }
  return out.size > 0 ? [...out] : [host];
}

function bindUdp(socket: dgram.Socket, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ address: host, port, exclusive: true }, () => {
      socket.off('error', reject);
      resolve(socket.address().port);
    });
  });
}
