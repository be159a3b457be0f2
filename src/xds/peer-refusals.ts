// A bound per remote address on streams refused for their credentials (auth-refusals.ts). One
// client opening such streams in a loop got, for each, a wait for its first request and a warn
// line (within the lifecycle budget, which it alone could use up). Past PEER_REFUSALS_PER_WINDOW
// refusals from one address in a window, the rest are refused at once and quietly, and one
// line per address at the window's end counts them. Only refusals are counted: a sidecar with a
// good token from the same address is never checked here. What stays: its TLS handshake, HTTP/2
// stream and token check (the token must be checked to tell a sidecar from the loop).
import type { Logger } from '../telemetry/logger.js';

/** Refusals from one address per window that still wait for the node and get their own line. */
export const PEER_REFUSALS_PER_WINDOW = 20;
export const PEER_REFUSAL_WINDOW_MS = 10_000;
/** Addresses tracked per window (~150 B each); past that, a new one is treated as before. */
export const MAX_TRACKED_PEERS = 10_000;
/** Summary lines per window, one per address; the addresses past them share one line. */
export const MAX_PEER_SUMMARY_LINES = 20;

interface PeerCount {
  refused: number;
  /** Refused past the bound, by reason (missing-token, bad-signature, ...). */
  quiet: number;
  readonly reasons: Record<string, number>;
}

/** The address of a peer as the transports print it: `host:port`, `[v6]:port` or `host`. */
export function peerAddress(peer: string): string {
  const bracketed = /^\[(.*)\]:\d+$/.exec(peer);
  if (bracketed) return bracketed[1]!;
  // host:port, with an IPv6 host unbracketed (`::1:40000`): the port is after the last colon.
  const m = /^(.+):\d+$/.exec(peer);
  return m ? m[1]! : peer;
}

export class PeerRefusals {
  /** This window's refusals by address; cleared when the window ends (expiring every peer). */
  private readonly peers = new Map<string, PeerCount>();
  private window: NodeJS.Timeout | undefined;

  constructor(
    private readonly logger: Logger,
    private readonly perWindow = PEER_REFUSALS_PER_WINDOW,
    private readonly windowMs = PEER_REFUSAL_WINDOW_MS,
    private readonly maxPeers = MAX_TRACKED_PEERS,
  ) {}

  /** Counts a refusal from `peer`; true: past the bound, to be refused at once and quietly. */
  over(peer: string, reason: string): boolean {
    const address = peerAddress(peer);
    let count = this.peers.get(address);
    if (!count) {
      if (this.peers.size >= this.maxPeers) return false;
      count = { refused: 0, quiet: 0, reasons: {} };
      this.peers.set(address, count);
      if (!this.window) {
        this.window = setTimeout(() => this.flush(), this.windowMs);
        this.window.unref();
      }
    }
    count.refused++;
    if (count.refused <= this.perWindow) return false;
    count.quiet++;
    count.reasons[reason] = (count.reasons[reason] ?? 0) + 1;
    return true;
  }

  /** Ends the window: a line per address refused past the bound (also at shutdown). */
  flush(): void {
    if (this.window) clearTimeout(this.window);
    this.window = undefined;
    let lines = 0;
    let restStreams = 0;
    let restPeers = 0;
    for (const [address, { quiet, reasons }] of this.peers) {
      if (quiet === 0) continue;
      if (lines >= MAX_PEER_SUMMARY_LINES) {
        restStreams += quiet;
        restPeers++;
        continue;
      }
      lines++;
      this.logger.warn(
        { peer: address, refused: quiet, reasons, ...this.bound() },
        `refused ${quiet} more streams from ${address} (bad token)`,
      );
    }
    if (restPeers > 0) {
      this.logger.warn(
        { peers: restPeers, refused: restStreams, ...this.bound() },
        `refused ${restStreams} more streams from ${restPeers} more addresses (bad token)`,
      );
    }
    this.peers.clear();
  }

  private bound() {
    return { perPeerLinesPerWindow: this.perWindow, windowMs: this.windowMs };
  }
}
