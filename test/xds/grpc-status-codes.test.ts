// The local gRPC status table (src/xds/grpc-status-codes.ts) must say what grpc-js says: the grpc-js
// transport passes these numbers straight to grpc-js, and Envoy reads them off the wire.
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { GrpcStatus, grpcStatusName } from '../../src/xds/grpc-status-codes.js';

describe('GrpcStatus', () => {
  it('has every code of grpc-js status, by the same name and number', () => {
    const theirs = Object.fromEntries(
      Object.entries(grpc.status).filter(([name]) => Number.isNaN(Number(name))),
    );
    expect({ ...GrpcStatus }).toEqual(theirs);
  });

  it('names a code as grpc-js does', () => {
    for (const code of Object.values(GrpcStatus)) {
      expect(grpcStatusName(code)).toBe(grpc.status[code]);
    }
  });
});
