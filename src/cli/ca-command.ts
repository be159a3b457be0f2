// `lucid-mesh ca show|rotate` and `lucid-mesh token issue|revoke|list`: operator commands on
// the CA store. They work on the store directly, so they run next to a serving control plane:
// `ca rotate` writes the new root into the store, `token revoke` the revocation, and the
// server's store watchers pick them up (docs/ca.md).
// Usage errors: one line `lucid-mesh <command>: <problem>` on stderr, exit code 2; runtime
// failures exit 1.
import { statSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { withUsageErrors } from './usage.js';
import { CertificateAuthority } from '../ca/authority.js';
import { CaMaterialError } from '../ca/crypto.js';
import { FileCaStore } from '../ca/file-store.js';
import { KvCaStore } from '../ca/state/kv-store.js';
import type { CaStore } from '../ca/store.js';
import { openTokens, readOperatorCa, readTokenKey } from '../ca/open.js';
import { generateRoot, operatorRoot, rootInfo } from '../ca/roots.js';
import {
  CaSettingsError,
  DEFAULT_TOKEN_TTL_MS,
  defaultDataDir,
  formatDuration,
  parseDuration,
} from '../ca/settings.js';
import { OPERATOR_SCOPES, TOKEN_ID, tokenState, type TokenRecord } from '../ca/revocations.js';
import {
  DEFAULT_OPERATOR_NAME,
  DEFAULT_OPERATOR_SCOPE,
  MAX_TOKEN_TTL_MS,
  isOperatorName,
} from '../ca/tokens.js';
import { isServiceName } from '../ca/spiffe.js';
import { choiceOption } from './options.js';
import {
  stateCliOptionsWithConnections,
  stateStoreFromFlags,
  type StateFlags,
} from './state-flags.js';
import { compareStrings } from '../text-order.js';

export const EXIT_USAGE = 2;
export const EXIT_FAILURE = 1;

/** Where the commands write and how they exit; tests replace these to run in-process. */
export interface CaCommandIo {
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
  /** Must not return (default process.exit). Called with 0 after --help. */
  exit?: (code: number) => never;
  /** Default Date.now; `ca show` computes "expires in" from it. */
  now?: () => number;
}

/** `--data-dir`, shared with `serve`. */
export function dataDirOption(): Option {
  return new Option(
    '--data-dir <dir>',
    'CA state directory (roots, keys, token key); see docs/ca.md',
  )
    .env('LUCID_DATA_DIR')
    .default(defaultDataDir({ ...process.env, LUCID_DATA_DIR: undefined }))
    .argParser(dataDirValue);
}

/**
 * A directory, or a path where one can be created (it is, on first use). A file there would
 * otherwise surface as a bare "EEXIST: mkdir" or "ENOTDIR" naming no flag.
 */
function dataDirValue(dir: string): string {
  let isDirectory: boolean;
  try {
    isDirectory = statSync(dir).isDirectory();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOTDIR') return dir; // absent (created on first use) or not ours to judge
    throw new InvalidArgumentError(
      `--data-dir: expected a directory, got ${JSON.stringify(dir)} (a part of that path is a file)`,
    );
  }
  if (!isDirectory) {
    throw new InvalidArgumentError(
      `--data-dir: expected a directory, got ${JSON.stringify(dir)} (a file)`,
    );
  }
  return dir;
}

export function caCertOption(): Option {
  return new Option(
    '--ca-cert <file>',
    'operator-provided CA certificate (PEM; an intermediate followed by its issuers up to the root)',
  );
}

export function caKeyOption(): Option {
  return new Option('--ca-key <file>', 'private key of --ca-cert (PEM)');
}

interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  exit: (code: number) => never;
  now: () => number;
}

function resolveIo(io: CaCommandIo): Io {
  return {
    stdout: io.stdout ?? ((s) => void process.stdout.write(s)),
    stderr: io.stderr ?? ((s) => void process.stderr.write(s)),
    exit: io.exit ?? ((code): never => process.exit(code)),
    now: io.now ?? Date.now,
  };
}

/** Output, error format and exit codes of one (sub)command. */
function configure(cmd: Command, prefix: string, io: Io): Command {
  return withUsageErrors(cmd, prefix, io);
}

/** `--data-dir` and the `--state` flags (with how to reach Consul or etcd). */
function withStoreOptions(cmd: Command): Command {
  cmd.addOption(dataDirOption());
  for (const option of stateCliOptionsWithConnections()) cmd.addOption(option);
  return cmd;
}

