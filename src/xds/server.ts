// The xDS gRPC server: protocol only. It serves whatever the ConfigWatcher (the snapshot
// store) holds and knows nothing about where the catalog came from.
import * as grpc from '@grpc/grpc-js';
import type { ConfigWatcher } from '../snapshot/store.js';
import type { Logger } from '../telemetry/logger.js';
import { DeltaStream } from './delta-stream.js';
import { releaseDecodedMessages } from './grpc-decoder-release.js';
import {
  adsServiceDefinition,
  type DeltaDiscoveryRequest,
  type DiscoveryRequest,
} from './messages.js';
import type { ProxyAuthenticator } from './auth.js';
import type { XdsObserver } from './observer.js';
import type { StreamContext } from './ads-stream.js';
import { SotwStream } from './sotw-stream.js';
import type { StreamInfo } from './type-status.js';

export interface XdsServerOptions {
  readonly watcher: ConfigWatcher;
  readonly observer: XdsObserver;
  readonly logger: Logger;
  /** Require callers to authenticate (tokens); without it any node may connect (development). */
  readonly authenticator?: ProxyAuthenticator;
}

releaseDecodedMessages();

export class XdsServer {
  private readonly server: grpc.Server;
  private readonly streams = new Map<number, StreamInfo>();
  private nextId = 1;

  /** One context for every stream (a thousand streams need not carry a thousand copies). */
  private readonly streamContext: StreamContext;

  constructor(options: XdsServerOptions) {
    this.streamContext = {
      watcher: options.watcher,
      observer: options.observer,
      logger: options.logger,
      authenticator: options.authenticator,
      onClose: (s: StreamInfo) => this.streams.delete(s.id),
    };
    this.server = new grpc.Server({
      // Large meshes produce large CDS/EDS responses; Envoy accepts them, so must we.
      'grpc.max_send_message_length': -1,
      'grpc.max_receive_message_length': 16 * 1024 * 1024,
      // Notice dead sidecars (and let NATs keep the connection) without application traffic.
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.keepalive_permit_without_calls': 1,
      // Channelz stays on although /metrics covers what it offers: with it off, grpc-js
      // 1.14.7 no longer tracks sessions for forceShutdown, so a stopped server would leave
      // sidecars connected (caught by test/e2e/mesh.test.ts, control plane restart).
    });
    this.server.addService(adsServiceDefinition, {
      StreamAggregatedResources: (call: grpc.ServerDuplexStream<DiscoveryRequest, Buffer>) =>
        this.track(new SotwStream(call, this.streamContext, this.nextId++, 'sotw')),
      DeltaAggregatedResources: (call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, Buffer>) =>
        this.track(new DeltaStream(call, this.streamContext, this.nextId++, 'delta')),
    });
  }

  /** Binds and starts serving; resolves with the bound port (useful with port 0). */
  listen(
    host: string,
    port: number,
    credentials = grpc.ServerCredentials.createInsecure(),
  ): Promise<number> {
    const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    return new Promise((resolve, reject) => {
      this.server.bindAsync(address, credentials, (err, bound) => {
        if (err) reject(new Error(`cannot listen for xDS on ${address}: ${err.message}`));
        else resolve(bound);
      });
    });
  }

  /** Connected streams and their per-type sync state (read-only use). */
  get connected(): ReadonlyMap<number, StreamInfo> {
    return this.streams;
  }

  /** Stops accepting, gives streams `graceMs` to finish, then cuts them. */
  async close(graceMs = 1000): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Cuts every stream at once (tests: simulate a crash). */
  forceClose(): void {
    this.server.forceShutdown();
  }

  private track(stream: SotwStream | DeltaStream): void {
    this.streams.set(stream.info.id, stream.info);
    stream.start();
  }
}
