// What a SotW request subscribes to, recognised by its bytes. Envoy repeats its whole list in
// every ACK, and a thousand proxies send the same list: comparing bytes with the stream's
// previous request (memcmp) answers "unchanged?" for the common case, and a table keyed by a
// hash of the bytes lets a new stream reuse the decoded, sorted set another stream built.
import { createHash } from 'node:crypto';
import { EMPTY_NAMES, internNames, type NameSet } from './name-set.js';
import type { SotwRequest } from './sotw-request.js';
import { concatUnpooled } from '../snapshot/snapshot.js';

export interface RequestedNames {
  /** The resource_names fields as encoded (an own copy, shared by every stream using it). */
  readonly bytes: Buffer;
  /** How many names were listed ('*' included). */
  readonly count: number;
  /** Whether '*' was listed (an explicit wildcard). */
  readonly star: boolean;
  /** The names other than '*'. */
  readonly named: NameSet;
}

export const NO_NAMES: RequestedNames = {
  bytes: Buffer.alloc(0),
  count: 0,
  star: false,
  named: EMPTY_NAMES,
};

// Bounded by entries and by bytes: one entry per distinct subscription in the mesh.
const MAX_ENTRIES = 4096;
const MAX_BYTES = 64 * 1024 * 1024;
const table = new Map<string, RequestedNames>();
let tableBytes = 0;

/** The request's names, reusing `previous` (this stream's last) or a shared entry when equal. */
export function requestedNames(req: SotwRequest, previous?: RequestedNames): RequestedNames {
  const bytes = req.resourceNamesBytes;
  if (previous && previous.bytes.equals(bytes)) return previous;
  if (bytes.length === 0) return NO_NAMES;
  const key = createHash('sha1').update(bytes).digest('base64url');
  const found = table.get(key);
  if (found && found.bytes.equals(bytes)) {
    // Refresh its place in the LRU order.
    table.delete(key);
    table.set(key, found);
    return found;
  }
  const names = req.resourceNames ?? [];
  const entry: RequestedNames = {
    bytes: concatUnpooled([bytes]), // an own copy, outside the shared Buffer pool
    count: names.length,
    star: names.includes('*'),
    named: internNames(names.filter((n) => n !== '*')),
  };
  if (found) tableBytes -= found.bytes.length;
  table.set(key, entry);
  tableBytes += entry.bytes.length;
  while (table.size > MAX_ENTRIES || tableBytes > MAX_BYTES) {
    const [oldest, value] = table.entries().next().value as [string, RequestedNames];
    table.delete(oldest);
    tableBytes -= value.bytes.length;
  }
  return entry;
}