type StoreFlags = StateFlags & { dataDir: string } & Record<string, unknown>;
type OpenStore = (flags: StoreFlags) => CaStore;

/**
 * Runs an action; known errors become one stderr line and an exit code. The action opens its
 * store with `open` (the --state store, else --data-dir), closed when it is done.
 */
async function guarded(
  prefix: string,
  io: Io,
  fn: (open: OpenStore) => Promise<void>,
): Promise<void> {
  const opened: KvCaStore[] = [];
  const open: OpenStore = (flags) => {
    const shared = stateStoreFromFlags(flags);
    if (!shared) return new FileCaStore(flags.dataDir);
    opened.push(shared);
    return shared;
  };
  try {
    try {
      await fn(open);
    } finally {
      for (const store of opened) await store.close().catch(() => undefined);
    }
  } catch (err) {
    if (err instanceof CaSettingsError) {
      io.stderr(`${prefix}: ${err.message}\n`);
      return io.exit(EXIT_USAGE);
    }
    io.stderr(`${prefix}: ${(err as Error).message}\n`);
    return io.exit(EXIT_FAILURE);
  }
}

export function caCommand(ioOptions: CaCommandIo = {}): Command {
  const io = resolveIo(ioOptions);
  const ca = configure(
    new Command('ca').description(
      'Inspect and rotate the certificate authority that issues the mesh certificates.',
    ),
    'lucid-mesh ca',
    io,
  );
  ca.addCommand(showCommand(io));
  ca.addCommand(rotateCommand(io));
  return ca;
}

function showCommand(io: Io): Command {
  const prefix = 'lucid-mesh ca show';
  return withStoreOptions(
    configure(
      new Command('show')
        .description(
          'Print the roots (serial, state, expiry) and the leaf certificate currently issued per ' +
            'service; with --state consul|etcd also, per root, the live replicas still holding ' +
            'leaves signed by it (what keeps a retiring root in the trust bundle).',
        )
        .addOption(new Option('--json', 'machine-readable output')),
      prefix,
      io,
    ),
  ).action((flags: StoreFlags & { json?: boolean }) =>
    guarded(prefix, io, async (open) => {
      const store = open(flags);
      const roots = await store.loadRoots();
      // A shared store holds each replica's leaves: show the newest per service.
      const leaves =
        store instanceof KvCaStore ? await store.loadAllLeaves() : await store.loadLeaves();
      if (roots.length === 0) {
        throw new Error(
          `no CA in ${store.location} yet (\`lucid-mesh serve\` creates one on first start; ` +
            'or run `lucid-mesh ca rotate`)',
        );
      }
      // Which live replicas still hold leaves of each root (what keeps a retiring root).
      const holders = store instanceof KvCaStore ? await store.readLeafRoots() : undefined;
      const heldBy = (serial: string) =>
        (holders ?? []).flatMap((h) =>
          'record' in h
            ? h.record.roots
                .filter((r) => r.serial === serial && Date.parse(r.until) > io.now())
                .map((r) => ({ replica: h.record.replica, leaves: r.leaves, until: r.until }))
            : [],
        );
      const unreadable = (holders ?? []).flatMap((h) =>
        'error' in h ? [{ key: h.key, error: h.error }] : [],
      );
      const infos = roots
        .map(rootInfo)
        .sort((a, b) => Number(b.state === 'active') - Number(a.state === 'active'))
        .map((r) => (holders ? { ...r, heldBy: heldBy(r.serial) } : r));
      if (flags.json) {
        const extra = unreadable.length > 0 ? { unreadableLeafRoots: unreadable } : {};
        io.stdout(
          JSON.stringify({ store: store.location, roots: infos, leaves, ...extra }, null, 2) + '\n',
        );
        return;
      }
      const now = io.now();
      const until = (iso: Date | string) => {
        const ms = new Date(iso).getTime() - now;
        return ms >= 0 ? `in ${formatDuration(ms)}` : `expired ${formatDuration(ms)} ago`;
      };
      const lines = [`CA store: ${store.location}`, '', 'ROOTS'];
      lines.push(
        ...table([
          [
            'SERIAL',
            'STATE',
            'SOURCE',
            'NOT AFTER',
            'EXPIRES',
            ...(holders ? ['HELD BY (replica: leaves)'] : []),
            'SUBJECT',
          ],
          ...infos.map((r) => [
            r.serial,
            r.state === 'active' ? 'active' : 'retiring',
            r.source,
            r.notAfter.toISOString(),
            until(r.notAfter),
            ...(holders
              ? [
                  heldBy(r.serial)
                    .map((h) => `${h.replica}: ${h.leaves}`)
                    .join(', ') || '-',
                ]
              : []),
            r.subject,
          ]),
        ]),
      );
      for (const u of unreadable) lines.push(`  warning: cannot read ${u.key}: ${u.error}`);
      lines.push('', 'LEAVES (current per service, recorded by the serving control plane)');
      if (leaves.length === 0) lines.push('  none issued yet');
      else {
        lines.push(
          ...table([
            ['SERVICE', 'SERIAL', 'NOT AFTER', 'EXPIRES', 'SIGNED BY ROOT'],
            ...leaves.map((l) => [
              l.service,
              l.serial,
              l.notAfter,
              until(l.notAfter),
              l.rootSerial,
            ]),
          ]),
        );
      }
      io.stdout(lines.join('\n') + '\n');
    }),
  );
}

