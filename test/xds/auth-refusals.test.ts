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
    const refusals = new AuthRefusals(counters, new LifecycleLog(silentLogger), 3, 60_000);
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
    const refusals = new AuthRefusals(new XdsCounters(), new LifecycleLog(silentLogger), 3, 50);
    const call = new Call();
    refusals.refuse(call, 'sotw', missing);
    expect(call.status).toBeUndefined();
    await new Promise((r) => setTimeout(r, 100));
    expect(call.status?.code).toBe(GrpcStatus.UNAUTHENTICATED);
  });
});
