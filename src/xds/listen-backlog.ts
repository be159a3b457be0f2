// The xDS port's accept queue. grpc-js listens with Node's default backlog (511) and has no
// option for it: past 511 connections waiting at once, the kernel drops a storm's SYNs and
// the sidecars retry after 1, 3, 7, 15, 31 s… (bench W9: 10,000 sidecars connecting together
// took 57 s to configure while the control plane's CPU was mostly idle). The kernel caps the
// backlog at net.core.somaxconn (4096 here and on most current Linux).
import type * as grpc from '@grpc/grpc-js';

export const XDS_LISTEN_BACKLOG = 16_384;

type Listen = (address: unknown, ...rest: unknown[]) => unknown;

/**
 * Makes `server` listen with `backlog`: wraps grpc-js's (internal) createHttp2Server so the
 * http2 server it makes is given `backlog` in its listen options. Returns whether it could
 * (a grpc-js without that method keeps its default).
 */
export function setListenBacklog(server: grpc.Server, backlog = XDS_LISTEN_BACKLOG): boolean {
  const internal = server as unknown as {
    createHttp2Server?: (...args: unknown[]) => { listen: Listen };
  };
  const create = internal.createHttp2Server;
  if (typeof create !== 'function') return false;
  internal.createHttp2Server = function (this: unknown, ...args: unknown[]) {
    const http2Server = create.apply(this, args);
    const listen = http2Server.listen.bind(http2Server);
    // grpc-js passes a {host, port} (or {path}) object, which net.Server#listen takes with a backlog.
    http2Server.listen = (address, ...rest) =>
      typeof address === 'object' && address !== null
        ? listen({ ...address, backlog }, ...rest)
        : listen(address, ...rest);
    return http2Server;
  };
  return true;
}
