// The grpc-js transport (serve --xds-transport grpc-js), loaded only when chosen: importing
// @grpc/grpc-js costs every control plane ~3 MiB of idle RSS (issue 16), and the default
// transport (http2) needs none of it. The module is imported when the server is built and
// the calls wait for it; a shutdown before it arrived applies once it has.
import type { AdsHandlers, AdsTransport, XdsTls } from './ads-transport.js';
import type { XdsLimits } from './limits.js';

export class DeferredGrpcJsTransport implements AdsTransport {
  private readonly transport: Promise<AdsTransport>;

  constructor(limits: XdsLimits, handlers: AdsHandlers) {
    this.transport = import('./grpc-js-transport.js').then(
      (m) => new m.GrpcJsTransport(limits, handlers),
    );
  }

  async listen(host: string, port: number, tls?: XdsTls): Promise<number> {
    return (await this.transport).listen(host, port, tls);
  }

  shutdown(done: () => void): void {
    void this.transport.then((t) => t.shutdown(done));
  }

  forceShutdown(): void {
    void this.transport.then((t) => t.forceShutdown());
  }
}
