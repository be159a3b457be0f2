// The order of identifiers (service and node names, resource kinds, ISO-8601 timestamps):
// by UTF-16 code unit, the same in every locale. String#localeCompare would also do for these,
// but its first call loads ICU's collation data, ~3 MiB of RSS for the life of the process
// (issue 16's idle RSS; a metrics scrape sorts leaves). eslint.config.js forbids it in src/.
export function byText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
