/** A flag value a source cannot use; the message names the flag and says what was expected. */
export class FlagError extends Error {
  override readonly name: string = 'FlagError';
  constructor(
    readonly flag: string,
    message: string,
  ) {
    super(`${flag}: ${message}`);
  }
}

/** An http(s) URL naming only a scheme, host and port (no path, query, fragment or user). */
export function isBareHttpOrigin(url: URL): boolean {
  return (
    (url.protocol === 'http:' || url.protocol === 'https:') &&
    url.hostname !== '' &&
    (url.pathname === '/' || url.pathname === '') &&
    !url.search &&
    !url.hash &&
    !url.username
  );
}
