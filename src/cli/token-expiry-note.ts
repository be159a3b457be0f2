// `lucid-mesh status` points out a connected proxy whose token has expired or soon will. The
// token sits in the sidecar's bootstrap and is checked only when a stream opens: an open
// stream outlives it, but the sidecar's next reconnect (a replica drained or lost, a rollout,
// --max-stream-age) is refused, and from then on it gets no config and no certificate
// renewals, silently. With 24 h tokens (the default) that was every sidecar a day after its
// bootstrap.
import { formatDuration } from '../ca/settings.js';
import type { ProxyRow } from '../admin/proxies.js';

/** A token expiring within this long is pointed out. */
export const TOKEN_EXPIRY_NOTICE_MS = 6 * 3600_000;

export function tokenExpiryNote(p: ProxyRow, now: number): string | undefined {
  if (p.tokenExpiresAt === undefined) return undefined;
  const left = Date.parse(p.tokenExpiresAt) - now;
  if (!(left <= TOKEN_EXPIRY_NOTICE_MS)) return undefined;
  const when =
    left <= 0
      ? `TOKEN EXPIRED ${formatDuration(left)} ago (${p.tokenExpiresAt})`
      : `token expires in ${formatDuration(left)} (${p.tokenExpiresAt})`;
  return (
    `${p.nodeId} ${when}: this stream stays open, but the sidecar's next reconnect (a replica ` +
    'drained or lost, --max-stream-age) is refused, and it then gets no config and no certificate ' +
    'renewals; give it a new token (lucid-mesh token issue, bootstrap --token, restart Envoy)'
  );
}
