// A fix for @grpc/grpc-js (pinned 1.14.7): its StreamDecoder keeps slices of the last message
// it read (readCompressFlag, readPartialMessage) until the next message begins. Those slices pin
// the whole HTTP/2 read chunk they came from, so every SotW stream keeps Envoy's last ACK alive
// (its full EDS subscription, ~15 KB in a 1000-service mesh): measured 7–10 KB per connected
// proxy. Once a message is complete the decoder re-creates both fields before using them again,
// so dropping them then changes nothing else. Applied once, when the xDS server is loaded.
import { createRequire } from 'node:module';

interface DecoderState {
  readState: number;
  readCompressFlag: Buffer;
  readPartialMessage: Buffer[];
}

const NO_DATA = 0; // grpc-js ReadState.NO_DATA
const EMPTY = Buffer.alloc(0);
let applied = false;

/** Installs the fix; returns whether the decoder looked as expected (else it is left alone). */
export function releaseDecodedMessages(): boolean {
  if (applied) return true;
  const require = createRequire(import.meta.url);
  const { StreamDecoder } = require('@grpc/grpc-js/build/src/stream-decoder.js') as {
    StreamDecoder: new (max: number) => DecoderState & { write(data: Buffer): Buffer[] };
  };
  const probe = new StreamDecoder(-1);
  const proto = StreamDecoder.prototype as { write(this: DecoderState, data: Buffer): Buffer[] };
  // Another grpc-js version may work differently: then the fix stays out of the way.
  if (
    typeof proto.write !== 'function' ||
    probe.readState !== NO_DATA ||
    !Array.isArray(probe.readPartialMessage) ||
    !Buffer.isBuffer(probe.readCompressFlag)
  ) {
    return false;
  }
  const write = proto.write;
  proto.write = function (this: DecoderState, data: Buffer): Buffer[] {
    const messages = write.call(this, data);
    if (this.readState === NO_DATA) {
      this.readCompressFlag = EMPTY;
      this.readPartialMessage = [];
    }
    return messages;
  };
  applied = true;
  return true;
}
