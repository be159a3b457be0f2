// Re-reads an API every `ms` while the view is shown: the console is read-only and polls the
// same GET endpoints as the CLI (the live view follows the event stream instead). Not while the
// tab is hidden: a console left open in a background tab asked /v1/mesh (2.3 MB and 13-45 ms of
// the control plane's CPU at 1,000 services) every 2 s for nobody; shown again, it asks at once.
import { useEffect, useState } from 'preact/hooks';

export interface Polled<T> {
  data?: T;
  error?: string;
}

/**
 * `final`: an error that asking again cannot change (a 413: the mesh is too big for that
 * view) ends the polling until `key` changes, instead of a refused request every `ms`.
 */
export function usePoll<T>(
  load: () => Promise<T>,
  ms: number,
  key = '',
  final?: (err: Error) => boolean,
): Polled<T> {
  const [state, setState] = useState<Polled<T>>({});
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    /** The next ask waits for the tab to be shown. */
    let waiting = false;
    const schedule = (): void => {
      if (stopped) return;
      if (document.hidden) waiting = true;
      else timer = setTimeout(() => void tick(), ms);
    };
    const onVisibility = (): void => {
      if (stopped || document.hidden || !waiting) return;
      waiting = false;
      void tick();
    };
    document.addEventListener('visibilitychange', onVisibility);
    const tick = async (): Promise<void> => {
      // A timer set while the tab was shown fires after it was hidden: wait for it instead.
      if (document.hidden) {
        waiting = true;
        return;
      }
      try {
        const data = await load();
        if (!stopped) setState({ data });
      } catch (err) {
        const message = (err as Error).message;
        if (final?.(err as Error)) {
          // What was shown before no longer holds.
          if (!stopped) setState({ error: message });
          return;
        }
        // What is still shown is from before: say so, or it reads as current.
        if (!stopped) {
          setState((s) => ({
            data: s.data,
            error: s.data === undefined ? message : `${message}; showing its last answer`,
          }));
        }
      }
      schedule();
    };
    void tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisibility);
    };
  }, [key]);
  return state;
}

/** The current time, updated every `ms` (for "x s ago"). */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}
