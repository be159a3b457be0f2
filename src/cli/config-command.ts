// `lucid-mesh config check FILE`: validates a traffic configuration file (Consul config entries,
// YAML or JSON) offline, as `serve --traffic` would read it.
//   ok:     FILE: ok: N entries (1 service-router, ...) on stdout; each Consul field lucid-mesh
//           does not implement as FILE: unsupported: kind/name: field on stderr (not a failure)
//   errors: FILE: problem, one per line on stderr, exit 1
// Exit codes: 0 valid, 1 invalid or unreadable file, 2 usage errors.
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { withUsageErrors } from './usage.js';
import { DocumentError, parseCatalogText } from '../catalog/load-document.js';
import type { Catalog } from '../catalog/model.js';
import { referenceProblems } from './config-references.js';
import { counts, describeUnsupported, parseTrafficText } from '../traffic/traffic-file.js';

const PREFIX = 'lucid-mesh config';
export const EXIT_INVALID_CONFIG = 1;

/** Where the command writes and how it exits; tests replace these to run it in-process. */
export interface ConfigCommandIo {
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
  /** Must not return (default process.exit). */
  exit?: (code: number) => never;
}

/** A file's text, or the line saying why it cannot be read. */
function readText(file: string): { text: string } | { error: string } {
  try {
    return { text: readFileSync(file, 'utf8') };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const reason = e.code
      ? `${e.message.replace(/^\w+: /, '').replace(/, \w+ '.*'$/, '')} (${e.code})`
      : String(err);
    return { error: `${PREFIX}: cannot read ${JSON.stringify(file)}: ${reason}` };
  }
}

/**
 * The lines `config check` prints for `file`, and whether it is valid: each entry on its own,
 * then what the entries name that does not exist (in `catalogFile` if given, else in the file).
 */
export function checkTrafficFile(
  file: string,
  catalogFile?: string,
): { ok: boolean; out: string[]; err: string[] } {
  const read = readText(file);
  if ('error' in read) return { ok: false, out: [], err: [read.error] };
  const text = read.text;
  let catalog: Catalog | undefined;
  if (catalogFile !== undefined) {
    const c = readText(catalogFile);
    if ('error' in c) return { ok: false, out: [], err: [c.error] };
    try {
      catalog = parseCatalogText(c.text, catalogFile);
    } catch (err) {
      if (!(err instanceof DocumentError)) throw err;
      return { ok: false, out: [], err: err.problems.map((p) => `${catalogFile}: ${p}`) };
    }
  }
  try {
    const config = parseTrafficText(text, file);
    const problems = referenceProblems(config, catalog);
    if (problems.length > 0) {
      return {
        ok: false,
        out: [],
        err: problems.map((p) => `${file}: ${p.kind}/${p.name}: ${p.message}`),
      };
    }
    const perKind = Object.entries(counts(config)).filter(([, n]) => n > 0);
    const total = perKind.reduce((sum, [, n]) => sum + n, 0);
    const kinds = perKind.map(([kind, n]) => `${n} ${kind}`).join(', ');
    return {
      ok: true,
      out: [
        `${file}: ok: ${total} ${total === 1 ? 'entry' : 'entries'}${kinds ? ` (${kinds})` : ''}`,
      ],
      err: config.unsupported.map((u) => `${file}: unsupported: ${describeUnsupported(u)}`),
    };
  } catch (err) {
    if (!(err instanceof DocumentError)) throw err;
    return { ok: false, out: [], err: err.problems.map((p) => `${file}: ${p}`) };
  }
}

export function configCommand(io: ConfigCommandIo = {}): Command {
  const stdout = io.stdout ?? ((s: string) => void process.stdout.write(s));
  const stderr = io.stderr ?? ((s: string) => void process.stderr.write(s));
  const exit = io.exit ?? ((code: number): never => process.exit(code));
  const configure = (cmd: Command): Command =>
    withUsageErrors(cmd, PREFIX, { stdout, stderr, exit });

  const check = configure(
    new Command('check')
      .description(
        'Validate a traffic configuration file (Consul config entries) offline. Problems are ' +
          'printed one per line as FILE: KIND/NAME: PATH: PROBLEM (exit 1): invalid entries, ' +
          'and references Consul would refuse to write (a route or split to a subset the ' +
          "service's resolver does not define, a router on a tcp service, a redirect loop), " +
          'which serve applies with the default destination and lists in `lucid-mesh status`. ' +
          'Consul fields lucid-mesh does not implement are listed as unsupported (not a failure).',
      )
      .argument('<file>', 'traffic file (YAML, or JSON if it ends in .json): a list of entries')
      .option(
        '--catalog <file>',
        'also report services the entries name that this catalog file does not have ' +
          '(without it: only subsets, redirects and protocols the traffic file contradicts)',
      )
      .action((file: string, opts: { catalog?: string }) => {
        const result = checkTrafficFile(file, opts.catalog);
        for (const line of result.out) stdout(`${line}\n`);
        for (const line of result.err) stderr(`${line}\n`);
        if (!result.ok) exit(EXIT_INVALID_CONFIG);
      }),
  );

  return configure(
    new Command('config')
      .description('Check traffic configuration files (see docs/traffic.md).')
      .addHelpText(
        'after',
        '\nExit codes: 0 valid, 1 invalid or unreadable file, 2 usage errors.\n' +
          '\nExample:\n' +
          '  lucid-mesh config check traffic.yaml\n' +
          '  lucid-mesh config check traffic.yaml --catalog catalog.yaml\n',
      ),
  ).addCommand(check);
}
