// A traffic file's entries validated one at a time: an entry whose text was in the
// configuration in force is not validated again (zod over all of W7's 3,000 entries took
// ~0.5 s of each 0.52 s edit). What ties entries together is still checked on the whole
// parsed set, as parseTrafficDocument does: one entry per kind and name (assembleTraffic).
// References between entries (a router's destination, a split's subset, a failover target)
// are resolved by the mesh build from the assembled configuration, as before.
import { assembleTraffic, parseEntry, type ParsedEntry } from './schema.js';
import type { ConfigEntry, TrafficConfig } from './types.js';

/** Each good configuration's validated entries by their text. */
const validatedOf = new WeakMap<TrafficConfig, ReadonlyMap<string, ParsedEntry>>();
const NONE: ReadonlyMap<string, ParsedEntry> = new Map();

/**
 * What parseTrafficDocument(values) gives for the entries of a file (`texts[i]` is the text
 * of `values[i]`), validating only texts new since `previous`; undefined on any problem (the
 * caller's full parse then says what, in its words).
 */
export function validateByEntries(
  texts: readonly string[],
  values: readonly unknown[],
  source: string,
  previous: TrafficConfig | undefined,
): TrafficConfig | undefined {
  const known = (previous && validatedOf.get(previous)) ?? NONE;
  const parsed: ParsedEntry[] = [];
  const fresh = new Set<number>();
  for (let i = 0; i < texts.length; i++) {
    let entry = known.get(texts[i]!);
    if (!entry) {
      try {
        // The label only names an entry in errors; a valid entry does not depend on it.
        entry = parseEntry(values[i], `entries[${i}]`);
      } catch {
        return undefined;
      }
      fresh.add(i);
    }
    parsed.push(entry);
  }
  let config: TrafficConfig;
  try {
    config = assembleTraffic(parsed, previous, source);
  } catch {
    return undefined;
  }
  const validated = new Map<string, ParsedEntry>();
  texts.forEach((text, i) => {
    validated.set(text, fresh.has(i) ? heldBy(config, parsed[i]!) : parsed[i]!);
  });
  validatedOf.set(config, validated);
  return config;
}

/**
 * `parsed` with the very object `config` holds for its entry (equal content; the previous
 * configuration's when unchanged), so the next assembly finds it by identity, not by a deep
 * comparison.
 */
function heldBy(config: TrafficConfig, parsed: ParsedEntry): ParsedEntry {
  const entry = parsed.entry;
  if (!entry) return parsed;
  const held = entryOf(config, entry);
  return held === undefined || held === entry
    ? parsed
    : Object.freeze({ entry: held, unsupported: parsed.unsupported });
}

function entryOf(config: TrafficConfig, entry: ConfigEntry): ConfigEntry | undefined {
  switch (entry.Kind) {
    case 'proxy-defaults':
      return config.proxyDefaults;
    case 'service-defaults':
      return config.serviceDefaults.get(entry.Name);
    case 'service-router':
      return config.routers.get(entry.Name);
    case 'service-splitter':
      return config.splitters.get(entry.Name);
    case 'service-resolver':
      return config.resolvers.get(entry.Name);
    case 'service-intentions':
      return config.intentions.get(entry.Name);
  }
}
