// What both CA stores (file-store.ts on a directory, state/kv-store.ts on Consul KV / etcd)
// keep and how they read it back: the record schemas and a strict JSON reader whose errors
// name where the bad content is (a file path or a KV key).
import { z } from 'zod';
import { CaMaterialError } from './crypto.js';
import { OPERATOR_SCOPES, TOKEN_KINDS } from './revocations.js';

export const SERIAL = /^[0-9a-f]{1,40}$/;

/** A root's certificate and state (the stores keep its private key each their own way). */
export const storedRootEntry = z.object({
  serial: z.string().regex(SERIAL),
  certPem: z.string(),
  chainPem: z.string(),
  state: z.enum(['active', 'retiring']),
  source: z.enum(['generated', 'operator']),
  addedAt: z.string(),
  retiringSince: z.string().optional(),
});

/** Metadata of an issued leaf (never its key). */
export const storedLeafEntry = z.object({
  service: z.string(),
  spiffeId: z.string(),
  serial: z.string(),
  notBefore: z.string(),
  notAfter: z.string(),
  rootSerial: z.string(),
});

/** One entry of the token log: an issued token and its revocation, no secret. */
export const storedTokenEntry = z.object({
  id: z.string().min(1),
  kind: z.enum(TOKEN_KINDS).optional(),
  subject: z.string().optional(),
  scope: z.enum(OPERATOR_SCOPES).optional(),
  issuedAt: z.string().optional(),
  expiresAt: z.string().optional(),
  revokedAt: z.string().optional(),
});

/** JSON `text` read from `where`, checked against `schema`; throws CaMaterialError naming it. */
export function parseStored<T>(where: string, text: string, schema: z.ZodType<T>): T {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new CaMaterialError(`${where}: not valid JSON (${(err as Error).message})`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new CaMaterialError(
      `${where}: unexpected content at ${issue?.path.join('.') || '(root)'}: ${issue?.message}`,
    );
  }
  return parsed.data;
}
