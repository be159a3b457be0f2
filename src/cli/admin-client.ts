// How operator commands reach a running control plane's admin HTTP API: its address
// (--server), the operator token they send (--token / --token-file / LUCID_OPERATOR_TOKEN),
// and the CA of an https:// server's certificate (--server-ca).
import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Option, type Command } from 'commander';

export const DEFAULT_SERVER = 'http://127.0.0.1:8080';

export function serverOption(): Option {
  return new Option('--server <url>', 'admin HTTP(S) address of the control plane')
    .env('LUCID_SERVER')
    .default(DEFAULT_SERVER);
}

/** --server and what it takes to be let in: the flags every operator command has. */
export function operatorOptions(): Option[] {
  return [
    serverOption(),
    new Option(
      '--token <token>',
      'operator token (lucid-mesh token issue --operator), sent as `Authorization: Bearer`',
    ).env('LUCID_OPERATOR_TOKEN'),
    new Option('--token-file <file>', 'read the operator token from FILE instead').env(
      'LUCID_OPERATOR_TOKEN_FILE',
    ),
    new Option(
      '--server-ca <file>',
      "PEM CA the control plane's admin certificate chains to (https:// servers; default: the system's CAs)",
    ).env('LUCID_SERVER_CA'),
  ];
}

export function withOperatorOptions(cmd: Command): Command {
  for (const option of operatorOptions()) cmd.addOption(option);
  return cmd;
}

interface OperatorFlags {
  server: string;
  token?: string;
  tokenFile?: string;
  serverCa?: string;
}

/** Where and how to reach the admin API. */
export interface AdminConnection {
  readonly server: string;
  readonly token?: string;
  /** PEM CA for an https:// server. */
  readonly ca?: string;
  /** The --server-ca file it came from, for messages. */
  readonly caFile?: string;
}

/** A flag that cannot be used: one line, exit 2. */
export class AdminFlagError extends Error {
  override readonly name: string = 'AdminFlagError';
}
/** The control plane is not there (or not speaking what we expect): one line, exit 1. */
export class AdminUnreachable extends Error {
  override readonly name: string = 'AdminUnreachable';
}
/** The control plane refused the token (401/403): one line, exit 1; retrying will not help. */
export class AdminAuthError extends Error {
  override readonly name: string = 'AdminAuthError';
}
/** Any other error answer; `detail` is the server's own message (its `error` field). */
export class AdminHttpError extends Error {
  override readonly name: string = 'AdminHttpError';
  constructor(
    message: string,
    readonly status: number,
    readonly detail: string,
  ) {
    super(message);
  }
}

/** The connection an operator command's flags describe (flags win over environment). */
export function adminConnection(cmd: Command): AdminConnection {
  try {
    return connectionFromFlags(cmd);
  } catch (err) {
    // A value that came from the environment: say which variable, or the operator looks for
    // a flag they never typed (an old `export LUCID_SERVER=…` in a shell profile).
    const flag = err instanceof AdminFlagError ? /^(--[a-z-]+):/.exec(err.message)?.[1] : undefined;
    const key = flag !== undefined ? FLAG_ENV[flag] : undefined;
    if (key !== undefined && cmd.getOptionValueSource(key.option) === 'env') {
      throw new AdminFlagError(`${(err as Error).message} (from ${key.env})`);
    }
    throw err;
  }
}

/** The operator flags read from files or parsed, and where their environment values live. */
const FLAG_ENV: Record<string, { option: string; env: string }> = {
  '--server': { option: 'server', env: 'LUCID_SERVER' },
  '--token-file': { option: 'tokenFile', env: 'LUCID_OPERATOR_TOKEN_FILE' },
  '--server-ca': { option: 'serverCa', env: 'LUCID_SERVER_CA' },
};

