// Catalog file text → Catalog, validating only the service entries that changed since the
// last successful parse. A watched file is re-read whole on every edit; validating all of a
// 1,000-service catalog with zod each time cost ~22 ms per change (W2 profiles: 6–8 % of the
// control plane's CPU per change). Each entry is keyed by its content (its JSON text); an entry
// seen in the last good catalog is not validated again and keeps its model object, so the
// identity-keyed memos downstream (reuseUnchanged, the mesh's per-part memo) hit at once.
//
// The result is the same as parseCatalogText's: any problem at all falls back to the full
// validation, so errors read exactly as before.
import {
  isJsonFile,
  nestingProblem,
  readCatalogDocument,
  validateCatalogDocument,
} from './load-document.js';
import { normalizeCatalog, reuseUnchangedService, type Catalog, type Service } from './model.js';
import { crossEntryIssues, gatewaysSchema, serviceSchema } from './schema.js';
import {
  entryText,
  resplitJsonCatalog,
  splitJsonCatalog,
  type JsonCatalogSplit,
  type JsonResplit,
} from './json-items.js';
import { parseYamlValue, splitItems, splitTopLevel } from './yaml-sections.js';
import { compareStrings } from '../text-order.js';

export class IncrementalCatalogParser {
  /** The last good catalog's services by their entry's text. */
  private known = new Map<string, Service>();
  /** The same services in document order (before sorting): what stood at each position. */
  private knownInOrder: readonly Service[] = [];
  /** The last good YAML catalog's service entries by their item's text (yaml-sections.ts). */
  private yamlItems = new Map<string, unknown>();
  /** The last JSON text split into entries (json-items.ts), good or not: what the next is diffed with. */
  private lastSplit: JsonCatalogSplit | undefined;
  /** The last good JSON catalog: its split and its services in file order (entry i is services[i]). */
  private goodJson:
    { readonly split: JsonCatalogSplit; readonly services: readonly Service[] } | undefined;

  /**
   * Parses and validates `text` (see parseCatalogText), reusing unchanged entries.
   * @throws CatalogDocumentError
   */
  parse(text: string, fileName: string): Catalog {
    const split = isJsonFile(fileName) ? this.splitJson(text) : undefined;
    const fast = split && this.validateJsonItems(split);
    if (fast) {
      this.goodJson = { split: split.split, services: fast.inOrder };
      // Known by position and text now: the same entries keyed by their re-stringified JSON
      // (~3 MB at 10,000 services) would only serve a later whole-text parse.
      this.known = new Map();
      this.knownInOrder = [];
      return fast.catalog;
    }
    const catalog = this.parseWhole(text, fileName);
    // The whole parse validated entry by entry (validateChanged): the next edit can reuse them.
    const entries = split?.split.starts.length;
    this.goodJson =
      split && this.known.size > 0 && this.knownInOrder.length === entries
        ? { split: split.split, services: this.knownInOrder }
        : undefined;
    return catalog;
  }

  /** The entries of a JSON text: only the part an edit touched is scanned, when it can be. */
  private splitJson(
    text: string,
  ): (JsonResplit & { readonly base?: JsonCatalogSplit }) | undefined {
    const base = this.lastSplit;
    const resplit = base && resplitJsonCatalog(base, text);
    const result = resplit
      ? { ...resplit, base }
      : (() => {
          const split = splitJsonCatalog(text);
          return split && { split, head: 0, tail: 0 };
        })();
    if (result) this.lastSplit = result.split;
    return result;
  }

