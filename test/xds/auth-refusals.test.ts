// A stream refused for its token waits a moment for its first request, to name its node in the
// log; how many wait at once is bounded, so a flood of streams that send nothing costs at most
// so many held streams. (Over real gRPC, both transports: test/xds/admission-auth.test.ts.)
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { CallStatus } from '../../src/xds/ads-call.js';
import { AuthError } from '../../src/xds/auth.js';
import { AuthRefusals, MAX_REFUSALS_WAITING } from '../../src/xds/auth-refusals.js';
import { GrpcStatus } from '../../src/xds/grpc-status-codes.js';
import { LifecycleLog } from '../../src/xds/lifecycle-log.js';
import { XdsCounters } from '../../src/xds/observer.js';
import { PeerRefusals, peerAddress } from '../../src/xds/peer-refusals.js';
import { silentLogger } from '../../src/telemetry/logger.js';

/** The part of a call a refusal uses: its events, its peer, the status it is ended with. */
class Call extends EventEmitter {
  cancelled = false;
  status: CallStatus | undefined;
  readonly metadata = { get: () => [] };
  getPeer(): string {
    return '127.0.0.1:40000';
  }
  /** As the transports do: 'error' with a status ends the call (listeners or none). */
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'error') this.status ??= args[0] as CallStatus;
    if (event === 'error' && this.listenerCount('error') === 0) return true;
    return super.emit(event, ...args);
  }
  pause = () => this;
  resume = () => this;
  write = () => true;
  end(): void {}
}

const missing = new AuthError(GrpcStatus.UNAUTHENTICATED, 'missing-token', 'no proxy token');

describe('refusals waiting for their first request', () => {
  it(`at most ${MAX_REFUSALS_WAITING} wait at once; past that, refused at once; a first request ends the wait`, async () => {
    const counters = new XdsCounters();
    const refusals = new AuthRefusals(
      counters,
      new LifecycleLog(silentLogger),
      new PeerRefusals(silentLogger),
      3,
      60_000,
    );
    const calls = Array.from({ length: 5 }, () => new Call());
    for (const c of calls) refusals.refuse(c, 'sotw', missing);
    expect(counters.authFailures).toBe(5);
    expect(calls.map((c) => c.status?.code)).toEqual([
      undefined,
      undefined,
      undefined,
      GrpcStatus.UNAUTHENTICATED,
      GrpcStatus.UNAUTHENTICATED,
    ]);
    calls[0]!.emit('data', { node: { id: 'hello-1' } });
    expect(calls[0]!.status).toEqual({
      code: GrpcStatus.UNAUTHENTICATED,
      details: 'no proxy token',
    });
    calls[1]!.cancelled = true;
    calls[1]!.emit('cancelled');
    expect(calls[1]!.status).toBeUndefined(); // gone: nothing to send
    // Two left waiting: two may wait again.
    const more = [new Call(), new Call(), new Call()];
    for (const c of more) refusals.refuse(c, 'delta', missing);
    expect(more.map((c) => c.status?.code)).toEqual([
      undefined,
      undefined,
      GrpcStatus.UNAUTHENTICATED,
    ]);
  });

  it('a stream that sends nothing is refused once the wait is over', async () => {
    const refusals = new AuthRefusals(
      new XdsCounters(),
      new LifecycleLog(silentLogger),
      new PeerRefusals(silentLogger),
      3,
      50,
    );
    const call = new Call();
    refusals.refuse(call, 'sotw', missing);
    expect(call.status).toBeUndefined();
    await new Promise((r) => setTimeout(r, 100));
    expect(call.status?.code).toBe(GrpcStatus.UNAUTHENTICATED);
  });
});

describe('refusals per remote address', () => {
  it('peerAddress: the address without the port, as either transport prints it', () => {
    expect(peerAddress('127.0.0.1:40000')).toBe('127.0.0.1');
    expect(peerAddress('::1:40000')).toBe('::1');
    expect(peerAddress('::ffff:10.0.0.7:5000')).toBe('::ffff:10.0.0.7');
    expect(peerAddress('[fe80::1]:5000')).toBe('fe80::1');
    expect(peerAddress('unknown')).toBe('unknown');
  });

  it('tracks so many addresses at most, and forgets them when the window ends', async () => {
    const peers = new PeerRefusals(silentLogger, 1, 50, 2);
    expect(peers.over('10.0.0.1:1', 'missing-token')).toBe(false);
    expect(peers.over('10.0.0.1:2', 'missing-token')).toBe(true);
    expect(peers.over('10.0.0.2:1', 'missing-token')).toBe(false);
    // A third address is not tracked (memory stays bounded): treated as before, never quiet.
    expect(peers.over('10.0.0.3:1', 'missing-token')).toBe(false);
    expect(peers.over('10.0.0.3:2', 'missing-token')).toBe(false);
    await new Promise((r) => setTimeout(r, 100));
    // A new window: every address starts again.
    expect(peers.over('10.0.0.1:3', 'missing-token')).toBe(false);
    expect(peers.over('10.0.0.3:3', 'missing-token')).toBe(false);
    expect(peers.over('10.0.0.3:4', 'missing-token')).toBe(true);
    peers.flush();
  });
});