function connectionFromFlags(cmd: Command): AdminConnection {
  const flags = cmd.opts<OperatorFlags>();
  let url: URL | undefined;
  try {
    url = new URL(flags.server);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new AdminFlagError(
      `--server: expected http://HOST:PORT or https://HOST:PORT, got ${JSON.stringify(flags.server)}`,
    );
  }
  const token = operatorToken(cmd, flags);
  const caFile = url.protocol === 'https:' ? flags.serverCa : undefined;
  const ca = caFile !== undefined ? readFlagFile('--server-ca', caFile) : undefined;
  // Node ignores a CA file without a certificate in it, and the server's certificate then
  // fails against the system's CAs: say what is wrong with the file instead.
  if (ca !== undefined && !ca.includes('-----BEGIN CERTIFICATE-----')) {
    throw new AdminFlagError(`--server-ca: ${JSON.stringify(caFile)}: no PEM certificate found`);
  }
  return { server: flags.server, token, ca, ...(caFile !== undefined ? { caFile } : {}) };
}

function operatorToken(cmd: Command, flags: OperatorFlags): string | undefined {
  const token = flags.token?.trim() || undefined;
  const file = flags.tokenFile || undefined;
  let useFile = file !== undefined;
  if (token !== undefined && file !== undefined) {
    const fromCli = (key: string) => cmd.getOptionValueSource(key) === 'cli';
    if (fromCli('token') === fromCli('tokenFile')) {
      throw fromCli('token')
        ? new AdminFlagError('--token-file: give --token or --token-file, not both')
        : new AdminFlagError(
            'LUCID_OPERATOR_TOKEN and LUCID_OPERATOR_TOKEN_FILE are both set: unset one',
          );
    }
    useFile = fromCli('tokenFile');
  }
  if (!useFile) return token;
  const text = readFlagFile('--token-file', file!).trim();
  if (text === '') throw new AdminFlagError(`--token-file: ${JSON.stringify(file)} is empty`);
  return text;
}