  /**
   * A JSON catalog whose entries are mostly known: only the new ones are parsed and validated.
   * Entries a resplit of the last good text kept at either end are known by position; the
   * others by their text. Undefined when too many are new (one parse of the whole text is then
   * faster) or anything is wrong or unusual (the whole text then says what, as before).
   */
  private validateJsonItems(
    r: JsonResplit & { readonly base?: JsonCatalogSplit },
  ): { catalog: Catalog; inOrder: Service[] } | undefined {
    const { split } = r;
    const good = this.goodJson;
    const count = split.starts.length;
    const oldCount = good?.split.starts.length ?? 0;
    // Kept entries count only when the resplit was of the last good text.
    const positional = good !== undefined && r.base === good.split;
    const head = positional ? r.head : 0;
    const tail = positional ? r.tail : 0;
    // The old entries that may have moved, by their text: those between the kept ones.
    const byText = new Map<string, Service>();
    if (good) {
      for (let k = head; k < oldCount - tail; k++)
        byText.set(entryText(good.split, k), good.services[k]!);
    }
    const texts: string[] = [];
    let misses = 0;
    for (let i = head; i < count - tail; i++) {
      const t = entryText(split, i);
      texts.push(t);
      if (!byText.has(t)) misses++;
    }
    if (misses > Math.max(MAX_ITEM_PARSES, count / 8)) return undefined;
    const services: Service[] = good ? good.services.slice(0, head) : [];
    const fresh = new Map<string, Service>();
    for (const [j, t] of texts.entries()) {
      const i = head + j;
      let service = byText.get(t) ?? fresh.get(t);
      if (!service) {
        let raw: unknown;
        try {
          raw = JSON.parse(t);
        } catch {
          return undefined;
        }
        const result = serviceSchema.safeParse(raw);
        if (!result.success) return undefined;
        service = normalizeCatalog({ services: [result.data] }).services[0]!;
        // The entry that stood here, if it is the same service: its unchanged instances are
        // kept, as reuseUnchanged downstream would keep them. Otherwise the model would hold
        // those and this parser fresh copies of them (~0.5 KiB per service once changed: the
        // soak's heap creep after the translation cache's).
        const before = good?.services[i];
        if (before?.name === service.name) service = reuseUnchangedService(before, service);
        fresh.set(t, service);
      }
      services.push(service);
    }
    for (let k = oldCount - tail; k < oldCount; k++) services.push(good!.services[k]!);
    let gatewaysRaw: unknown;
    if (split.gateways !== undefined) {
      try {
        gatewaysRaw = JSON.parse(split.gateways);
      } catch {
        return undefined;
      }
    }
    const inOrder = services.slice(); // assemble sorts services in place
    const catalog = this.assemble(services, gatewaysRaw);
    return catalog && { catalog, inOrder };
  }

  private parseWhole(text: string, fileName: string): Catalog {
    const yaml = isJsonFile(fileName) ? undefined : this.readYamlByItems(text, fileName);
    const parsed = yaml && this.validateChanged(yaml.document);
    if (yaml && parsed) {
      this.known = parsed.entries;
      this.knownInOrder = parsed.inOrder;
      this.yamlItems = yaml.items;
      return parsed.catalog;
    }
    const document = readCatalogDocument(text, fileName);
    const again = yaml ? undefined : this.validateChanged(document);
    if (!again) {
      // Something is wrong (or unusual): the full validation says what, as it always has.
      const catalog = validateCatalogDocument(document, fileName);
      this.known = new Map();
      this.knownInOrder = [];
      this.yamlItems = new Map();
      return catalog;
    }
    this.known = again.entries;
    this.knownInOrder = again.inOrder;
    return again.catalog;
  }

  /** Undefined when the document is not a valid catalog (or not a plain one). */
  private validateChanged(
    document: unknown,
  ): { catalog: Catalog; entries: Map<string, Service>; inOrder: Service[] } | undefined {
    if (!isPlainObject(document)) return undefined;
    for (const key of Object.keys(document)) {
      if (key !== 'services' && key !== 'gateways') return undefined;
    }
    const raw = document.services === undefined ? [] : document.services;
    if (!Array.isArray(raw)) return undefined;
    const entries = new Map<string, Service>();
    const services: Service[] = [];
    for (const [i, entry] of raw.entries()) {
      const key = JSON.stringify(entry);
      let service = this.known.get(key) ?? entries.get(key);
      if (!service) {
        const result = serviceSchema.safeParse(entry);
        if (!result.success) return undefined;
        service = normalizeCatalog({ services: [result.data] }).services[0]!;
        // As the JSON fast path (validateJsonItems): the unchanged instances are kept.
        const before = this.knownInOrder[i];
        if (before?.name === service.name) service = reuseUnchangedService(before, service);
      }
      entries.set(key, service);
      services.push(service);
    }
    const inOrder = services.slice(); // assemble sorts services in place
    const catalog = this.assemble(services, document.gateways);
    return catalog && { catalog, entries, inOrder };
  }

