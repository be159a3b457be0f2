// ADS served by @grpc/grpc-js (serve --xds-transport grpc-js): the original transport, kept for
// comparison and as a fallback. Its two patches of grpc-js internals (the decoder's retained
// slices, the listen backlog) are applied here and only matter on this path.
import * as grpc from '@grpc/grpc-js';
import type { AdsHandlers, AdsTransport, XdsTls } from './ads-transport.js';
import { releaseDecodedMessages } from './grpc-decoder-release.js';
import type { XdsLimits } from './limits.js';
import { setListenBacklog } from './listen-backlog.js';
import { adsServiceDefinition } from './messages.js';

export class GrpcJsTransport implements AdsTransport {
  private readonly server: grpc.Server;

  constructor(limits: XdsLimits, handlers: AdsHandlers) {
    releaseDecodedMessages();
    this.server = new grpc.Server({
      // Large meshes produce large CDS/EDS responses; Envoy accepts them, so must we.
      'grpc.max_send_message_length': -1,
      // A larger request ends its stream with RESOURCE_EXHAUSTED before it is decoded.
      'grpc.max_receive_message_length': limits.maxRequestBytes,
      // Notice dead sidecars (and let NATs keep the connection) without application traffic.
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.keepalive_permit_without_calls': 1,
      // Channelz stays on although /metrics covers what it offers: with it off, grpc-js
      // 1.14.7 no longer tracks sessions for forceShutdown, so a stopped server would leave
      // sidecars connected (caught by test/e2e/mesh.test.ts, control plane restart).
    });
    // A storm of sidecars connects at once: an accept queue of more than Node's 511.
    setListenBacklog(this.server);
    this.server.addService(adsServiceDefinition, {
      StreamAggregatedResources: handlers.sotw,
      DeltaAggregatedResources: handlers.delta,
    });
  }

  listen(host: string, port: number, tls?: XdsTls): Promise<number> {
    const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    const credentials = tls
      ? grpc.ServerCredentials.createSsl(
          null,
          [{ cert_chain: Buffer.from(tls.cert), private_key: Buffer.from(tls.key) }],
          false,
        )
      : grpc.ServerCredentials.createInsecure();
    return new Promise((resolve, reject) => {
      this.server.bindAsync(address, credentials, (err, bound) => {
        if (err) reject(new Error(`cannot listen for xDS on ${address}: ${err.message}`));
        else resolve(bound);
      });
    });
  }

  shutdown(done: () => void): void {
    this.server.tryShutdown(() => done());
  }

  forceShutdown(): void {
    this.server.forceShutdown();
  }
}
