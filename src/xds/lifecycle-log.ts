// Stream open/close lines at info, at most so many per window; past that (a storm: 10,000
// sidecars connecting at once were 20,000 lines and ~4 % of the storm's CPU, bench W9 declared
// --profile) they go to debug, and one summary line per window counts them. An operator sees
// the first streams by node, then how many more there were, not a screenful per second.
import type { Logger } from '../telemetry/logger.js';

/** Per-stream lines at info per window (every stream of a small mesh still gets its line). */
export const LIFECYCLE_LINES_PER_WINDOW = 200;
export const LIFECYCLE_WINDOW_MS = 10_000;

export class LifecycleLog {
  private windowStart = -Infinity;
  private lines = 0;
  private opened = 0;
  private closed = 0;
  private summary: NodeJS.Timeout | undefined;

  constructor(
    private readonly logger: Logger,
    private readonly perWindow = LIFECYCLE_LINES_PER_WINDOW,
    private readonly windowMs = LIFECYCLE_WINDOW_MS,
  ) {}

  /** One stream's open or close line. */
  line(event: 'opened' | 'closed', fields: Record<string, unknown>, message: string): void {
    const now = Date.now();
    if (now - this.windowStart >= this.windowMs) {
      this.windowStart = now;
      this.lines = 0;
    }
    if (this.lines < this.perWindow) {
      this.lines++;
      this.logger.info(fields, message);
      return;
    }
    if (event === 'opened') this.opened++;
    else this.closed++;
    if (this.logger.isLevelEnabled('debug')) this.logger.debug(fields, message);
    if (!this.summary) {
      this.summary = setTimeout(() => this.flush(), this.windowMs);
      this.summary.unref();
    }
  }

  /** Logs the summary of the lines held back now (also at shutdown, so none go uncounted). */
  flush(): void {
    if (this.summary) clearTimeout(this.summary);
    this.summary = undefined;
    if (this.opened === 0 && this.closed === 0) return;
    this.logger.info(
      {
        opened: this.opened,
        closed: this.closed,
        perStreamLinesPerWindow: this.perWindow,
        windowMs: this.windowMs,
      },
      'xds streams opened and closed beyond the per-stream lines (at debug)',
    );
    this.opened = 0;
    this.closed = 0;
  }
}
