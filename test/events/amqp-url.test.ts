// A broker URL that does not parse is quoted in the usage error with its password hidden,
// whatever the password holds. A password with an unencoded "/" (base64 passwords have them)
// was quoted whole: `--events-amqp: not a URL: "amqp://ops:hun/ter2@broker:5672/"`, into
// serve's stderr (the log of a container).
import { describe, expect, it } from 'vitest';
import { AmqpUrlError, parseBrokerUrl } from '../../src/events/amqp-url.js';
import { runCli } from '../support/cli-process.js';

/** Passwords as a user pastes them, unencoded: each breaks URL parsing differently. */
const PASSWORDS = ['hun/ter2', 'hun#ter2', 'hun?ter2', 'a+b/c9==', 'p@ss/w0rd', 'x/y@z'];

function errorOf(value: string): string {
  try {
    parseBrokerUrl(value, '--events-amqp');
  } catch (err) {
    expect(err).toBeInstanceOf(AmqpUrlError);
    return (err as Error).message;
  }
  return '';
}

describe('a broker URL that does not parse', () => {
  it.each(PASSWORDS)('password %s: never quoted, the user and host still shown', (password) => {
    const message = errorOf(`amqp://ops:${password}@broker:5672/`);
    expect(message).toMatch(/^--events-amqp: /);
    expect(message).not.toContain(password);
    for (const part of password.split(/[/#?@+=]/).filter((p) => p.length > 2)) {
      expect(message).not.toContain(part);
    }
    expect(message).toContain('ops:***@');
  });

  it('lucid-mesh events: exit 2, the password hidden', async () => {
    const r = await runCli(['events', '--amqp', 'amqp://ops:hun/ter2@broker:5672/']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--amqp: not a URL: "amqp://ops:***@broker:5672/"');
    expect(r.stderr + r.stdout).not.toContain('ter2');
  }, 30_000);
});
