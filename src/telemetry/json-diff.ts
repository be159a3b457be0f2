// Field-level differences between two JSON values, for `lucid-mesh tail`: each leaf that
// changed, with its path (Envoy JSON field names) and the old and new value.
export interface FieldChange {
  readonly path: string;
  readonly from?: unknown;
  readonly to?: unknown;
}

type Json = unknown;

const isObject = (v: Json): v is Record<string, Json> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

export function jsonDiff(from: Json, to: Json, path = ''): FieldChange[] {
  if (Array.isArray(from) && Array.isArray(to)) {
    const out: FieldChange[] = [];
    for (let i = 0; i < Math.max(from.length, to.length); i++) {
      out.push(...jsonDiff(from[i], to[i], `${path}[${i}]`));
    }
    return out;
  }
  if (isObject(from) && isObject(to)) {
    const out: FieldChange[] = [];
    const keys = [...new Set([...Object.keys(from), ...Object.keys(to)])].sort();
    for (const key of keys)
      out.push(...jsonDiff(from[key], to[key], path ? `${path}.${key}` : key));
    return out;
  }
  if (JSON.stringify(from) === JSON.stringify(to)) return [];
  const change: { path: string; from?: Json; to?: Json } = { path: path || '(root)' };
  if (from !== undefined) change.from = from;
  if (to !== undefined) change.to = to;
  return [change];
}
