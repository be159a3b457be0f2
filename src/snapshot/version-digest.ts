// An order-independent digest of a set of (resource name, version) pairs: what a delta sidecar
// says it holds when it reconnects (initial_resource_versions), and what this replica would
// send it. A sidecar failing over lists every resource it has (~2,000 in a 1,000-service
// mesh), and nearly always exactly what the new replica holds: comparing two digests answers
// that without a string, a map entry or a lookup per resource (bench --workload failover).
//
// Each pair is hashed (cyrb53's two 32-bit lanes over the UTF-8 bytes of name, its length,
// version), the hashes are summed per lane mod 2^32: 64 bits plus the count. Equal digests
// of different sets happen by chance with odds near 2^-64. A client can craft a collision,
// but only for its own stream: it is then sent nothing it lacks, as if it had lied outright.

export interface VersionDigest {
  readonly count: number;
  readonly lo: number;
  readonly hi: number;
}

export const EMPTY_DIGEST: VersionDigest = { count: 0, lo: 0, hi: 0 };

export function sameDigest(a: VersionDigest, b: VersionDigest): boolean {
  return a.count === b.count && a.lo === b.lo && a.hi === b.hi;
}

export function addDigests(a: VersionDigest, b: VersionDigest): VersionDigest {
  return { count: a.count + b.count, lo: (a.lo + b.lo) >>> 0, hi: (a.hi + b.hi) >>> 0 };
}

/** Sums pair hashes; read `digest` when done. */
export class DigestSum {
  private count = 0;
  private lo = 0;
  private hi = 0;

  get digest(): VersionDigest {
    return { count: this.count, lo: this.lo, hi: this.hi };
  }

  /**
   * A pair whose UTF-8 bytes are bytes[keyFrom, keyTo) and bytes[valueFrom, valueTo).
   * Returns whether every byte was ASCII (else the caller checks that they are UTF-8).
   */
  addBytes(
    bytes: Uint8Array,
    keyFrom: number,
    keyTo: number,
    valueFrom: number,
    valueTo: number,
  ): boolean {
    // One loop per string with the state in locals: this runs for every byte a reconnecting
    // sidecar lists (~130 KB), and it doubles as the ASCII check.
    let h1 = SEED1;
    let h2 = SEED2;
    let seen = 0;
    for (let i = keyFrom; i < keyTo; i++) {
      const b = bytes[i]!;
      seen |= b;
      h1 = Math.imul(h1 ^ b, M1);
      h2 = Math.imul(h2 ^ b, M2);
    }
    h1 = Math.imul(h1 ^ (keyTo - keyFrom), M1);
    h2 = Math.imul(h2 ^ (keyTo - keyFrom), M2);
    for (let i = valueFrom; i < valueTo; i++) {
      const b = bytes[i]!;
      seen |= b;
      h1 = Math.imul(h1 ^ b, M1);
      h2 = Math.imul(h2 ^ b, M2);
    }
    this.add(h1, h2);
    return seen < 0x80;
  }

  addPair(name: string, version: string): void {
    let h1 = SEED1;
    let h2 = SEED2;
    let seen = 0;
    for (let i = 0; i < name.length; i++) {
      const c = name.charCodeAt(i);
      seen |= c;
      h1 = Math.imul(h1 ^ c, M1);
      h2 = Math.imul(h2 ^ c, M2);
    }
    h1 = Math.imul(h1 ^ name.length, M1);
    h2 = Math.imul(h2 ^ name.length, M2);
    for (let i = 0; i < version.length; i++) {
      const c = version.charCodeAt(i);
      seen |= c;
      h1 = Math.imul(h1 ^ c, M1);
      h2 = Math.imul(h2 ^ c, M2);
    }
    if (seen < 0x80) {
      this.add(h1, h2);
      return;
    }
    // Not ASCII: hash the UTF-8 bytes, as a client's request carries them.
    const key = Buffer.from(name, 'utf8');
    const both = Buffer.concat([key, Buffer.from(version, 'utf8')]);
    this.addBytes(both, 0, key.length, key.length, both.length);
  }

  private add(h1: number, h2: number): void {
    // cyrb53's finish: every input bit reaches every output bit.
    h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
    h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
    h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
    h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
    this.count++;
    this.lo = (this.lo + h1) >>> 0;
    this.hi = (this.hi + h2) >>> 0;
  }
}

/** The digest of resources as a client holding exactly them would list them. */
export function digestOf(
  resources: Iterable<{ readonly name: string; readonly version: string }>,
): VersionDigest {
  const sum = new DigestSum();
  for (const r of resources) sum.addPair(r.name, r.version);
  return sum.digest;
}

// cyrb53's seeds and multipliers.
const SEED1 = 0xdeadbeef;
const SEED2 = 0x41c6ce57;
const M1 = 2654435761;
const M2 = 1597334677;
