// The CA's data: what the store persists and what callers receive.

export type RootState = 'active' | 'retiring';

/**
 * A signing CA as the store keeps it. Usually a self-signed root the CA generated; an
 * operator-provided CA may instead be an intermediate, whose issuers travel in `chainPem`.
 */
export interface StoredRoot {
  /** Serial of `certPem`, lowercase hex. Unique per store; names the root everywhere. */
  readonly serial: string;
  /** The signing certificate (PEM). */
  readonly certPem: string;
  /** Issuers of `certPem`, nearest first, ending at the self-signed root; '' when `certPem` is the root. */
  readonly chainPem: string;
  /** PKCS#8 (or any OpenSSL-written) PEM private key of `certPem`. */
  readonly keyPem: string;
  /** Exactly one root is active (signs new leaves); retiring roots stay trusted until unused. */
  readonly state: RootState;
  readonly source: 'generated' | 'operator';
  /** ISO 8601. */
  readonly addedAt: string;
  /** ISO 8601; set when the root stopped being active. */
  readonly retiringSince?: string;
}

/** What the store remembers about an issued leaf: metadata only, never the private key. */
export interface LeafRecord {
  readonly service: string;
  readonly spiffeId: string;
  readonly serial: string;
  /** ISO 8601. */
  readonly notBefore: string;
  /** ISO 8601. */
  readonly notAfter: string;
  readonly rootSerial: string;
}

export interface IssuedLeaf {
  readonly service: string;
  readonly spiffeId: string;
  /** Leaf, then intermediates if the signing CA is not a root. Never includes the root. */
  readonly certChainPem: string;
  /** PKCS#8 PEM. */
  readonly privateKeyPem: string;
  /** Lowercase hex, as Envoy's /certs prints it. */
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** Serial of the root (signing CA) that signed it. */
  readonly rootSerial: string;
}

/** A root as shown to operators and metrics. */
export interface RootInfo {
  readonly serial: string;
  readonly subject: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly state: RootState;
  readonly source: 'generated' | 'operator';
  readonly addedAt: Date;
  readonly retiringSince?: Date;
}

export interface CertificateExpiry {
  readonly serial: string;
  readonly notAfter: Date;
  /** Negative once expired. */
  readonly secondsRemaining: number;
  /**
   * notAfter − notBefore: what it was issued for. Alerts compare what is left with it (a leaf
   * is renewed by 90 % of its lifetime, whatever CERT_VALIDITY_DAYS or Consul's TTL is).
   */
  readonly lifetimeSeconds: number;
}

/** What metrics need: seconds until notAfter per service leaf and per root. */
export interface ExpiryReport {
  readonly leaves: ReadonlyArray<CertificateExpiry & { service: string; rootSerial: string }>;
  readonly roots: ReadonlyArray<CertificateExpiry & { state: RootState }>;
}

/** A certificate's validity period in seconds (notBefore to notAfter). */
export function lifetimeSeconds(c: { readonly notBefore: Date; readonly notAfter: Date }): number {
  return Math.round((c.notAfter.getTime() - c.notBefore.getTime()) / 1000);
}

export function leafRecordOf(leaf: IssuedLeaf): LeafRecord {
  return {
    service: leaf.service,
    spiffeId: leaf.spiffeId,
    serial: leaf.serial,
    notBefore: leaf.notBefore.toISOString(),
    notAfter: leaf.notAfter.toISOString(),
    rootSerial: leaf.rootSerial,
  };
}
