// HTTP/2 keepalive, as grpc-js's server did it for us (keepalive_time 30 s, timeout 10 s): a
// PING to every connection every 30 s, and a connection that has not answered within 10 s is
// closed, so a dead sidecar's stream is noticed without application traffic. One timer for
// all sessions rather than two per session (10,000 sessions in the W9 storm), and one number
// per session.
import type { ServerHttp2Session } from 'node:http2';

export const KEEPALIVE_TIME_MS = 30_000;
export const KEEPALIVE_TIMEOUT_MS = 10_000;

export class Keepalive {
  /** When the last ping was sent (when it connected, before the first): negative while unanswered. */
  private readonly sessions = new Map<ServerHttp2Session, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly timeMs = KEEPALIVE_TIME_MS,
    private readonly timeoutMs = KEEPALIVE_TIMEOUT_MS,
  ) {}

  add(session: ServerHttp2Session): void {
    this.sessions.set(session, Date.now());
    if (!this.timer) {
      // Ticks often enough that a missing answer is noticed at most timeout/2 late.
      const tick = Math.max(50, Math.min(this.timeMs, this.timeoutMs) / 2);
      this.timer = setInterval(() => this.tick(), tick);
      this.timer.unref();
    }
  }

  /** The session closed (the transport tells; a destroyed one is also dropped at the next tick). */
  remove(session: ServerHttp2Session): void {
    this.sessions.delete(session);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.sessions.clear();
  }

  private tick(): void {
    const now = Date.now();
    for (const [session, sent] of this.sessions) {
      if (session.destroyed) {
        this.sessions.delete(session);
        continue;
      }
      if (sent < 0) {
        if (now + sent >= this.timeoutMs) this.cut(session);
        continue;
      }
      if (now - sent < this.timeMs) continue;
      this.sessions.set(session, -now);
      let ok = false;
      try {
        ok = session.ping((err) => {
          if (!err && this.sessions.has(session)) this.sessions.set(session, now);
        });
      } catch {
        ok = false; // closing or destroyed
      }
      if (!ok) this.cut(session);
    }
  }

  private cut(session: ServerHttp2Session): void {
    this.sessions.delete(session);
    session.destroy();
  }
}
