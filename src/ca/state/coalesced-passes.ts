// One async pass at a time over some state: a call while a pass runs asks for one more pass
// after it (and shares the running promise), so a burst of triggers costs at most one extra
// pass and none is lost. Used by the lease / session keepers (LiveKeys, Campaigner).

export class CoalescedPasses {
  private running: Promise<void> | undefined;
  private again = false;

  constructor(
    /** One pass; it handles its own errors (a rejection ends the passes and reaches callers). */
    private readonly pass: () => Promise<void>,
    /** No further pass is started once this is true. */
    private readonly stopped: () => boolean,
    /** Runs after the last pass, before the promise settles. */
    private readonly afterPasses: () => void = () => undefined,
  ) {}

  /** Starts passes, or asks the running ones for one more; resolves when they are done. */
  run(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.pass();
      } while (this.again && !this.stopped());
      this.afterPasses();
    })().finally(() => (this.running = undefined));
    return this.running;
  }

  /** The passes running now, if any. */
  get current(): Promise<void> | undefined {
    return this.running;
  }
}
