// The xDS port's connections are accepted as they come and handed to the HTTP/2 server a slice
// at a time. libuv accepts one connection per event-loop turn (libuv#3696), and Node's http2
// server set each one up in that turn (the native Http2Session, settings, socket wiring:
// ~100 µs), while the turn also carried every other session's requests: in a storm of 10,000
// sidecars the kernel's accept queue (net.core.somaxconn, 4096 here) overflowed, and the
// handshakes it dropped came back 1, 3, 7 s later while the control plane sat idle between
// (bench W9: ~40,000–50,000 `nstat` ListenOverflows a storm, idle a quarter of it). Here a
// connection costs its turn a socket object (~20 µs), paused; while connections keep coming
// (one was accepted since the last hand-off) sessions are set up one a millisecond at most
// (about what the control plane serves in a storm), so turns stay short and the queue drains;
// then in slices, in the order they came. (At one every 5 ms, a W9 storm whose connections
// came over 2.5 s got its first response at 1.8 s: the control plane had mostly waited.)
import * as net from 'node:net';

/** How long one turn may spend setting up sessions before I/O (accepts, requests) is let through. */
const HAND_OFF_SLICE_MS = 10;
/** While connections keep coming, one session is set up this often at most. */
const ARRIVING_HAND_OFF_MS = 1;

export class Acceptor {
  readonly server: net.Server;
  /** Accepted, not yet handed on (from `head`). */
  private queue: net.Socket[] = [];
  private head = 0;
  private scheduled = false;
  /** A connection was accepted since the last hand-off (connections are still coming). */
  private arriving = false;
  /** When sessions were last set up (performance.now()). */
  private handedAt = -Infinity;

  constructor(
    /** Sets up the connection's session (the http2 server's 'connection' handling). */
    private readonly handOff: (socket: net.Socket) => void,
  ) {
    this.server = net.createServer({ pauseOnConnect: true }, (socket) => this.accepted(socket));
  }

  /** Connections accepted and waiting for their session (tests). */
  get waiting(): number {
    return this.queue.length - this.head;
  }

  /** Drops the connections still waiting (shutdown). */
  dropWaiting(): void {
    const waiting = this.queue.slice(this.head);
    this.queue = [];
    this.head = 0;
    for (const socket of waiting) socket.destroy();
  }

  private accepted(socket: net.Socket): void {
    this.queue.push(socket);
    this.arriving = true;
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.handOn);
  }

  private readonly handOn = (): void => {
    this.scheduled = false;
    const now = performance.now();
    // While they keep coming, turns are left to accepting them (the next turn, and its
    // accept, comes at once), setting one up at most every ARRIVING_HAND_OFF_MS.
    let until = now + HAND_OFF_SLICE_MS;
    if (this.arriving) {
      this.arriving = false;
      if (now - this.handedAt < ARRIVING_HAND_OFF_MS) {
        this.scheduled = true;
        setImmediate(this.handOn);
        return;
      }
      until = 0;
    }
    this.handedAt = now;
    while (this.head < this.queue.length) {
      const socket = this.queue[this.head++]!;
      // One that went away while it waited has nothing to set up.
      if (!socket.destroyed) this.handOff(socket);
      if (performance.now() >= until) break;
    }
    if (this.head < this.queue.length) {
      this.scheduled = true;
      setImmediate(this.handOn);
      return;
    }
    this.queue = [];
    this.head = 0;
  };
}
