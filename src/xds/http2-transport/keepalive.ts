// HTTP/2 keepalive, as grpc-js's server did it for us (keepalive_time 30 s, timeout 10 s): a
// PING to every connection every 30 s, and a connection that has not answered within 10 s is
// closed, so a dead sidecar's stream is noticed without application traffic. One timer for
// all sessions rather than two per session (10,000 sessions in the W9 storm).
import type { ServerHttp2Session } from 'node:http2';

export const KEEPALIVE_TIME_MS = 30_000;
export const KEEPALIVE_TIMEOUT_MS = 10_000;

interface PingState {
  /** When the last ping was sent (0: none yet) and whether its answer is still awaited. */
  sentAt: number;
  awaiting: boolean;
}

export class Keepalive {
  private readonly sessions = new Map<ServerHttp2Session, PingState>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly timeMs = KEEPALIVE_TIME_MS,
    private readonly timeoutMs = KEEPALIVE_TIMEOUT_MS,
  ) {}

  add(session: ServerHttp2Session): void {
    this.sessions.set(session, { sentAt: Date.now(), awaiting: false });
    session.once('close', () => this.sessions.delete(session));
    if (!this.timer) {
      // Ticks often enough that a missing answer is noticed at most timeout/2 late.
      this.timer = setInterval(
        () => this.tick(),
        Math.max(50, Math.min(this.timeMs, this.timeoutMs) / 2),
      );
      this.timer.unref();
    }
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.sessions.clear();
  }

  private tick(): void {
    const now = Date.now();
    for (const [session, state] of this.sessions) {
      if (state.awaiting) {
        if (now - state.sentAt >= this.timeoutMs) {
          this.sessions.delete(session);
          session.destroy();
        }
        continue;
      }
      if (now - state.sentAt < this.timeMs) continue;
      state.sentAt = now;
      state.awaiting = true;
      let sent = false;
      try {
        sent = session.ping((err) => {
          if (!err) state.awaiting = false;
        });
      } catch {
        sent = false; // closing or destroyed
      }
      if (!sent) {
        this.sessions.delete(session);
        session.destroy();
      }
    }
  }
}