function readFlagFile(flag: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new AdminFlagError(
      `${flag}: cannot read ${JSON.stringify(file)} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
}

/** Sends a GET; resolves with the response whatever its status (see `checked`). */
function get(
  conn: AdminConnection,
  path: string,
  opts: { accept?: string; timeoutMs?: number } = {},
): Promise<IncomingMessage> {
  const url = new URL(path, conn.server);
  const headers: Record<string, string> = { accept: opts.accept ?? 'application/json' };
  if (conn.token !== undefined) headers.authorization = `Bearer ${conn.token}`;
  const signal = opts.timeoutMs !== undefined ? AbortSignal.timeout(opts.timeoutMs) : undefined;
  return new Promise((resolve, reject) => {
    const req =
      url.protocol === 'https:'
        ? httpsRequest(url, { headers, signal, ...(conn.ca !== undefined ? { ca: conn.ca } : {}) })
        : httpRequest(url, { headers, signal });
    req.once('response', resolve);
    req.once('error', (err) =>
      reject(new AdminUnreachable(unreachableMessage(conn.server, err, conn.caFile))),
    );
    req.end();
  });
}

async function readBody(res: IncomingMessage): Promise<string> {
  let text = '';
  for await (const chunk of res) text += (chunk as Buffer).toString();
  return text;
}

/** `res` if it is a success; otherwise the one-line error it deserves (the body is read). */
async function checked(
  conn: AdminConnection,
  path: string,
  res: IncomingMessage,
): Promise<IncomingMessage> {
  const status = res.statusCode ?? 0;
  if (status >= 200 && status < 300) return res;
  const text = await readBody(res).catch(() => '');
  let body: { error?: string; reason?: string } = {};
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    // not JSON: use the text
  }
  const message = (body.error ?? text.trim()).replace(/\s*\n\s*/g, ' ');
  if (status === 401 || status === 403) throw new AdminAuthError(authMessage(conn, status, body));
  // Every answer of the admin API carries {"error": …}: anything else is another server, whose
  // page (Envoy's admin lists its endpoints: 4 KB) is no message for one line.
  if (typeof body.error !== 'string')
    throw new AdminHttpError(notOurs(conn, `HTTP ${status}, not its JSON`), status, '');
  throw new AdminHttpError(
    `${new URL(path, conn.server).pathname}: HTTP ${status}: ${message}`,
    status,
    message,
  );
}

/** A server at --server that is not lucid-mesh's admin API (a sidecar's Envoy admin, say). */
function notOurs(conn: AdminConnection, answer: string): string {
  return (
    `${conn.server} is not a lucid-mesh control plane (${answer}): give --server ` +
    "the control plane's admin port (serve --admin-port, default 8080), not a sidecar's Envoy admin"
  );
}

function authMessage(
  conn: AdminConnection,
  status: number,
  body: { error?: string; reason?: string },
): string {
  if (conn.token === undefined) {
    return (
      `the control plane at ${conn.server} needs an operator token (HTTP ${status}): pass ` +
      '--token, --token-file or LUCID_OPERATOR_TOKEN (lucid-mesh token issue --operator)'
    );
  }
  const reason = body.reason ? ` ${body.reason}` : '';
  const why = body.error ? `: ${body.error}` : '';
  return `the control plane at ${conn.server} refused the operator token (HTTP ${status}${reason})${why}`;
}

/** GET a JSON document; one clear message when the server is down or answers an error. */
export async function getJson<T>(conn: AdminConnection, path: string): Promise<T> {
  const res = await checked(conn, path, await get(conn, path, { timeoutMs: 5000 }));
  let text: string;
  try {
    text = await readBody(res);
  } catch (err) {
    throw new AdminUnreachable(unreachableMessage(conn.server, err, conn.caFile));
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new AdminUnreachable(notOurs(conn, 'an answer that is not JSON'));
  }
}

/** GET a text document (e.g. /metrics); errors as getJson's. */
export async function getText(conn: AdminConnection, path: string): Promise<string> {
  const res = await checked(
    conn,
    path,
    await get(conn, path, { accept: 'text/plain', timeoutMs: 5000 }),
  );
  try {
    return await readBody(res);
  } catch (err) {
    throw new AdminUnreachable(unreachableMessage(conn.server, err, conn.caFile));
  }
}

/** Opens an event stream (Server-Sent Events); the body is read by the caller. */
export async function openEventStream(
  conn: AdminConnection,
  path: string,
): Promise<IncomingMessage> {
  return checked(conn, path, await get(conn, path, { accept: 'text/event-stream' }));
}

export function unreachableMessage(server: string, err: unknown, caFile?: string): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = e.code ?? e.cause?.code;
  if (code !== undefined && /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/.test(code)) {
    if (caFile !== undefined) {
      return `cannot verify the certificate of the control plane at ${server} (${code}): it does not chain to --server-ca ${JSON.stringify(caFile)}`;
    }
    return `cannot verify the certificate of the control plane at ${server} (${code}): give its CA with --server-ca or LUCID_SERVER_CA`;
  }
  if (code === 'EPROTO') {
    return `the control plane at ${server} does not speak TLS (EPROTO): use http:// for a server without --admin-tls-cert`;
  }
  // A TLS server drops a plain HTTP request without a word: the usual cause of a reset on
  // http://, where "is serve running?" would send the operator the wrong way.
  if (code === 'ECONNRESET' && server.startsWith('http:')) {
    return `the control plane at ${server} closed the connection (ECONNRESET): if it serves the admin port over TLS (--admin-tls-cert), use https://`;
  }
  const why = code ?? e.cause?.message ?? e.message;
  return `cannot reach the control plane at ${server} (${why}); is \`lucid-mesh serve\` running? Use --server or LUCID_SERVER`;
}

/** Runs a command body; errors become one line on stderr and exit code 1 (2 for a bad flag). */
export async function runOperator(command: string, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    process.stderr.write(`lucid-mesh ${command}: ${(err as Error).message}\n`);
    process.exit(err instanceof AdminFlagError ? 2 : 1);
  }
}
