// Small display helpers shared by the views.

/** "3 s ago", "4 min ago" from an ISO time (relative to `now`, ms). */
export function ago(iso: string | undefined, now: number): string {
  if (!iso) return '—';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ago`;
}

/** The time of day of an ISO time, with milliseconds. */
export const clock = (iso: string): string => iso.slice(11, 23);

/** A route weight (out of 10000) as a percentage. */
export const percent = (weight: number): string =>
  `${(weight / 100).toFixed(weight % 100 ? 2 : 0)}%`;

/** Pretty JSON (resources arrive redacted: /v1/snapshot removes private keys). */
export const json = (value: unknown): string => JSON.stringify(value, null, 2);
