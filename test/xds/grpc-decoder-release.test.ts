// The grpc-js StreamDecoder fix: a decoded message's bytes are no longer kept by the decoder
// (they pinned each SotW stream's last ACK), and decoding itself is unchanged.
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { releaseDecodedMessages } from '../../src/xds/grpc-decoder-release.js';

interface Decoder {
  write(data: Buffer): Buffer[];
  readCompressFlag: Buffer;
  readPartialMessage: Buffer[];
}
const { StreamDecoder } = createRequire(import.meta.url)(
  '@grpc/grpc-js/build/src/stream-decoder.js',
) as { StreamDecoder: new (max: number) => Decoder };

function frame(payload: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(payload.length, 1);
  return Buffer.concat([header, payload]);
}

describe('grpc-js decoder release', () => {
  it('applies to the pinned grpc-js', () => {
    expect(releaseDecodedMessages()).toBe(true);
    expect(releaseDecodedMessages()).toBe(true); // idempotent
  });

  it('keeps nothing of a message once it is decoded', () => {
    releaseDecodedMessages();
    const decoder = new StreamDecoder(-1);
    const ack = frame(Buffer.alloc(15_000, 'n'));
    // Arrives in two chunks, as a large ACK does.
    const chunks = [Buffer.from(ack.subarray(0, 6000)), Buffer.from(ack.subarray(6000))];
    expect(decoder.write(chunks[0]!)).toEqual([]);
    const [message] = decoder.write(chunks[1]!);
    expect(message).toEqual(ack);
    const held = [decoder.readCompressFlag, ...decoder.readPartialMessage];
    for (const chunk of chunks) {
      expect(held.some((b) => b.buffer === chunk.buffer)).toBe(false);
    }
  });

  it('decodes as before: several messages in one chunk, one split over many', () => {
    releaseDecodedMessages();
    const decoder = new StreamDecoder(-1);
    const a = frame(Buffer.from('first'));
    const b = frame(Buffer.alloc(0));
    const c = frame(Buffer.from('third message, split'));
    const stream = Buffer.concat([a, b, c]);
    const out: Buffer[] = [];
    for (let i = 0; i < stream.length; i += 7)
      out.push(...decoder.write(stream.subarray(i, i + 7)));
    expect(out).toEqual([a, b, c]);
    expect(decoder.write(Buffer.concat([a, c]))).toEqual([a, c]);
  });
});
