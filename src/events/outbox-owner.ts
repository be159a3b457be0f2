// One process per event outbox (docs/events.md: give each replica its own directory). Two
// serve processes sharing one (two replicas on a host with the same --data-dir) would append
// to the same segment files, overwrite each other's `confirmed` mark and delete segments
// still holding the other's unconfirmed events: events lost without a word.
//
// The owner file holds the owner's pid and a token, and the owner touches it every
// REFRESH_MS. A newcomer that finds it fresh watches it for up to STALE_MS: touched again,
// the owner lives and the newcomer refuses to start; left alone (its owner crashed), it is
// taken over. Liveness by the file's time, not the pid: a container's restarted process
// often has the same pid as the one that died.
import { randomUUID } from 'node:crypto';
import { readFile, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../telemetry/logger.js';

const OWNER_FILE = 'owner';
const REFRESH_MS = 1_000;
const STALE_MS = 5_000;
const WATCH_MS = 250;

export interface OutboxOwner {
  /** Stops refreshing and removes the owner file (if it is still this process's). */
  release(): Promise<void>;
}

interface OwnerFile {
  readonly text: string;
  readonly mtimeMs: number;
}

async function readOwner(path: string): Promise<OwnerFile | undefined> {
  try {
    const [text, info] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    return { text, mtimeMs: info.mtimeMs };
  } catch {
    return undefined;
  }
}

/** Claims `dir` for this process, or throws when another live process holds it. */
export async function claimOutbox(dir: string, logger?: Logger): Promise<OutboxOwner> {
  const path = join(dir, OWNER_FILE);
  const found = await readOwner(path);
  if (found) {
    // Fresh: watch it until it is touched (a live owner) or goes stale (a crashed one).
    while (Date.now() - found.mtimeMs < STALE_MS) {
      await sleep(WATCH_MS);
      const now = await readOwner(path);
      if (!now) break;
      if (now.mtimeMs !== found.mtimeMs || now.text !== found.text) {
        const pid = now.text.split(' ')[0];
        throw new Error(
          `in use by another process (pid ${pid}, ${path}): give each replica its own --events-outbox-dir`,
        );
      }
    }
  }
  const mine = `${process.pid} ${randomUUID()}\n`;
  await writeFile(path, mine);
  let lostLogged = false;
  const timer = setInterval(() => {
    void (async () => {
      const now = await readOwner(path);
      if (now?.text !== mine) {
        // Taken over while this process looked dead (an event loop stalled past STALE_MS).
        if (!lostLogged) {
          lostLogged = true;
          logger?.error(
            { path, owner: now?.text.trim() },
            'event outbox: another process took over the directory; give each replica its own --events-outbox-dir',
          );
        }
        return;
      }
      const at = new Date();
      await utimes(path, at, at).catch(() => undefined);
    })();
  }, REFRESH_MS);
  timer.unref();
  return {
    async release() {
      clearInterval(timer);
      if ((await readOwner(path))?.text === mine) await unlink(path).catch(() => undefined);
    },
  };
}
