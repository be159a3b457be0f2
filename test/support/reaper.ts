// Real components started by tests (Envoy, Consul, etcd) must never outlive the test process,
// however it ends: a normal exit kills them from an exit hook, and a SIGKILLed worker is
// covered by a small reaper shell per child that kills it when our end of its stdin closes.
import { spawn, type ChildProcess } from 'node:child_process';

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

/** A shell that SIGKILLs `pid` when its stdin reaches EOF, i.e. when this process dies. */
function spawnReaper(pid: number, name: string): ChildProcess {
  const reaper = spawn(
    'sh',
    ['-c', 'read -r _; kill -KILL "$1" 2>/dev/null', `${name}-reaper`, String(pid)],
    {
      stdio: ['pipe', 'ignore', 'ignore'],
    },
  );
  reaper.on('error', () => undefined);
  reaper.unref();
  const stdin = reaper.stdin as (NodeJS.WritableStream & { unref?: () => void }) | null;
  stdin?.on('error', () => undefined);
  stdin?.unref?.();
  return reaper;
}

/** Ties `child` to the test process's life; released by itself when the child exits. */
export function killWithTestProcess(child: ChildProcess, name: string): void {
  installExitHook();
  live.add(child);
  const reaper = child.pid !== undefined ? spawnReaper(child.pid, name) : undefined;
  const release = (): void => {
    live.delete(child);
    reaper?.kill('SIGKILL');
  };
  child.once('exit', release);
  child.once('error', release);
}
