// What a SotW request subscribes to, recognised by its bytes. Envoy repeats its whole list in
// every ACK, and a thousand proxies send the same list: comparing bytes with the stream's
// previous request (memcmp) answers "unchanged?" for the common case, and a table keyed by a
// hash of the bytes lets a new stream reuse the decoded, sorted set another stream built.
import { hash } from 'node:crypto';
import { EMPTY_NAMES, internNames, type NameSet } from './name-set.js';
import { WeakTable } from './weak-table.js';
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

// One entry per distinct subscription in use, held while a stream uses it; bounded by entries
// and by bytes as well.
const table = new WeakTable<RequestedNames>(4096, 64 * 1024 * 1024);

/** The request's names, reusing `previous` (this stream's last) or a shared entry when equal. */
export function requestedNames(req: SotwRequest, previous?: RequestedNames): RequestedNames {
  const bytes = req.resourceNamesBytes;
  if (previous && previous.bytes.equals(bytes)) return previous;
  if (bytes.length === 0) return NO_NAMES;
  const key = hash('sha1', bytes, 'base64url');
  const found = table.get(key);
  if (found && found.bytes.equals(bytes)) return found;
  const names = req.resourceNames ?? [];
  const entry: RequestedNames = {
    bytes: concatUnpooled([bytes]), // an own copy, outside the shared Buffer pool
    count: names.length,
    star: names.includes('*'),
    named: internNames(names.filter((n) => n !== '*')),
  };
  table.set(key, entry, entry.bytes.length);
  return entry;
}

/** Entries and bytes in the table (tests: bounded however many clients send). */
export function requestedNamesTableSize(): { entries: number; bytes: number } {
  const { entries, weight } = table.size;
  return { entries, bytes: weight };
}
