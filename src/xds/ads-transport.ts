// How ADS reaches the xDS server: the two streaming methods, served by grpc-js or by our own
// node:http2 server (serve --xds-transport). The server hands each new call to a handler and
// knows nothing else of the transport.
import type { AdsCall } from './ads-call.js';
import type { DecodedDeltaRequest } from './delta-request.js';
import type { SotwRequest } from './sotw-request.js';

export const XDS_TRANSPORTS = ['http2', 'grpc-js'] as const;
export type XdsTransportName = (typeof XDS_TRANSPORTS)[number];
export const DEFAULT_XDS_TRANSPORT: XdsTransportName = 'http2';

export const ADS_SERVICE = 'envoy.service.discovery.v3.AggregatedDiscoveryService';
export const SOTW_PATH = `/${ADS_SERVICE}/StreamAggregatedResources`;
export const DELTA_PATH = `/${ADS_SERVICE}/DeltaAggregatedResources`;

/** TLS on the xDS port: certificate chain and key (PEM). */
export interface XdsTls {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
}

export interface AdsHandlers {
  sotw(call: AdsCall<SotwRequest>): void;
  delta(call: AdsCall<DecodedDeltaRequest>): void;
}

export interface AdsTransport {
  /** Binds and serves; resolves with the bound port. */
  listen(host: string, port: number, tls?: XdsTls): Promise<number>;
  /**
   * Stops listening and tells every connection (HTTP/2 GOAWAY) to open no new streams; `done`
   * once every connection has closed (their streams ended).
   */
  shutdown(done: () => void): void;
  /** Cuts every connection at once. */
  forceShutdown(): void;
}
