// `lucid-mesh policy`: offline tools for the authorization policy file.
//   policy check FILE [--catalog CATALOG]   validate; problems one per line with their path
//   policy explain FILE --from A --to B     allow or deny, and the rule (or default) that decided
// Exit codes: 0 ok (explain: whatever the decision), 2 invalid policy, file or arguments.
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { withUsageErrors } from './usage.js';
import { CatalogDocumentError, parseCatalogText } from '../catalog/load-document.js';
import { describeExplanation, explain, policyWarnings } from '../policy/evaluate.js';
import {
  PolicyDocumentError,
  isServiceName,
  parsePolicyText,
  type Policy,
} from '../policy/schema.js';

const PREFIX = 'lucid-mesh policy';
export const EXIT_INVALID = 2;

/** Where the command writes and how it exits; tests replace these to run it in-process. */
export interface PolicyCommandIo {
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
  /** Must not return (default process.exit). */
  exit?: (code: number) => never;
}

class Failed extends Error {
  override readonly name: string = 'Failed';
  constructor(readonly lines: readonly string[]) {
    super(lines.join('\n'));
  }
}

function readText(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const reason = e.code
      ? `${e.message.replace(/^\w+: /, '').replace(/, \w+ '.*'$/, '')} (${e.code})`
      : String(err);
    throw new Failed([`${PREFIX}: cannot read ${what} ${JSON.stringify(file)}: ${reason}`]);
  }
}

function loadPolicy(file: string): Policy {
  const text = readText(file, 'policy');
  try {
    return parsePolicyText(text, file);
  } catch (err) {
    if (err instanceof PolicyDocumentError) {
      throw new Failed(err.problems.map((p) => `${file}: ${p}`));
    }
    throw err;
  }
}

function catalogServices(file: string): string[] {
  const text = readText(file, 'catalog');
  try {
    return parseCatalogText(text, file).services.map((s) => s.name);
  } catch (err) {
    if (err instanceof CatalogDocumentError) {
      throw new Failed(err.problems.map((p) => `${file}: ${p}`));
    }
    throw err;
  }
}

export function policyCommand(io: PolicyCommandIo = {}): Command {
  const stdout = io.stdout ?? ((s: string) => void process.stdout.write(s));
  const stderr = io.stderr ?? ((s: string) => void process.stderr.write(s));
  const exit = io.exit ?? ((code: number): never => process.exit(code));

  /** Runs `body`; a Failed becomes its lines on stderr and exit 2. */
  const guarded =
    <A extends unknown[]>(body: (...args: A) => void) =>
    (...args: A): void => {
      try {
        body(...args);
      } catch (err) {
        if (!(err instanceof Failed)) throw err;
        stderr(`${err.lines.join('\n')}\n`);
        exit(EXIT_INVALID);
      }
    };

  const configure = (cmd: Command): Command =>
    withUsageErrors(cmd, PREFIX, { stdout, stderr, exit });

  const check = configure(
    new Command('check')
      .description(
        'Validate a policy file. Problems are printed one per line as FILE: PATH: PROBLEM ' +
          '(exit 2); warnings (valid but probably unintended) do not fail the check.',
      )
      .argument('<file>', 'policy file (YAML, or JSON if it ends in .json)')
      .addOption(
        new Option(
          '--catalog <file>',
          'also warn about service names the catalog does not have (typos match nobody)',
        ),
      )
      .action(
        guarded((file: string, flags: { catalog?: string }) => {
          const policy = loadPolicy(file);
          const known = flags.catalog === undefined ? undefined : catalogServices(flags.catalog);
          const planes = Object.keys(policy.planes);
          stdout(
            `${file}: ok: ${planes.length} plane${planes.length === 1 ? '' : 's'}` +
              `${planes.length ? ` (${planes.join(', ')})` : ''}, ` +
              `${policy.rules.length} rule${policy.rules.length === 1 ? '' : 's'}, ` +
              `default ${policy.defaults.action}\n`,
          );
          for (const warning of policyWarnings(policy, known)) {
            stderr(`${file}: warning: ${warning}\n`);
          }
        }),
      ),
  );

  const serviceOption = (flag: string) => (value: string) => {
    if (!isServiceName(value)) {
      throw new Failed([
        `${PREFIX}: ${flag}: expected a service name (a DNS label: a-z, 0-9, -), got ${JSON.stringify(value)}`,
      ]);
    }
    return value;
  };

  const explainCmd = configure(
    new Command('explain')
      .description(
        'Say whether service FROM may call service TO under the policy, and which rule (or ' +
          'default) decided. First line: allow or deny.',
      )
      .argument('<file>', 'policy file (YAML, or JSON if it ends in .json)')
      .addOption(new Option('--from <service>', 'calling service').makeOptionMandatory())
      .addOption(new Option('--to <service>', 'called service').makeOptionMandatory())
      .action(
        guarded((file: string, flags: { from: string; to: string }) => {
          const from = serviceOption('--from')(flags.from);
          const to = serviceOption('--to')(flags.to);
          const policy = loadPolicy(file);
          const lines = describeExplanation(policy, from, to, explain(policy, from, to));
          stdout(`${lines.join('\n')}\n`);
        }),
      ),
  );

  return configure(
    new Command('policy')
      .description('Check and explain an authorization policy file (see docs/policy.md).')
      .addHelpText(
        'after',
        '\nExit codes: 0 ok, 2 invalid policy, file or arguments.\n' +
          '\nExamples:\n' +
          '  lucid-mesh policy check examples/policy.yaml --catalog examples/catalog.yaml\n' +
          '  lucid-mesh policy explain examples/policy.yaml --from api-gateway --to tron-payment\n',
      ),
  )
    .addCommand(check)
    .addCommand(explainCmd);
}
