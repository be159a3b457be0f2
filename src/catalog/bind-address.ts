// When two local listeners on one port cannot both bind: the same address, or a wildcard
// (0.0.0.0, ::) and an address of its family. Sidecars bootstrapped by lucid-mesh bind their
// ports without SO_REUSEPORT, so Envoy fails the second bind and refuses the sidecar's whole
// listener update (docs/scoping.md, "Local bind ports").
import { isIPv4, isIPv6 } from 'node:net';

export function bindAddressesOverlap(a: string, b: string): boolean {
  if (a === b) return true;
  const covers = (wild: string, x: string) =>
    (wild === '0.0.0.0' && isIPv4(x)) || (wild === '::' && isIPv6(x));
  return covers(a, b) || covers(b, a);
}

/** A declared upstream's local bind address (its default, 127.0.0.1, when it names none). */
export function bindAddressOf(u: { readonly localBindAddress?: string }): string {
  return u.localBindAddress ?? '127.0.0.1';
}

/** Where a sidecar's inbound listener listens (on its instance's sidecarPort). */
export const INBOUND_ADDRESS = '0.0.0.0';
