// Resources as operators read them: decoded to Envoy's JSON (Any unpacked), secrets redacted.
import { TYPE_URLS, decodeMessage } from '../protos/envoy.js';
import type { EncodedResource } from '../snapshot/encoded-resource.js';
import { redactSecrets } from './redact.js';

export function resourceJson(r: EncodedResource): Record<string, unknown> {
  return redactSecrets({
    '@type': TYPE_URLS[r.kind],
    ...decodeMessage(TYPE_URLS[r.kind], r.value),
  });
}
