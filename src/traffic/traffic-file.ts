// The traffic configuration from a watched file (YAML or JSON: a list of Consul config entries),
// live-reloaded like the policy file (both are a WatchedDocument). A bad edit (syntax, any
// invalid entry, a missing or unreadable file) keeps the last good configuration in force and
// logs every problem; the file is applied whole or not at all, so problems() is always empty and
// lastError() says why the file's content is not in force. Listeners hear only effective
// changes: an edit that changes no entry (a comment, key order) notifies no one.
import { LineCounter, parseDocument } from 'yaml';
import { nestingProblem, findJsonErrorOffset, isJsonFile } from '../catalog/load-document.js';
import type { Logger } from '../telemetry/logger.js';
import { WatchedDocument, type WatchedDocumentSpec } from '../sources/watched-document.js';
import type { ConfigProblem, TrafficProvider } from './provider.js';
import { TrafficDocumentError, parseTrafficDocument } from './schema.js';
import { readTrafficItems } from './traffic-items.js';
import { validateByEntries } from './validate-entries.js';
import type { TrafficConfig, Unsupported } from './types.js';

/**
 * Parses and validates the text of a traffic file. `fileName` picks the syntax (`.json` → JSON,
 * anything else → YAML) and prefixes every error. Duplicate keys are errors in both.
 * `previous`: unchanged entries keep its objects (see assembleTraffic).
 * @throws TrafficDocumentError
 */
export function parseTrafficText(
  text: string,
  fileName: string,
  previous?: TrafficConfig,
): TrafficConfig {
  const tooDeep = nestingProblem(text);
  if (tooDeep) throw new TrafficDocumentError(fileName, [tooDeep]);
  if (text.trim() === '') {
    // Far more likely a half-written file than an intent to drop every entry: say `[]`.
    throw new TrafficDocumentError(fileName, [
      'the document is empty (write `[]` for no traffic configuration)',
    ]);
  }
  const lineCounter = new LineCounter();
  // JSON is YAML: one parser finds duplicate keys in both (JSON.parse would keep the last).
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  let value: unknown;
  if (isJsonFile(fileName)) {
    try {
      value = JSON.parse(text);
    } catch (err) {
      const offset = findJsonErrorOffset(text);
      const where = offset === undefined ? '' : `${position(lineCounter, offset)}: `;
      const detail = (err as Error).message.replace(/ at position \d+.*$/, '');
      throw new TrafficDocumentError(fileName, [`${where}invalid JSON: ${detail}`], { cause: err });
    }
  }
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => `${position(lineCounter, e.pos[0])}: ${e.message}`);
    throw new TrafficDocumentError(fileName, problems, { cause: doc.errors[0] });
  }
  if (value === undefined) {
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      throw new TrafficDocumentError(fileName, [(err as Error).message], { cause: err });
    }
  }
  return parseTrafficDocument(value, { source: fileName, previous });
}

/** Each good configuration's entries by their text, for the next read of the same file. */
const entriesOf = new WeakMap<TrafficConfig, Map<string, unknown>>();

/**
 * parseTrafficText for a watched file: only entries whose text changed since `previous` are
 * parsed (traffic-items.ts) and validated (validate-entries.ts); anything unusual, or any
 * problem, goes through parseTrafficText, so errors read as they always have.
 * @throws TrafficDocumentError
 */
export function parseTrafficTextByEntries(
  text: string,
  fileName: string,
  previous?: TrafficConfig,
): TrafficConfig {
  const known = (previous && entriesOf.get(previous)) ?? new Map<string, unknown>();
  const read = readTrafficItems(text, fileName, known);
  const config =
    (read && validateByEntries(read.texts, read.values, fileName, previous)) ??
    parseTrafficText(text, fileName, previous);
  if (read) entriesOf.set(config, read.items);
  return config;
}

function position(lineCounter: LineCounter, offset: number): string {
  const { line, col } = lineCounter.linePos(offset);
  return `line ${line}, column ${col}`;
}

export interface TrafficFileOptions {
  /** Poll the file every this many ms instead of native file events (see WatchedFile). */
  readonly pollIntervalMs?: number;
}

const TRAFFIC_DOCUMENT: WatchedDocumentSpec<TrafficConfig> = {
  kind: 'traffic',
  kept: 'traffic configuration',
  none: 'no traffic configuration loaded (default routing applies)',
  unchanged: 'the configuration did not',
  parse: parseTrafficTextByEntries,
  // assembleTraffic returns the previous object itself when nothing changed.
  fingerprint: (config) => config,
  summary: counts,
  loaded: (config, previous, log, file) => {
    if (config.unsupported.length > 0 && config.unsupported !== previous?.unsupported) {
      // Listed once per change of the list, not on every reload.
      log.warn(
        { file, unsupported: config.unsupported.map(describeUnsupported) },
        'traffic file uses Consul features lucid-mesh does not implement; they are not applied',
      );
    }
  },
};

export class TrafficFile extends WatchedDocument<TrafficConfig> implements TrafficProvider {
  readonly name = 'file';

  constructor(path: string, log: Logger, opts: TrafficFileOptions = {}) {
    super(path, log, TRAFFIC_DOCUMENT, opts);
  }

  /** Always empty: a file is applied whole or not at all (see lastError()). */
  problems(): readonly ConfigProblem[] {
    return [];
  }
}

/** Entries per kind, for logs and `config check`. */
export function counts(config: TrafficConfig): Record<string, number> {
  return {
    'proxy-defaults': config.proxyDefaults ? 1 : 0,
    'service-defaults': config.serviceDefaults.size,
    'service-router': config.routers.size,
    'service-splitter': config.splitters.size,
    'service-resolver': config.resolvers.size,
    'service-intentions': config.intentions.size,
  };
}

/** `service-defaults/web: MeshGateway`, or `mesh/mesh: (the whole entry kind)`. */
export function describeUnsupported(u: Unsupported): string {
  return `${u.kind}/${u.name}: ${u.field || '(the whole entry: lucid-mesh does not implement this kind)'}`;
}
