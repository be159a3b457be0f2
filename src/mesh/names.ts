// The names the mesh gives its backends; translators use them as cluster names as they are.

/**
 * A service's backend is named after the service; a subset's is `<service>~<subset>`. Both
 * parts are DNS labels, so the name is unambiguous, and without a dot Envoy's stats tag
 * extraction (`cluster.<name>.…`) still sees the whole name.
 */
export function backendName(service: string, subset?: string): string {
  return subset === undefined ? service : `${service}~${subset}`;
}