function rotateCommand(io: Io): Command {
  const prefix = 'lucid-mesh ca rotate';
  return withStoreOptions(
    configure(
      new Command('rotate')
        .description(
          'Start a new root: it signs every new leaf from now on, while the old root stays in the ' +
            'trust bundle until the serving control plane has replaced every leaf it signed.',
        )
        .addOption(caCertOption())
        .addOption(caKeyOption())
        .addHelpText(
          'after',
          '\nA running `lucid-mesh serve` on the same --data-dir notices the new root within ' +
            'seconds (store watch) and rolls it out; no restart. With --state consul|etcd ' +
            "(and the replicas' --state-prefix and --state-encryption-key) every replica sharing " +
            'that store does.\n' +
            'Without --ca-cert/--ca-key a new root is generated; with them, that CA becomes the new root.\n',
        ),
      prefix,
      io,
    ),
  ).action((flags: StoreFlags & { caCert?: string; caKey?: string }) =>
    guarded(prefix, io, async (open) => {
      const operatorCa = await readOperatorCa(flags.caCert, flags.caKey);
      const store = open(flags);
      const existing = await store.loadRoots();
      const active = existing.find((r) => r.state === 'active');
      if (!active) {
        const now = io.now();
        const first = operatorCa
          ? await operatorRoot({ ...operatorCa, now })
          : await generateRoot({ now });
        const roots = await store.updateRoots((current) =>
          current.length > 0 ? undefined : [first],
        );
        const info = rootInfo(roots.find((r) => r.state === 'active')!);
        io.stdout(
          `No CA in ${store.location} yet: created root ${info.serial} (${info.subject}).\n`,
        );
        return;
      }
      if (active.source === 'operator' && !operatorCa) {
        throw new CaSettingsError(
          `the active root ${active.serial} is operator-provided: give the new CA with ` +
            '--ca-cert/--ca-key (and point `serve --ca-cert/--ca-key` at it for the next start)',
        );
      }
      const authority = await CertificateAuthority.open({ store });
      let next;
      try {
        next = await authority.rotateRoot(operatorCa);
      } catch (err) {
        if (err instanceof CaMaterialError) throw new CaSettingsError(`--ca-cert: ${err.message}`);
        throw err;
      }
      const retiring = authority.roots().filter((r) => r.state === 'retiring');
      io.stdout(
        [
          `New active root: ${next.serial} (${next.subject}), valid until ${next.notAfter.toISOString()}.`,
          `Retiring: ${retiring.map((r) => r.serial).join(', ')}.`,
          // Named: with --state consul|etcd it is every replica on that store, not a directory.
          `Every control plane serving from ${store.location} now distributes the new trust ` +
            'bundle, re-issues every leaf with the new root and then drops the retiring ones. ' +
            'Watch it with `lucid-mesh ca show`.',
          '',
        ].join('\n'),
      );
    }),
  );
}

export function tokenCommand(ioOptions: CaCommandIo = {}): Command {
  const io = resolveIo(ioOptions);
  const token = configure(
    new Command('token').description(
      'Tokens: what a sidecar presents to get its config (proxy tokens) and what an operator ' +
        'presents to the admin API (operator tokens); revoke them and list them.',
    ),
    'lucid-mesh token',
    io,
  );
  token.addCommand(issueCommand(io));
  token.addCommand(revokeCommand(io));
  token.addCommand(listCommand(io));
  return token;
}

