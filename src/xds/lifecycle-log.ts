// Stream open/close lines at info, and refusals (no or a bad token) at warn, at most so many
// per window; past that (a storm: 10,000 sidecars connecting at once were 20,000 lines and
// ~4 % of the storm's CPU, bench W9 declared --profile; or anyone who reaches the xDS port
// opening streams without a token: a warn line each, unbounded) they go to debug, and one
// summary line per window counts them. An operator sees the first streams by node, then how
// many more there were, not a screenful per second.
import type { Logger } from '../telemetry/logger.js';

/** Per-stream lines logged per window (every stream of a small mesh still gets its line). */
export const LIFECYCLE_LINES_PER_WINDOW = 200;
export const LIFECYCLE_WINDOW_MS = 10_000;

export type LifecycleEvent = 'opened' | 'closed' | 'refused';

/** A refusal is a warning (a sidecar cut off, or someone trying the port); the rest info. */
export function lifecycleLevel(event: LifecycleEvent): 'info' | 'warn' {
  return event === 'refused' ? 'warn' : 'info';
}

export class LifecycleLog {
  private windowStart = -Infinity;
  private lines = 0;
  private readonly held: Record<LifecycleEvent, number> = { opened: 0, closed: 0, refused: 0 };
  private summary: NodeJS.Timeout | undefined;

  constructor(
    private readonly logger: Logger,
    private readonly perWindow = LIFECYCLE_LINES_PER_WINDOW,
    private readonly windowMs = LIFECYCLE_WINDOW_MS,
  ) {}

  /** One stream's open, close or refusal line. */
  line(event: LifecycleEvent, fields: Record<string, unknown>, message: string): void {
    const now = Date.now();
    if (now - this.windowStart >= this.windowMs) {
      this.windowStart = now;
      this.lines = 0;
    }
    if (this.lines < this.perWindow) {
      this.lines++;
      this.logger[lifecycleLevel(event)](fields, message);
      return;
    }
    this.held[event]++;
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
    const { opened, closed, refused } = this.held;
    if (opened === 0 && closed === 0 && refused === 0) return;
    const fields = {
      opened,
      closed,
      refused,
      perStreamLinesPerWindow: this.perWindow,
      windowMs: this.windowMs,
    };
    const message = 'xds streams opened, closed and refused beyond the per-stream lines (at debug)';
    // Refusals held back are still worth a warning: streams were refused for their token.
    if (refused > 0) this.logger.warn(fields, message);
    else this.logger.info(fields, message);
    this.held.opened = this.held.closed = this.held.refused = 0;
  }
}
