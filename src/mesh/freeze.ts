// The mesh is shared by every proxy's translation and kept across builds: freezing it makes
// an accidental write fail loudly instead of leaking into another proxy's configuration.

export function deepFreeze<T>(value: T): T {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return value;
  for (const v of Object.values(value)) deepFreeze(v);
  return Object.freeze(value);
}
