// Decoded shapes of the requests Envoy sends (Envoy JSON field names). A leaf: the decoders
// and the service definition (messages.ts) both use them.

export interface NodeMessage {
  id?: string;
  cluster?: string;
  metadata?: Record<string, unknown>;
  locality?: { region?: string; zone?: string; subZone?: string };
  userAgentName?: string;
  userAgentBuildVersion?: unknown;
  userAgentVersion?: string;
}

export interface StatusMessage {
  code?: number;
  message?: string;
}

export interface DiscoveryRequest {
  versionInfo?: string;
  node?: NodeMessage;
  resourceNames?: string[];
  typeUrl?: string;
  responseNonce?: string;
  errorDetail?: StatusMessage;
}

export interface DeltaDiscoveryRequest {
  node?: NodeMessage;
  typeUrl?: string;
  resourceNamesSubscribe?: string[];
  resourceNamesUnsubscribe?: string[];
  initialResourceVersions?: Record<string, string>;
  responseNonce?: string;
  errorDetail?: StatusMessage;
}
