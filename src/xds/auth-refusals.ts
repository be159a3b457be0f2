// Streams refused for their credentials (no token, a bad, expired or revoked one) before they
// are admitted (server.ts): they take no --stream-rate token and no --max-streams slot, so a
// flood of them from anyone who reaches the xDS port cannot delay or refuse sidecars that hold
// a token. The refusal waits a moment for the stream's first request, which Envoy sends with
// its headers, so that the warn line names the node to give a new token to (as it did when
// tokens were checked on the first request; the ProxyStreamsRefused alert points there). Few
// wait at once, none for long: past that, a stream is refused at once, its line without a node.
// One address refused too often in a window is refused at once and quietly (peer-refusals.ts).
import type { AdsCall } from './ads-call.js';
import type { AuthError } from './auth.js';
import { grpcStatusName } from './grpc-status-codes.js';
import type { LifecycleLog } from './lifecycle-log.js';
import type { NodeMessage } from './messages.js';
import type { XdsObserver } from './observer.js';
import type { PeerRefusals } from './peer-refusals.js';
import type { StreamMode } from './type-status.js';

/** How long a refused stream may take to send its first request (Envoy: at once). */
export const FIRST_REQUEST_WAIT_MS = 1000;
/** Refused streams waiting for their first request at once, at most (a flood: refused at once). */
export const MAX_REFUSALS_WAITING = 1000;

/** Node ids as node.ts accepts them are 253 characters at most; the log takes no more. */
const MAX_LOGGED_NODE_ID = 253;

type FirstRequest = { node?: NodeMessage } | undefined;

export class AuthRefusals {
  private waiting = 0;

  constructor(
    private readonly observer: XdsObserver,
    private readonly log: LifecycleLog,
    private readonly peers: PeerRefusals,
    private readonly maxWaiting = MAX_REFUSALS_WAITING,
    private readonly waitMs = FIRST_REQUEST_WAIT_MS,
  ) {}

  /** Counts the refusal now; ends the call with `err` once its node is known, or given up on. */
  refuse(call: AdsCall<{ node?: NodeMessage }>, mode: StreamMode, err: AuthError): void {
    this.observer.authFailed(undefined, err.reason, err.message);
    if (this.peers.over(call.getPeer(), err.reason)) {
      if (!call.cancelled) call.emit('error', { code: err.code, details: err.message });
      return;
    }
    if (call.cancelled || this.waiting >= this.maxWaiting) {
      this.end(call, mode, err, undefined);
      return;
    }
    this.waiting++;
    let timer: NodeJS.Timeout | undefined;
    /** `ended`: the call already has its status (the transport ended it: a bad message). */
    const done = (req?: FirstRequest, ended = false): void => {
      if (timer === undefined) return;
      clearTimeout(timer);
      timer = undefined;
      this.waiting--;
      this.end(call, mode, err, req, ended);
    };
    timer = setTimeout(done, this.waitMs);
    call.on('data', done);
    call.on('end', () => done());
    call.on('cancelled', () => done());
    call.on('error', () => done(undefined, true));
  }

  /** Logs the per-address counts of the window now (shutdown: none go uncounted). */
  flush(): void {
    this.peers.flush();
  }

  private end(
    call: AdsCall<unknown>,
    mode: StreamMode,
    err: AuthError,
    req: FirstRequest,
    ended = false,
  ): void {
    const id = req?.node?.id;
    const node = typeof id === 'string' && id !== '' ? id.slice(0, MAX_LOGGED_NODE_ID) : undefined;
    // Through the lifecycle budget: anyone who reaches the port can open refused streams.
    this.log.line(
      'refused',
      {
        mode,
        node,
        peer: call.getPeer(),
        code: grpcStatusName(err.code),
        reason: err.reason,
        details: err.message,
      },
      'xds stream refused',
    );
    if (!ended && !call.cancelled) call.emit('error', { code: err.code, details: err.message });
  }
}