function tokenKeyOption(): Option {
  return new Option('--token-key <file>', 'sign with this shared key (as serve --token-key)').env(
    'LUCID_TOKEN_KEY',
  );
}

interface IssueFlags extends StateFlags, Record<string, unknown> {
  service?: string;
  operator?: boolean;
  scope?: (typeof OPERATOR_SCOPES)[number];
  name?: string;
  ttl: number;
  dataDir: string;
  tokenKey?: string;
}

function issueCommand(io: Io): Command {
  const prefix = 'lucid-mesh token issue';
  return withStoreOptions(
    configure(
      new Command('issue')
        .description(
          'Print a signed token. With --service: a proxy token bound to one service identity (the ' +
            'control plane serves a proxy presenting it only the config and certificates of that ' +
            'service). With --operator: a token for the admin API (/v1/*, lucid-mesh status, tail, ...).',
        )
        .addOption(new Option('--service <name>', 'proxy token: the service it is for'))
        .addOption(new Option('--operator', 'operator token: for the admin API instead'))
        .addOption(
          new Option(
            '--scope <scope>',
            `operator token: read (every GET under /v1/) or admin (also what changes state) (default ${DEFAULT_OPERATOR_SCOPE})`,
          ).argParser(choiceOption('--scope', OPERATOR_SCOPES)),
        )
        .addOption(
          new Option(
            '--name <who>',
            `operator token: who it is for, shown by \`token list\` (default ${DEFAULT_OPERATOR_NAME})`,
          ),
        )
        .addOption(
          new Option('--ttl <duration>', 'lifetime, e.g. 30m, 24h, 7d')
            .default(DEFAULT_TOKEN_TTL_MS, '24h')
            .argParser(durationOption('--ttl', MAX_TOKEN_TTL_MS)),
        )
        .addOption(tokenKeyOption())
        .addHelpText(
          'after',
          '\nExamples:\n' +
            '  lucid-mesh token issue --service web --ttl 7d > web.token\n' +
            '  lucid-mesh token issue --operator --name alice > operator.token\n' +
            '  lucid-mesh token issue --operator --scope admin --name deploy-bot --ttl 1h\n' +
            '\nEvery token has an id (`token list`) that `token revoke --id` refuses from then on.\n',
        ),
      prefix,
      io,
    ),
  ).action((flags: IssueFlags) =>
    guarded(prefix, io, async (open) => {
      if (flags.operator && flags.service !== undefined) {
        throw new CaSettingsError('--service: a token is for a service or an operator, not both');
      }
      if (!flags.operator) {
        for (const [flag, value] of [
          ['--scope', flags.scope],
          ['--name', flags.name],
        ] as const) {
          if (value !== undefined) throw new CaSettingsError(`${flag}: only with --operator`);
        }
        if (flags.service === undefined) {
          throw new CaSettingsError('--service: required (or --operator for an operator token)');
        }
        if (!isServiceName(flags.service)) {
          throw new CaSettingsError(
            `--service: expected a DNS label (a-z, 0-9, -), got ${JSON.stringify(flags.service)}`,
          );
        }
      } else if (flags.name !== undefined && !isOperatorName(flags.name)) {
        throw new CaSettingsError(
          `--name: expected 1-64 of A-Z a-z 0-9 . _ @ + - starting with a letter or digit, got ${JSON.stringify(flags.name)}`,
        );
      }
      const tokenKey = await readTokenKey(flags.tokenKey);
      const store = open(flags);
      // Every store a control plane has served from holds a root. Without one this is most
      // likely a mistyped --data-dir (or the default one while serve runs on another): the
      // token is still minted (issuing before the first start is fine), with a word why a
      // running control plane may refuse it.
      const unserved = tokenKey === undefined && (await store.loadRoots()).length === 0;
      const tokens = await openTokens(store, tokenKey);
      const minted = flags.operator
        ? await tokens.issueOperator({ name: flags.name, scope: flags.scope, ttlMs: flags.ttl })
        : await tokens.issue(flags.service!, flags.ttl);
      io.stdout(minted + '\n');
      if (unserved) {
        io.stderr(
          `${prefix}: note: no control plane has served from ${store.location} yet: one ` +
            'serving from another --data-dir (or --state store) refuses this token\n',
        );
      }
    }),
  );
}

