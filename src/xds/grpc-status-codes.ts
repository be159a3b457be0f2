// gRPC status codes (grpc/grpc doc/statuscodes.md), the one home for them outside the grpc-js
// transport: the default http2 transport, the streams and the authenticator need the numbers
// only, and importing them from @grpc/grpc-js loaded all of grpc-js into every control plane
// (+3 MiB idle RSS, issue 16). test/xds/grpc-status-codes.test.ts checks them against grpc-js.
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

export type GrpcStatusName = keyof typeof GrpcStatus;
export type GrpcStatus = (typeof GrpcStatus)[GrpcStatusName];

const NAMES = Object.fromEntries(Object.entries(GrpcStatus).map(([k, v]) => [v, k])) as Record<
  GrpcStatus,
  GrpcStatusName
>;

/** The code's name (`UNAUTHENTICATED`), as logs and metrics spell it. */
export function grpcStatusName(code: GrpcStatus): GrpcStatusName {
  return NAMES[code];
}
