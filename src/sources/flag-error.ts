/** A flag value a source cannot use; the message names the flag and says what was expected. */
export class FlagError extends Error {
  constructor(
    readonly flag: string,
    message: string,
  ) {
    super(`${flag}: ${message}`);
    this.name = new.target.name;
  }
}
