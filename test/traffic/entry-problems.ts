// The problem lines parseEntry reports for a traffic entry, for the schema tests.
import { TrafficEntryError, parseEntry } from '../../src/traffic/schema.js';

/** The problem lines parseEntry reports for `raw` (fails the test if it is accepted). */
export function problems(raw: unknown): readonly string[] {
  try {
    parseEntry(raw);
  } catch (err) {
    if (err instanceof TrafficEntryError) return err.problems;
    throw err;
  }
  throw new Error(`accepted: ${JSON.stringify(raw)}`);
}
