// Decoded shapes of the requests Envoy sends (Envoy JSON field names), and the gRPC
// service definition for ADS whose responses are pre-encoded Buffers written as they are.
import type * as grpc from '@grpc/grpc-js';
import { JSON_OPTIONS, messageType } from '../protos/envoy.js';
import { decodeDeltaRequest } from './delta-request.js';
import { decodeSotwRequest } from './sotw-request.js';

export type {
  DeltaDiscoveryRequest,
  DiscoveryRequest,
  NodeMessage,
  StatusMessage,
} from './message-types.js';
import type { DeltaDiscoveryRequest, DiscoveryRequest } from './message-types.js';

const ADS = 'envoy.service.discovery.v3.AggregatedDiscoveryService';

function decoder<T>(typeName: string): (bytes: Buffer) => T {
  const type = messageType(typeName);
  return (bytes) => type.toObject(type.decode(bytes), JSON_OPTIONS) as T;
}

function encoder<T>(typeName: string): (message: T) => Buffer {
  const type = messageType(typeName);
  return (message) =>
    Buffer.from(type.encode(type.fromObject(message as { [k: string]: unknown })).finish());
}

const passThrough = (b: Buffer): Buffer => b;

/** Server side: requests decoded, responses already bytes. */
export const adsServiceDefinition: grpc.ServiceDefinition = {
  StreamAggregatedResources: {
    path: `/${ADS}/StreamAggregatedResources`,
    requestStream: true,
    responseStream: true,
    requestSerialize: encoder<DiscoveryRequest>('envoy.service.discovery.v3.DiscoveryRequest'),
    // Lazy on resource_names: see sotw-request.ts.
    requestDeserialize: (bytes: Buffer) => decodeSotwRequest(bytes),
    responseSerialize: passThrough,
    responseDeserialize: passThrough,
  },
  DeltaAggregatedResources: {
    path: `/${ADS}/DeltaAggregatedResources`,
    requestStream: true,
    responseStream: true,
    requestSerialize: encoder<DeltaDiscoveryRequest>(
      'envoy.service.discovery.v3.DeltaDiscoveryRequest',
    ),
    // initial_resource_versions read straight into a Map: see delta-request.ts.
    requestDeserialize: (bytes: Buffer) => decodeDeltaRequest(bytes),
    responseSerialize: passThrough,
    responseDeserialize: passThrough,
  },
};

/** Decoded responses, for clients (tests, the benchmark harness). */
export interface DiscoveryResponse {
  versionInfo?: string;
  resources?: Array<Record<string, unknown>>;
  typeUrl?: string;
  nonce?: string;
}

export interface DeltaDiscoveryResponse {
  systemVersionInfo?: string;
  resources?: Array<{ name?: string; version?: string; resource?: Record<string, unknown> }>;
  removedResources?: string[];
  typeUrl?: string;
  nonce?: string;
}

export const decodeDiscoveryResponse = decoder<DiscoveryResponse>(
  'envoy.service.discovery.v3.DiscoveryResponse',
);
export const decodeDeltaDiscoveryResponse = decoder<DeltaDiscoveryResponse>(
  'envoy.service.discovery.v3.DeltaDiscoveryResponse',
);
