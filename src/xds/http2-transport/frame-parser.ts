// gRPC's length-prefixed messages (1 byte compressed flag, 4 bytes big-endian length, the
// message) read out of HTTP/2 DATA chunks. A message that lies within one chunk is handed on
// as a view into it, not copied (grpc-js's StreamDecoder copies every message once more:
// 5–10 % of the W2 storm's CPU); one split over chunks is gathered into one buffer of its size.
// A length over the limit is refused from its prefix, before anything of it is buffered.

export interface RawMessage {
  readonly compressed: boolean;
  readonly bytes: Buffer;
}

export class MessageTooLarge extends Error {
  override readonly name: string = 'MessageTooLarge';
}

const PREFIX = 5;

export class GrpcFrameParser {
  /** The prefix read so far, when a chunk ended inside it. */
  private prefix: Buffer | undefined;
  private prefixHave = 0;
  /** The message being gathered over several chunks. */
  private partial: Buffer | undefined;
  private partialHave = 0;
  private compressed = false;

  constructor(
    /** Largest message length accepted (-1: no limit). */
    private readonly maxLength: number,
    private readonly onMessage: (message: RawMessage) => void,
  ) {}

  /** Reads a chunk; throws MessageTooLarge (the stream must end then). */
  push(chunk: Buffer): void {
    let pos = 0;
    const end = chunk.length;
    while (pos < end) {
      if (this.partial) {
        const take = Math.min(end - pos, this.partial.length - this.partialHave);
        chunk.copy(this.partial, this.partialHave, pos, pos + take);
        this.partialHave += take;
        pos += take;
        if (this.partialHave === this.partial.length) {
          const bytes = this.partial;
          this.partial = undefined;
          this.onMessage({ compressed: this.compressed, bytes });
        }
        continue;
      }
      let length: number;
      if (this.prefix === undefined && end - pos >= PREFIX) {
        // The common case: the whole prefix in this chunk.
        this.compressed = chunk[pos] === 1;
        length = chunk.readUInt32BE(pos + 1);
        pos += PREFIX;
      } else {
        this.prefix ??= Buffer.alloc(PREFIX);
        const take = Math.min(end - pos, PREFIX - this.prefixHave);
        chunk.copy(this.prefix, this.prefixHave, pos, pos + take);
        this.prefixHave += take;
        pos += take;
        if (this.prefixHave < PREFIX) return;
        this.compressed = this.prefix[0] === 1;
        length = this.prefix.readUInt32BE(1);
        this.prefix = undefined;
        this.prefixHave = 0;
      }
      if (this.maxLength !== -1 && length > this.maxLength) {
        throw new MessageTooLarge(
          `Received message larger than max (${length} vs ${this.maxLength})`,
        );
      }
      if (end - pos >= length) {
        this.onMessage({ compressed: this.compressed, bytes: chunk.subarray(pos, pos + length) });
        pos += length;
      } else {
        this.partial = Buffer.allocUnsafe(length);
        this.partialHave = 0;
      }
    }
  }
}
