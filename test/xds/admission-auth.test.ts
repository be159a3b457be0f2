// --stream-rate and --max-streams are for sidecars with a proxy token. QA found that a stream
// without a token, or with a bad one, took a rate token and a stream slot before its token was
// checked: a flood of them from anyone who reaches the xDS port delayed or refused the real
// sidecars. Now credentials are checked first and such a stream is refused (UNAUTHENTICATED)
// without taking either; /metrics counts the flood. A real control plane (token auth, the
// built-in CA's tokens), real gRPC, both transports.
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/app.js';
import { MemoryCaStore, openCa } from '../../src/ca/index.js';
import { parseCatalog } from '../../src/catalog/schema.js';
import { XDS_TRANSPORTS, type XdsTransportName } from '../../src/xds/ads-transport.js';
import { FIRST_REQUEST_WAIT_MS } from '../../src/xds/auth-refusals.js';
import type { XdsLimits } from '../../src/xds/limits.js';
import { PEER_REFUSALS_PER_WINDOW } from '../../src/xds/peer-refusals.js';
import { deltaClient, node, sotwClient, typeUrl } from '../support/ads-client.js';
import { twoServices } from '../support/control-plane.js';
import { quoted, writeReliabilityResult } from '../support/reliability.js';
import { SettableSource, adminGet, startLoopbackControlPlane } from '../support/settable-source.js';

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

type Line = Record<string, unknown> & { msg: string };

async function controlPlane(transport: XdsTransportName, xdsLimits: Partial<XdsLimits>) {
  const lines: Line[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Line);
      done();
    },
  });
  const ca = await openCa({ store: new MemoryCaStore(), env: {} });
  // Another CA's token: well formed and signed, by a key this control plane does not trust.
  const otherCa = await openCa({ store: new MemoryCaStore(), env: {} });
  const badToken = await otherCa.tokens.issue('hello');
  otherCa.stop();
  const cp = await startLoopbackControlPlane(new SettableSource(parseCatalog(twoServices())), {
    logger: pino({ level: 'info' }, sink),
    security: { ca, mtls: false, auth: 'token', adminAuth: 'none' },
    xdsTransport: transport,
    xdsLimits,
  });
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= cp.stop().then(() => {
      ca.stop();
    }));
  cleanup.push(stop);
  return { cp, lines, token: () => ca.tokens.issue('hello'), badToken, stop };
}

/** A stream that sends its first request (node `id`), as Envoy does; tracked for cleanup. */
function open(cp: RunningControlPlane, id: string, token?: string, delta = false) {
  const c = delta ? deltaClient(cp.xdsPort, token) : sotwClient(cp.xdsPort, token);
  cleanup.push(() => c.close());
  c.send({ node: node(id, 'hello'), typeUrl: typeUrl('clusters') });
  return c;
}

/** Ends within `ms`: its status code, or 'open' (still open then). */
function endedWithin(
  ended: Promise<grpc.ServiceError | undefined>,
  ms: number,
): Promise<number | 'open'> {
  return Promise.race([
    ended.then((e) => e?.code ?? grpc.status.OK),
    new Promise<'open'>((r) => setTimeout(() => r('open'), ms)),
  ]);
}

/** `{labels}` → value of every sample of `name` on the control plane's /metrics. */
async function samples(cp: RunningControlPlane, name: string): Promise<Record<string, number>> {
  const text = await (await adminGet(cp, '/metrics')).text();
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m && m[1] === name) out[m[2] ?? '{}'] = Number(m[3]);
  }
  return out;
}

const { UNAUTHENTICATED, RESOURCE_EXHAUSTED } = grpc.status;

