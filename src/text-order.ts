// The one order of names across lucid-mesh (services, nodes, resources, keys, ISO-8601 times):
// by UTF-16 code unit, the same in every locale and on every replica. Not String#localeCompare:
// its first call loads ICU's collation data, ~3 MiB of RSS for the life of the process (issue
// 16's idle RSS); eslint.config.js forbids it in src/.
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Things with a name, by name (compareStrings). */
export function byName(a: { readonly name: string }, b: { readonly name: string }): number {
  return compareStrings(a.name, b.name);
}