function revokeCommand(io: Io): Command {
  const prefix = 'lucid-mesh token revoke';
  return withStoreOptions(
    configure(
      new Command('revoke')
        .description(
          'Revoke a token by its id (see `token list`): a control plane serving from this data ' +
            'directory refuses it at once on the xDS and the admin port, and closes what it had opened.',
        )
        .addOption(new Option('--id <id>', 'the token id (jti), 32 hex digits (required)'))
        .addHelpText('after', '\nExample:\n  lucid-mesh token revoke --id 3f9c0d...\n'),
      prefix,
      io,
    ),
  ).action((flags: StoreFlags & { id?: string }) =>
    guarded(prefix, io, async (open) => {
      if (flags.id === undefined) throw new CaSettingsError('--id: required (see `token list`)');
      if (!TOKEN_ID.test(flags.id)) {
        throw new CaSettingsError(
          `--id: expected a token id (32 lowercase hex digits, as \`token list\` shows), got ${JSON.stringify(flags.id)}`,
        );
      }
      const store = open(flags);
      // A store no control plane serves from (a mistyped --data-dir) that never saw this id:
      // "Revoked" there would leave the token valid where it is checked.
      const id = flags.id;
      if (
        (await store.loadRoots()).length === 0 &&
        !(await store.loadTokens()).some((t) => t.id === id)
      ) {
        throw new Error(
          `no control plane has served from ${store.location} and no token ${id} was issued ` +
            "there, so revoking it there changes nothing: give serve's --data-dir (or --state flags)",
        );
      }
      const tokens = await openTokens(store, undefined);
      const { known, alreadyRevoked } = await tokens.revoke(flags.id);
      if (alreadyRevoked) {
        io.stdout(`Token ${flags.id} was already revoked.\n`);
        return;
      }
      io.stdout(
        `Revoked ${flags.id}${known ? '' : ' (not in the token log of ' + store.location + ': revoked anyway)'}.\n`,
      );
    }),
  );
}

function listCommand(io: Io): Command {
  const prefix = 'lucid-mesh token list';
  return withStoreOptions(
    configure(
      new Command('list')
        .description(
          'List the tokens issued from this data directory and not long expired: id, kind, ' +
            'subject, scope, expiry, and whether they are valid, expired or revoked.',
        )
        .addOption(new Option('--json', 'machine-readable output')),
      prefix,
      io,
    ),
  ).action((flags: StoreFlags & { json?: boolean }) =>
    guarded(prefix, io, async (open) => {
      const store = open(flags);
      const now = io.now();
      const records = [...(await store.loadTokens())].sort((a, b) =>
        compareStrings(a.issuedAt ?? a.revokedAt ?? '', b.issuedAt ?? b.revokedAt ?? ''),
      );
      if (flags.json) {
        const tokens = records.map((r) => ({ ...r, state: tokenState(r, now) }));
        io.stdout(JSON.stringify({ store: store.location, tokens }, null, 2) + '\n');
        return;
      }
      if (records.length === 0) {
        io.stdout(`No tokens in ${store.location}.\n`);
        return;
      }
      io.stdout(tokenTable(records, now).join('\n') + '\n');
    }),
  );
}

function tokenTable(records: readonly TokenRecord[], now: number): string[] {
  const until = (iso: string | undefined): string => {
    if (iso === undefined) return '-';
    const ms = Date.parse(iso) - now;
    return ms >= 0 ? `in ${formatDuration(ms)}` : `${formatDuration(-ms)} ago`;
  };
  return table([
    ['ID', 'KIND', 'SUBJECT', 'SCOPE', 'EXPIRES AT', 'EXPIRES', 'STATE'],
    ...records.map((r) => {
      const state = tokenState(r, now);
      return [
        r.id,
        r.kind ?? '?',
        r.subject ?? '?',
        r.scope ?? '-',
        r.expiresAt ?? '?',
        until(r.expiresAt),
        state === 'revoked' ? `revoked ${r.revokedAt}` : state,
      ];
    }),
  ]);
}

function durationOption(flag: string, maxMs: number) {
  return (value: string): number => {
    const ms = parseDuration(value);
    if (ms === undefined || ms < 1000 || ms > maxMs) {
      throw new InvalidArgumentError(
        `${flag}: expected a duration from 1s to ${maxMs / 86_400_000}d like 30m, 24h or 7d, got ${JSON.stringify(value)}`,
      );
    }
    return ms;
  };
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map(
    (r) =>
      '  ' + r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '),
  );
}