describe.each(XDS_TRANSPORTS)('admission over %s: credentials first', (transport) => {
  it('a flood without a token or with a bad one leaves --stream-rate to the sidecars with one', async () => {
    // Burst 2, then one new stream per 2 s: the flood alone used to empty it for seconds.
    const { cp, lines, token, badToken } = await controlPlane(transport, {
      streamRate: 0.5,
      streamBurst: 2,
    });
    const flood = Array.from({ length: 20 }, (_, i) =>
      open(cp, `intruder-${i}`, i % 2 ? badToken : undefined, i % 4 >= 2),
    );
    const codes = await Promise.all(flood.map((c) => endedWithin(c.ended, 5_000)));
    expect(codes).toEqual(Array.from({ length: 20 }, () => UNAUTHENTICATED));

    // The burst is still there for real sidecars, at once.
    const tokens = [await token(), await token()];
    const started = performance.now();
    const sidecars = [open(cp, 'hello-1', tokens[0]), open(cp, 'hello-2', tokens[1], true)];
    for (const s of sidecars) expect((await s.next(2_000)).typeUrl).toBe(typeUrl('clusters'));
    const servedMs = performance.now() - started;
    expect(servedMs).toBeLessThan(900);

    // What an operator sees: every refusal counted by reason, none as over the limits.
    const failures = await samples(cp, 'lucid_mesh_xds_auth_failures_total');
    expect(failures['{reason="missing-token"}']).toBe(10);
    expect(Object.values(failures).reduce((a, b) => a + b, 0)).toBe(20);
    const refused = await samples(cp, 'lucid_mesh_xds_streams_refused_total');
    expect(Object.values(refused).every((v) => v === 0)).toBe(true);
    // And the log: each refusal names its node and where it came from (within the budget).
    const refusedLines = lines.filter((l) => l.msg === 'xds stream refused');
    expect(refusedLines).toHaveLength(20);
    expect(refusedLines.map((l) => l.node).sort()).toEqual(
      flood.map((_, i) => `intruder-${i}`).sort(),
    );
    expect(refusedLines.every((l) => /^127\.0\.0\.1:\d+$/.test(String(l.peer)))).toBe(true);
    if (transport !== 'http2') return; // the default transport's run is the table's row
    const badReason = Object.keys(failures).find((k) => !k.includes('missing-token'));
    const badDetails = (await flood[1]!.ended)?.details;
    writeReliabilityResult({
      id: 'hostile-unauthenticated-flood',
      section: 'hostile',
      test: 'test/xds/admission-auth.test.ts',
      fault:
        'A flood of xDS streams without a proxy token or with a bad one (anyone who reaches the port)',
      behaviour:
        'The token is checked first, from the call metadata: such a stream is refused with `UNAUTHENTICATED` and ' +
        'takes no `--stream-rate` token and no `--max-streams` slot (before, it took both: the same flood got ' +
        'the two sidecars with tokens refused with `RESOURCE_EXHAUSTED`). Counted: ' +
        '`lucid_mesh_xds_auth_failures_total{reason}`; logged within the lifecycle budget with its peer and node.',
      figures:
        `Rate 0.5/s, burst 2; 10 streams without a token, 10 with another CA's token: ` +
        `20 refused \`UNAUTHENTICATED\` (${failures['{reason="missing-token"}']} missing-token, ` +
        `${badReason ? failures[badReason] : 0} ${badReason?.replace(/^\{reason="|"\}$/g, '')}: ` +
        `${quoted(badDetails, 100)}), 0 refused for the limits; then 2 sidecars with tokens ` +
        `served in ${Math.round(servedMs)} ms.`,
    });
  });

  it('streams without a token that never send a request hold no --max-streams slot', async () => {
    const { cp, lines, token } = await controlPlane(transport, { maxStreams: 2 });
    const silent = Array.from({ length: 5 }, () => {
      const c = sotwClient(cp.xdsPort);
      cleanup.push(() => c.close());
      return c;
    });
    await new Promise((r) => setTimeout(r, 300)); // they are there first
    const sidecars = [open(cp, 'hello-1', await token()), open(cp, 'hello-2', await token())];
    for (const s of sidecars) expect((await s.next(2_000)).typeUrl).toBe(typeUrl('clusters'));
    expect(await endedWithin(sidecars[0]!.ended, 0)).toBe('open');
    // Refused once they have had their time to send a first request (Envoy sends it at once).
    const codes = await Promise.all(silent.map((c) => endedWithin(c.ended, 3_000)));
    expect(codes).toEqual(Array.from({ length: 5 }, () => UNAUTHENTICATED));
    const refusedLines = lines.filter((l) => l.msg === 'xds stream refused');
    expect(refusedLines).toHaveLength(5);
    expect(refusedLines.every((l) => l.node === undefined && l.reason === 'missing-token')).toBe(
      true,
    );
    // A third sidecar is over --max-streams 2, as before.
    const third = open(cp, 'hello-3', await token());
    expect(await endedWithin(third.ended, 3_000)).toBe(RESOURCE_EXHAUSTED);
  });

  it('one address looping on bad tokens: past the per-address bound, refused at once, one summary line; its sidecar is served', async () => {
    const { cp, lines, token, badToken, stop } = await controlPlane(transport, {});
    const sidecar = open(cp, 'hello-1', await token());
    expect((await sidecar.next(2_000)).typeUrl).toBe(typeUrl('clusters'));
    const loop = Array.from({ length: PEER_REFUSALS_PER_WINDOW + 10 }, (_, i) =>
      open(cp, `intruder-${i}`, i % 2 ? badToken : undefined),
    );
    const codes = await Promise.all(loop.map((c) => endedWithin(c.ended, 5_000)));
    expect(codes.every((c) => c === UNAUTHENTICATED)).toBe(true);
    // Past the bound, a stream that sends nothing is refused at once, not after the wait.
    const started = performance.now();
    const silent = Array.from({ length: 5 }, () => {
      const c = sotwClient(cp.xdsPort);
      cleanup.push(() => c.close());
      return c;
    });
    const silentCodes = await Promise.all(silent.map((c) => endedWithin(c.ended, 5_000)));
    expect(silentCodes).toEqual(Array.from({ length: 5 }, () => UNAUTHENTICATED));
    expect(performance.now() - started).toBeLessThan(FIRST_REQUEST_WAIT_MS);

    // A sidecar with a good token from the same address, opened now, is served, and the first
    // one is still open.
    const late = open(cp, 'hello-2', await token(), true);
    expect((await late.next(2_000)).typeUrl).toBe(typeUrl('clusters'));
    expect(await endedWithin(sidecar.ended, 0)).toBe('open');

    // Every refusal counted; a line each for the first ones (naming the node), one for the rest.
    const failures = await samples(cp, 'lucid_mesh_xds_auth_failures_total');
    expect(Object.values(failures).reduce((a, b) => a + b, 0)).toBe(loop.length + 5);
    const perStream = lines.filter((l) => l.msg === 'xds stream refused');
    expect(perStream).toHaveLength(PEER_REFUSALS_PER_WINDOW);
    expect(perStream.every((l) => String(l.node).startsWith('intruder-'))).toBe(true);
    await stop(); // ends the window: its summary is logged
    const summaries = lines.filter((l) => /^refused \d+ more streams from /.test(l.msg));
    expect(summaries.map((l) => l.msg)).toEqual([
      'refused 15 more streams from 127.0.0.1 (bad token)',
    ]);
    expect(summaries[0]).toMatchObject({ level: 40, peer: '127.0.0.1', refused: 15 });
  });
});