  /** Validated services (sorted here) and the raw gateways as a catalog; undefined if invalid. */
  private assemble(services: Service[], gatewaysRaw: unknown): Catalog | undefined {
    const gateways = gatewaysSchema.safeParse(gatewaysRaw);
    if (!gateways.success) return undefined;
    const catalog = { services, ...(gateways.data ? { gateways: gateways.data } : {}) };
    if (crossEntryIssues(catalog).length > 0) return undefined;
    // Services are already normalised: what is left of normalizeCatalog is sorting the lists.
    services.sort((a, b) => compareStrings(a.name, b.name));
    const sortedGateways = [...(gateways.data ?? [])].sort((a, b) => compareStrings(a.id, b.id));
    return { services, ...(sortedGateways.length > 0 ? { gateways: sortedGateways } : {}) };
  }

  /**
   * A plain YAML catalog parsed item by item, unchanged items from the last good read;
   * undefined when the text is not plain (yaml-sections.ts) or any part fails to parse.
   * With many new items (the first read) one parse of the whole text is faster than one per
   * item (~4× measured): the items' values are then taken from it, in order.
   * @throws CatalogDocumentError when the whole text had to be parsed and is not valid YAML
   */
  private readYamlByItems(
    text: string,
    fileName: string,
  ): { document: Record<string, unknown>; items: Map<string, unknown> } | undefined {
    if (nestingProblem(text)) return undefined;
    const sections = splitTopLevel(text);
    if (!sections || sections.size === 0) return undefined;
    for (const key of sections.keys()) if (key !== 'services' && key !== 'gateways') return;
    const serviceLines = sections.get('services');
    const texts = serviceLines ? splitItems(serviceLines) : [];
    if (!texts || (serviceLines && texts.length === 0)) return undefined;
    const items = new Map<string, unknown>();
    const misses = texts.filter((t) => !this.yamlItems.has(t)).length;
    if (misses > Math.max(MAX_ITEM_PARSES, texts.length / 8)) {
      const document = readCatalogDocument(text, fileName);
      if (!isPlainObject(document)) return undefined;
      const services = document.services ?? [];
      if (!Array.isArray(services) || services.length !== texts.length) return undefined;
      texts.forEach((t, i) => items.set(t, services[i]));
      return { document, items };
    }
    const document: Record<string, unknown> = {};
    if (serviceLines) {
      const services: unknown[] = [];
      for (const item of texts) {
        let entry = this.yamlItems.get(item) ?? items.get(item);
        if (entry === undefined) {
          const parsed = parseYamlValue(item);
          if (!parsed || !Array.isArray(parsed.value) || parsed.value.length !== 1) {
            return undefined;
          }
          entry = parsed.value[0] as unknown;
        }
        items.set(item, entry);
        services.push(entry);
      }
      document.services = services;
    }
    const gatewayLines = sections.get('gateways');
    if (gatewayLines) {
      const parsed = parseYamlValue(['gateways:', ...gatewayLines].join('\n'));
      if (!parsed || !isPlainObject(parsed.value)) return undefined;
      document.gateways = parsed.value.gateways;
    }
    return { document, items };
  }
}

/** Above this many changed items (and an eighth of all), the whole text is parsed at once. */
const MAX_ITEM_PARSES = 16;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.getPrototypeOf(value) === Object.prototype
  );
}
