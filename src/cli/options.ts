// Flag parsing shared by commands: errors name the flag and the value.
import { InvalidArgumentError, type Command, type Option } from 'commander';

export function portOption(flag: string, allowZero = false) {
  return (value: string): number => {
    const n = Number(value);
    const min = allowZero ? 0 : 1;
    if (!/^\d+$/.test(value.trim()) || !Number.isInteger(n) || n < min || n > 65535) {
      throw new InvalidArgumentError(
        `${flag}: expected integer ${min}-65535, got ${JSON.stringify(value)}`,
      );
    }
    return n;
  };
}

export function durationMsOption(flag: string, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || n > max) {
      throw new InvalidArgumentError(
        `${flag}: expected milliseconds 0-${max}, got ${JSON.stringify(value)}`,
      );
    }
    return n;
  };
}

export function choiceOption<T extends string>(flag: string, choices: readonly T[]) {
  return (value: string): T => {
    if (!(choices as readonly string[]).includes(value)) {
      throw new InvalidArgumentError(
        `${flag}: expected one of ${choices.join(' | ')}, got ${JSON.stringify(value)}`,
      );
    }
    return value as T;
  };
}

/**
 * A boolean flag that its environment variable may also turn on. Read here, not with commander's
 * `.env()`, which turns a boolean flag on for any value of its variable, `=false` included.
 * Off: unset, empty, false/0/no/off; on: true/1/yes/on (any case, spaces trimmed).
 * @throws InvalidArgumentError naming the variable for any other value
 */
export function booleanFlagOrEnv(
  flagValue: unknown,
  envName: string,
  env: NodeJS.ProcessEnv = process.env,
): boolean {
  if (flagValue === true) return true;
  const raw = env[envName];
  const value = raw?.trim().toLowerCase() ?? '';
  if (['', 'false', '0', 'no', 'off'].includes(value)) return false;
  if (['true', '1', 'yes', 'on'].includes(value)) return true;
  throw new InvalidArgumentError(`${envName}: expected true or false, got ${JSON.stringify(raw)}`);
}

/**
 * Two options that give one thing two ways (a value, or a file holding it). On the command line
 * one wins over the other's environment variable, as any flag wins over its own variable (a
 * shell that exports one must not block the other flag); given both at one level (two flags, or
 * two variables) they are a usage error (exit 2) naming both. commander's `.conflicts()`
 * refused a flag while the other option's variable was merely set.
 */
export function eitherOption(cmd: Command, longA: string, longB: string): Command {
  const find = (long: string): Option => {
    const found = cmd.options.find((o) => o.long === long);
    if (!found) throw new Error(`eitherOption: ${cmd.name()} has no ${long}`);
    return found;
  };
  const [a, b] = [find(longA), find(longB)];
  return cmd.hook('preAction', (_self, action) => {
    const source = (o: Option) => action.getOptionValueSource(o.attributeName());
    const [sa, sb] = [source(a), source(b)];
    if (sa === 'cli' && sb === 'env')
      action.setOptionValueWithSource(b.attributeName(), undefined, 'default');
    else if (sb === 'cli' && sa === 'env')
      action.setOptionValueWithSource(a.attributeName(), undefined, 'default');
    else if (sa === 'cli' && sb === 'cli')
      action.error(`error: ${a.long} and ${b.long}: give one of them`, { exitCode: 2 });
    else if (sa === 'env' && sb === 'env') {
      action.error(
        `error: ${a.envVar} and ${b.envVar} are both set: unset one (or give ${a.long} or ${b.long})`,
        { exitCode: 2 },
      );
    }
  });
}
