// How operator commands reach a running control plane's admin HTTP API.
import { Option } from 'commander';

export const DEFAULT_SERVER = 'http://127.0.0.1:8080';

export function serverOption(): Option {
  return new Option('--server <url>', 'admin HTTP address of the control plane')
    .env('LUCID_SERVER')
    .default(DEFAULT_SERVER);
}

export class AdminUnreachable extends Error {}

/** GET a JSON document; one clear message when the server is down or answers an error. */
export async function getJson<T>(server: string, path: string): Promise<T> {
  const url = new URL(path, server);
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  } catch (err) {
    throw new AdminUnreachable(unreachableMessage(server, err));
  }
  const text = await res.text();
  if (!res.ok) {
    let message = text.trim();
    try {
      message = (JSON.parse(text) as { error?: string }).error ?? message;
    } catch {
      // not JSON: use the text
    }
    throw new Error(`${url.pathname}: HTTP ${res.status}: ${message}`);
  }
  return JSON.parse(text) as T;
}

export function unreachableMessage(server: string, err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const why = cause?.code ?? cause?.message ?? (err as Error).message;
  return `cannot reach the control plane at ${server} (${why}); is \`lucid-mesh serve\` running? Use --server or LUCID_SERVER`;
}

/** Runs a command body; errors become one line on stderr and exit code 1. */
export async function runOperator(command: string, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    process.stderr.write(`lucid-mesh ${command}: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
