// Who is on the other end of a stream: the proxy identity read from Envoy's Node message.
import { DEFAULT_OUTBOUND_PORT, type ProxyIdentity } from '../catalog/model.js';
import type { NodeMessage } from './messages.js';

export class InvalidNodeError extends Error {}

/** Reads the identity; the metadata keys are the ones `lucid-mesh bootstrap` writes. */
export function proxyIdentityOf(node: NodeMessage | undefined): ProxyIdentity {
  if (!node) throw new InvalidNodeError('the first request on a stream must carry node');
  const nodeId = node.id ?? '';
  if (nodeId.trim() === '' || nodeId.length > 253) {
    throw new InvalidNodeError(`node.id: expected a non-empty id, got ${JSON.stringify(nodeId)}`);
  }
  const meta = node.metadata ?? {};
  const service = typeof meta.service === 'string' ? meta.service : (node.cluster ?? '');
  const rawPort = meta.outbound_port ?? DEFAULT_OUTBOUND_PORT;
  const outboundPort = typeof rawPort === 'string' ? Number(rawPort) : rawPort;
  if (
    typeof outboundPort !== 'number' ||
    !Number.isInteger(outboundPort) ||
    outboundPort < 1 ||
    outboundPort > 65535
  ) {
    throw new InvalidNodeError(
      `node.metadata.outbound_port: expected integer 1-65535, got ${JSON.stringify(rawPort)}`,
    );
  }
  return { nodeId, service, outboundPort };
}
