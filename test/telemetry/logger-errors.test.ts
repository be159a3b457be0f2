// Logged errors say which error they were in the minified CLI too (src/telemetry/logger.ts).
import { stdSerializers } from 'pino';
import { describe, expect, it } from 'vitest';
import { errorWithItsName } from '../../src/telemetry/logger.js';

describe('the logs’ error serializer', () => {
  it("takes an error's type from its name, not from its (minified) class name", () => {
    // What esbuild's minifier makes of `class AuthError extends Error { name = 'AuthError' }`.
    const o = class extends Error {
      override readonly name: string = 'AuthError';
    };
    const err = new o('bad token');
    expect((stdSerializers.err(err) as { type: string }).type).toBe('o');
    expect(errorWithItsName(err)).toMatchObject({ type: 'AuthError', message: 'bad token' });
    expect(errorWithItsName(new TypeError('x'))).toMatchObject({ type: 'TypeError' });
    expect(errorWithItsName('not an error')).toBe('not an error');
  });
});
