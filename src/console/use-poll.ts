// Re-reads an API every `ms` while the view is shown: the console is read-only and polls the
// same GET endpoints as the CLI (the live view follows the event stream instead).
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
    const tick = async (): Promise<void> => {
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
      if (!stopped) timer = setTimeout(() => void tick(), ms);
    };
    void tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
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
