// An in-process ADS client (real gRPC over loopback) for protocol tests: sends requests,
// queues decoded responses, and can assert that nothing arrives.
import * as grpc from '@grpc/grpc-js';
import { TYPE_URLS, type ResourceKind } from '../../src/protos/envoy.js';
import {
  adsServiceDefinition,
  decodeDeltaDiscoveryResponse,
  decodeDiscoveryResponse,
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse,
  type DiscoveryRequest,
  type DiscoveryResponse,
  type NodeMessage,
} from '../../src/xds/messages.js';

const AdsClient = grpc.makeGenericClientConstructor(
  adsServiceDefinition,
  'AggregatedDiscoveryService',
);

export function node(id: string, service = '', outboundPort = 15001): NodeMessage {
  return { id, cluster: service, metadata: { service, outbound_port: outboundPort } };
}

class Stream<Req, Res> {
  private readonly queue: Res[] = [];
  private readonly waiters: Array<(r: Res) => void> = [];
  readonly received: Res[] = [];
  readonly ended: Promise<grpc.ServiceError | undefined>;

  constructor(
    private readonly call: grpc.ClientDuplexStream<Req, Buffer>,
    decode: (b: Buffer) => Res,
    private readonly client: grpc.Client,
  ) {
    call.on('data', (bytes: Buffer) => {
      const res = decode(bytes);
      this.received.push(res);
      const waiter = this.waiters.shift();
      if (waiter) waiter(res);
      else this.queue.push(res);
    });
    this.ended = new Promise((resolve) => {
      call.on('error', (err: grpc.ServiceError) => resolve(err));
      call.on('end', () => resolve(undefined));
    });
  }

  /** Stops reading responses (as a stuck proxy would); `resume` reads again. */
  pause(): void {
    this.call.pause();
  }

  resume(): void {
    this.call.resume();
  }

  send(req: Req): void {
    this.call.write(req);
  }

  /** The next response (queued or upcoming). */
  next(timeoutMs = 3000): Promise<Res> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`no response within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = (r: Res) => {
        clearTimeout(timer);
        resolve(r);
      };
      this.waiters.push(waiter);
    });
  }

  /** Collects `n` responses. */
  async take(n: number, timeoutMs = 3000): Promise<Res[]> {
    const out: Res[] = [];
    for (let i = 0; i < n; i++) out.push(await this.next(timeoutMs));
    return out;
  }

  /** Fails if any response arrives within `ms`. */
  async expectSilence(ms = 300): Promise<void> {
    const got = await this.next(ms).then(
      (r) => r,
      () => undefined,
    );
    if (got !== undefined)
      throw new Error(`expected no response, got ${JSON.stringify(got).slice(0, 300)}`);
  }

  close(): void {
    this.call.end();
    this.client.close();
  }
}

export type SotwStreamClient = Stream<DiscoveryRequest, DiscoveryResponse>;
export type DeltaStreamClient = Stream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;

/** `token`: sent as `authorization: Bearer` metadata, as `lucid-mesh bootstrap --token` does. */
function metadataOf(token: string | undefined): grpc.Metadata {
  const metadata = new grpc.Metadata();
  if (token !== undefined) metadata.set('authorization', `Bearer ${token}`);
  return metadata;
}

/** A stream of the ADS method `method` on 127.0.0.1:`port`, its responses decoded by `decode`. */
function openStream<Req, Res>(
  port: number,
  token: string | undefined,
  method: 'StreamAggregatedResources' | 'DeltaAggregatedResources',
  decode: (b: Buffer) => Res,
): Stream<Req, Res> {
  const client = new AdsClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const open = (
    client as unknown as Record<
      typeof method,
      (metadata: grpc.Metadata) => grpc.ClientDuplexStream<Req, Buffer>
    >
  )[method].bind(client);
  return new Stream(open(metadataOf(token)), decode, client);
}

export function sotwClient(port: number, token?: string): SotwStreamClient {
  return openStream(port, token, 'StreamAggregatedResources', decodeDiscoveryResponse);
}

export function deltaClient(port: number, token?: string): DeltaStreamClient {
  return openStream(port, token, 'DeltaAggregatedResources', decodeDeltaDiscoveryResponse);
}

export const typeUrl = (kind: ResourceKind): string => TYPE_URLS[kind];

/** Names of the resources in a SotW response. */
export function namesOf(res: DiscoveryResponse): string[] {
  return (res.resources ?? []).map((r) => String(r.name ?? r.clusterName ?? ''));
}

export function kindOf(res: { typeUrl?: string }): ResourceKind {
  const kind = (Object.keys(TYPE_URLS) as ResourceKind[]).find((k) => TYPE_URLS[k] === res.typeUrl);
  if (!kind) throw new Error(`unexpected type ${res.typeUrl}`);
  return kind;
}

/** name → version of the resources in a delta response: what a proxy holds after it. */
export function versionsOf(res: DeltaDiscoveryResponse): Record<string, string> {
  return Object.fromEntries((res.resources ?? []).map((r) => [r.name ?? '', r.version ?? '']));
}

/** ACK a delta response. */
export function deltaAck(res: DeltaDiscoveryResponse): DeltaDiscoveryRequest {
  return { typeUrl: res.typeUrl, responseNonce: res.nonce };
}

/** ACK a SotW response. */
export function ack(res: DiscoveryResponse, resourceNames: string[] = []): DiscoveryRequest {
  return {
    typeUrl: res.typeUrl,
    versionInfo: res.versionInfo,
    responseNonce: res.nonce,
    resourceNames,
  };
}
