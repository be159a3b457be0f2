// For the token tests: the TokenError a promise is refused with (fails the test if it resolves).
import { expect } from 'vitest';
import { TokenError } from '../../src/ca/tokens.js';

export async function refusal(promise: Promise<unknown>): Promise<TokenError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(TokenError);
    return err as TokenError;
  }
  throw new Error('expected the token to be refused');
}
