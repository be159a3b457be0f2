// Secret material never leaves the process through the operator API, events or logs.
const SECRET_FIELDS = new Set(['privateKey', 'password', 'privateKeyProvider']);

export const REDACTED = '[redacted]';

export function redactSecrets<T>(value: T): T {
  if (Array.isArray(value)) return value.map(redactSecrets) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value))
      out[k] = SECRET_FIELDS.has(k) ? REDACTED : redactSecrets(v);
    return out as T;
  }
  return value;
}
