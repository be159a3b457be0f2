// The operator API as the console reads it: GET only, with the operator token the page asked
// for (kept in sessionStorage: gone when the tab closes). Types come from the server's own
// modules (type-only imports: nothing of the server is bundled).
import { createParser } from 'eventsource-parser';
import type { CallGraph } from '../admin/call-graph.js';
import type { MeshDump } from '../admin/mesh-endpoints.js';
import type { ProxyRow } from '../admin/proxies.js';
import type { SnapshotDump } from '../admin/snapshot-dump.js';
import type { MeshEvent } from '../telemetry/events.js';
import type { ConvergencePoint, PushRecord } from '../telemetry/recent-activity.js';

export type {
  CallGraph,
  ConvergencePoint,
  MeshDump,
  MeshEvent,
  ProxyRow,
  PushRecord,
  SnapshotDump,
};

const TOKEN_KEY = 'lucid-mesh.operator-token';

export const token = {
  /** Whether the operator gave one (empty: the server runs --admin-auth none). */
  given: (): boolean => sessionStorage.getItem(TOKEN_KEY) !== null,
  get: (): string => sessionStorage.getItem(TOKEN_KEY) ?? '',
  set: (value: string): void => sessionStorage.setItem(TOKEN_KEY, value),
  clear: (): void => sessionStorage.removeItem(TOKEN_KEY),
};

/** A refusal or failure of the API, with the server's own message. */
export class ApiError extends Error {
  override readonly name: string = 'ApiError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function headers(): HeadersInit {
  const t = token.get();
  return t ? { authorization: `Bearer ${t}` } : {};
}

/** No answer at all (the control plane is down or restarting): status 0. */
function unanswered(err: unknown): ApiError {
  return new ApiError(0, `the control plane did not answer (${(err as Error).message})`);
}

/** A refusal with the server's own words (its JSON `error`), else the status line. */
function refusal(res: Response, text: string): ApiError {
  let message = `${res.status} ${res.statusText}`;
  try {
    message = (JSON.parse(text) as { error?: string }).error ?? message;
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(res.status, message);
}

export async function get<T>(path: string): Promise<T> {
  const res = await fetch(path, { headers: headers() }).catch((err: unknown) => {
    throw unanswered(err);
  });
  const text = await res.text();
  if (!res.ok) throw refusal(res, text);
  return JSON.parse(text) as T;
}

export const api = {
  proxies: () => get<{ proxies: ProxyRow[] }>('/v1/proxies').then((r) => r.proxies),
  mesh: () => get<MeshDump>('/v1/mesh'),
  calls: () => get<CallGraph>('/v1/mesh/calls'),
  snapshot: (node: string) => get<SnapshotDump>(`/v1/snapshot?node=${encodeURIComponent(node)}`),
  pushes: (node: string) =>
    get<{ node: string; connected: boolean; pushes: PushRecord[] }>(
      `/v1/proxies/pushes?node=${encodeURIComponent(node)}`,
    ),
  convergence: () => get<{ changes: ConvergencePoint[] }>('/v1/convergence').then((r) => r.changes),
};

/** Waits before the next try to follow the events: 1 s, 2 s, 4 s, … at most 10 s. */
const retryDelayMs = (failures: number): number => Math.min(1000 * 2 ** failures, 10_000);

/**
 * Follows GET /v1/events (Server-Sent Events) with the token in a header, which EventSource
 * cannot send: reads the response body as a stream and parses `event:`/`data:` blocks. When
 * the stream ends or cannot be opened (a control plane restarting), it says why and tries
 * again (as EventSource would), so a console left open follows the control plane once it is
 * back. Returns a function that stops it.
 */
export function followEvents(
  onEvent: (e: MeshEvent) => void,
  onState: (state: 'open' | 'reconnecting', error?: string) => void,
): () => void {
  const abort = new AbortController();
  void (async () => {
    let failures = 0;
    while (!abort.signal.aborted) {
      let error: string;
      try {
        const res = await fetch('/v1/events', { headers: headers(), signal: abort.signal });
        // A refusal (a revoked token, --max-event-clients reached) in the server's words.
        if (!res.ok || !res.body) throw refusal(res, await res.text());
        onState('open');
        failures = 0;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        const parser = createParser({ onEvent: (e) => onEvent(JSON.parse(e.data) as MeshEvent) });
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          parser.feed(value);
        }
        error = 'the server ended the stream';
      } catch (err) {
        if (abort.signal.aborted) return;
        error = (err as Error).message;
      }
      const wait = retryDelayMs(failures++);
      onState('reconnecting', `${error}; trying again in ${wait / 1000} s`);
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  })();
  return () => abort.abort();
}
