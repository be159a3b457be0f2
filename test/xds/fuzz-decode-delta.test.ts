// Property: the delta request decoder (delta-request.ts: initial_resource_versions read by hand
// when written as Envoy writes them, the rest by protobufjs) reads every input as protobufjs's
// own decoder does: the same fields the server uses, or both reject it. 10,000 inputs, seeded
// (reproducible): requests as Envoy encodes them, requests assembled from raw fields (any
// order, repeated, wrong wire types, unknown fields and groups, empty and invalid UTF-8
// strings, map entries written other ways, resource locators), and byte-level mutations of
// both. (A decoder of every field by hand, as SotW's, was tried for the W1 storm: the same
// ~25 us a request as protobufjs's cold, ~2 us warm, so it was not kept; docs/benchmarks.md.)
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JSON_OPTIONS, messageType } from '../../src/protos/envoy.js';
import { decodeDeltaRequest } from '../../src/xds/delta-request.js';
import { anyDeltaRequestOfAnyShape } from './fuzz-requests.js';

/** Fixed, so a run is reproducible; FUZZ_SEED=<n> explores another stretch of inputs. */
const FUZZ_SEED = Number(process.env.FUZZ_SEED ?? 20261130);

const deltaType = messageType('envoy.service.discovery.v3.DeltaDiscoveryRequest');

type Outcome = { ok: true; value: Record<string, unknown> } | { ok: false; error: string };

const FIELDS = [
  'node',
  'typeUrl',
  'resourceNamesSubscribe',
  'resourceNamesUnsubscribe',
  'initialResourceVersions',
  'responseNonce',
  'errorDetail',
];

/** The fields the server reads (resource locators are checked, never used). */
function normalise(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of FIELDS) if (o[key] !== undefined) out[key] = o[key];
  return out;
}

function reference(bytes: Buffer): Outcome {
  try {
    return {
      ok: true,
      value: normalise(deltaType.toObject(deltaType.decode(bytes), JSON_OPTIONS)),
    };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

function fast(bytes: Buffer): Outcome {
  try {
    const { held, ...rest } = decodeDeltaRequest(bytes);
    const value: Record<string, unknown> = { ...rest };
    // The fast path's entries, read as protobufjs gives them (a plain object, the last wins).
    if (held) value.initialResourceVersions = Object.fromEntries(held.toMap());
    return { ok: true, value: normalise(value) };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

describe('decodeDeltaRequest against protobufjs', () => {
  it('10,000 generated and mutated DeltaDiscoveryRequests: the same fields, or both rejected', () => {
    const tally = { agreed: 0, bothRejected: 0, held: 0 };
    fc.assert(
      fc.property(anyDeltaRequestOfAnyShape, (bytes) => {
        const ref = reference(bytes);
        const got = fast(bytes);
        if (ref.ok) {
          expect(got).toEqual(ref);
          tally.agreed++;
          if (ref.value.initialResourceVersions) tally.held++;
        } else {
          expect(got.ok, `protobufjs rejects it (${ref.error}), the fast path does not`).toBe(
            false,
          );
          tally.bothRejected++;
        }
      }),
      { seed: FUZZ_SEED, numRuns: 10_000 },
    );
    // Both kinds, and requests with entries, must be well represented, or the property says little.
    expect(tally.agreed).toBeGreaterThan(3000);
    expect(tally.bothRejected).toBeGreaterThan(1000);
    expect(tally.held).toBeGreaterThan(500);
    console.log(
      `delta decoder fuzz (seed ${FUZZ_SEED}): ${tally.agreed} agreed (${tally.held} with entries), ${tally.bothRejected} rejected by both`,
    );
  });
});
