// CaStore on a local directory. Layout (see docs/ca.md):
//
//   <data-dir>/ca/                 0700
//     roots.json                   0644  root certificates + state; no keys
//     keys/root-<serial>.key       0600  one private key per root   (keys/ is 0700)
//     trust-bundle.pem             0644  derived copy of the bundle, for operators and curl
//     leaves.json                  0644  current leaf per service (metadata, no keys)
//     token-signing.key            0600  ES256 key for proxy and operator tokens
//     tokens.json                  0644  issued tokens (id, subject, expiry) and revocations
//     .lock                              held during a root-set or token-log update
//
// Writes go to a temp file and are renamed into place, so readers never see half a file. Root
// keys are written before roots.json names them and deleted only after roots.json stopped
// naming them. Root-set updates from several processes (`ca rotate` next to `serve`) are
// serialised by an O_EXCL lock file; a stale lock (dead pid) is broken. The token log is
// updated under the same lock and watched the same way (`token revoke` next to `serve`).
import { randomBytes } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { chmod, link, mkdir, open, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { CaMaterialError } from './crypto.js';
import type { TokenRecord, TokensMutation } from './revocations.js';
import { bundleOf } from './roots.js';
import type { CaStore, RootsMutation } from './store.js';
import {
  SERIAL,
  parseStored,
  storedLeafEntry,
  storedRootEntry,
  storedTokenEntry,
} from './stored-records.js';
import type { LeafRecord, StoredRoot } from './types.js';

const rootsFile = z.object({ version: z.literal(1), roots: z.array(storedRootEntry) });
const leavesFile = z.object({ version: z.literal(1), leaves: z.array(storedLeafEntry) });
const tokensFile = z.object({ version: z.literal(1), tokens: z.array(storedTokenEntry) });

export interface FileCaStoreOptions {
  /**
   * How often to stat roots.json and tokens.json as a fallback to file events (network
   * mounts). Default 2000.
   */
  readonly pollIntervalMs?: number;
  /** Give up waiting for another process's lock after this long. Default 10000. */
  readonly lockTimeoutMs?: number;
}

export class FileCaStore implements CaStore {
  readonly location: string;
  readonly dataDir: string;
  private readonly caDir: string;
  private readonly keysDir: string;
  private readonly rootsPath: string;
  private readonly leavesPath: string;
  private readonly tokenKeyPath: string;
  private readonly tokensPath: string;
  private readonly bundlePath: string;
  private readonly lockPath: string;
  private leafWrites: Promise<void> = Promise.resolve();
  /** updateRoots/updateTokens calls within this process queue here before taking the file lock. */
  private lockedUpdates: Promise<unknown> = Promise.resolve();

  constructor(
    dataDir: string,
    private readonly opts: FileCaStoreOptions = {},
  ) {
    this.dataDir = resolve(dataDir);
    this.caDir = join(this.dataDir, 'ca');
    this.keysDir = join(this.caDir, 'keys');
    this.rootsPath = join(this.caDir, 'roots.json');
    this.leavesPath = join(this.caDir, 'leaves.json');
    this.tokenKeyPath = join(this.caDir, 'token-signing.key');
    this.tokensPath = join(this.caDir, 'tokens.json');
    this.bundlePath = join(this.caDir, 'trust-bundle.pem');
    this.lockPath = join(this.caDir, '.lock');
    this.location = this.caDir;
  }

  keyPath(serial: string): string {
    return join(this.keysDir, `root-${serial}.key`);
  }

  async loadRoots(): Promise<StoredRoot[]> {
    // A concurrent update may delete a dropped root's key between our two reads: re-read.
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.readRoots();
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 3) throw err;
      }
    }
  }

  updateRoots(mutate: RootsMutation): Promise<StoredRoot[]> {
    return this.locked(() => this.applyUpdate(mutate));
  }

  watchRoots(listener: () => void): () => void {
    return this.watchFile(this.rootsPath, 'roots.json', listener);
  }

  async loadTokens(): Promise<TokenRecord[]> {
    const text = await readFile(this.tokensPath, 'utf8').catch(ignoreMissing);
    if (text === undefined) return [];
    return parseStored(this.tokensPath, text, tokensFile).tokens;
  }

  updateTokens(mutate: TokensMutation): Promise<TokenRecord[]> {
    return this.locked(async () => {
      const before = await this.loadTokens();
      const after = await mutate(before);
      if (!after) return before;
      await writeAtomic(
        this.tokensPath,
        JSON.stringify({ version: 1, tokens: after }, null, 2) + '\n',
        0o644,
      );
      return [...after];
    });
  }

  watchTokens(listener: () => void): () => void {
    return this.watchFile(this.tokensPath, 'tokens.json', listener);
  }

  /** Runs `fn` under the store lock, after this process's earlier locked updates. */
  private locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lockedUpdates.then(() => this.withLock(fn));
    this.lockedUpdates = run.catch(() => undefined);
    return run;
  }

  /** Calls `listener` when `path` (named `name` in the CA directory) is replaced or changes. */
  private watchFile(path: string, name: string, listener: () => void): () => void {
    let last: string | undefined;
    let closed = false;
    let timer: NodeJS.Timeout | undefined;
    const check = async () => {
      const signature = await stat(path).then(
        (s) => `${s.ino}:${s.size}:${s.mtimeMs}`,
        () => 'missing',
      );
      if (closed || signature === last) return;
      const first = last === undefined;
      last = signature;
      if (!first) listener();
    };
    const soon = () => {
      // Coalesce the burst of events one rename produces.
      if (timer || closed) return;
      timer = setTimeout(() => {
        timer = undefined;
        void check();
      }, 20);
      timer.unref();
    };
    void check();
    let watcher: FSWatcher | undefined;
    try {
      watcher = watch(this.caDir, { persistent: false }, (_event, changed) => {
        if (changed === null || changed === name) soon();
      });
      watcher.on('error', () => watcher?.close());
    } catch {
      watcher = undefined; // no directory yet or no inotify: polling still works
    }
    const poll = setInterval(() => void check(), this.opts.pollIntervalMs ?? 2000);
    poll.unref();
    return () => {
      closed = true;
      watcher?.close();
      clearInterval(poll);
      if (timer) clearTimeout(timer);
    };
  }

  async loadLeaves(): Promise<LeafRecord[]> {
    const text = await readFile(this.leavesPath, 'utf8').catch(ignoreMissing);
    if (text === undefined) return [];
    return parseStored(this.leavesPath, text, leavesFile).leaves;
  }

  saveLeaves(leaves: readonly LeafRecord[]): Promise<void> {
    // Serialised so an older snapshot can never overwrite a newer one.
    const body = JSON.stringify({ version: 1, leaves }, null, 2) + '\n';
    const run = this.leafWrites.then(async () => {
      await this.ensureDirs();
      await writeAtomic(this.leavesPath, body, 0o644);
    });
    this.leafWrites = run.catch(() => undefined);
    return run;
  }

  async loadOrCreateTokenKey(create: () => Promise<string>): Promise<string> {
    const existing = await readFile(this.tokenKeyPath, 'utf8').catch(ignoreMissing);
    if (existing !== undefined) return existing;
    await this.ensureDirs();
    const created = await create();
    // link() fails if the name exists: whoever links first wins, and the file is complete.
    const tmp = await writeTemp(this.tokenKeyPath, created, 0o600);
    try {
      await link(tmp, this.tokenKeyPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      await rm(tmp, { force: true });
    }
    return readFile(this.tokenKeyPath, 'utf8');
  }

  private async readRoots(): Promise<StoredRoot[]> {
    const text = await readFile(this.rootsPath, 'utf8').catch(ignoreMissing);
    if (text === undefined) return [];
    const { roots } = parseStored(this.rootsPath, text, rootsFile);
    return Promise.all(
      roots.map(async (root) => {
        const keyPem = await readFile(this.keyPath(root.serial), 'utf8');
        return { ...root, keyPem };
      }),
    );
  }

  private async applyUpdate(mutate: RootsMutation): Promise<StoredRoot[]> {
    const before = await this.readRoots();
    const after = await mutate(before);
    if (!after) return before;
    await this.ensureDirs();
    const known = new Set(before.map((r) => r.serial));
    for (const root of after) {
      if (!SERIAL.test(root.serial)) throw new CaMaterialError(`bad root serial ${root.serial}`);
      if (!known.has(root.serial)) await writeAtomic(this.keyPath(root.serial), root.keyPem, 0o600);
    }
    const entries = after.map(({ keyPem: _key, ...rest }) => rest);
    await writeAtomic(
      this.rootsPath,
      JSON.stringify({ version: 1, roots: entries }, null, 2) + '\n',
      0o644,
    );
    await writeAtomic(this.bundlePath, bundleOf(after), 0o644);
    const kept = new Set(after.map((r) => r.serial));
    for (const root of before) {
      if (!kept.has(root.serial)) await rm(this.keyPath(root.serial), { force: true });
    }
    return after.map((r) => ({ ...r }));
  }

  private async ensureDirs(): Promise<void> {
    await mkdir(this.dataDir, { recursive: true, mode: 0o700 });
    for (const dir of [this.caDir, this.keysDir]) {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await chmod(dir, 0o700);
    }
  }

  private async withLock<T>(fn: () => Promise<T>): Promise<T> {
    await this.ensureDirs();
    const deadline = Date.now() + (this.opts.lockTimeoutMs ?? 10_000);
    for (;;) {
      try {
        const handle = await open(this.lockPath, 'wx', 0o600);
        await handle.writeFile(`${process.pid}\n`);
        await handle.close();
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const holder = await this.lockHolder();
        if (holder === 'stale') {
          await unlink(this.lockPath).catch(() => undefined);
          continue;
        }
        if (Date.now() > deadline) {
          throw new Error(`${this.lockPath}: CA store is locked by pid ${holder}; try again`);
        }
        await new Promise((r) => setTimeout(r, 10 + Math.random() * 40));
      }
    }
    try {
      return await fn();
    } finally {
      await unlink(this.lockPath).catch(() => undefined);
    }
  }

  /** The pid holding the lock, or 'stale' when that process is gone (or the file is junk). */
  private async lockHolder(): Promise<number | 'stale'> {
    const text = await readFile(this.lockPath, 'utf8').catch(() => undefined);
    if (text === undefined) return 'stale';
    const pid = Number(text.trim());
    // An empty file is a lock being written right now; only call it stale when it is old.
    if (text.trim() === '') {
      const age = await stat(this.lockPath).then(
        (s) => Date.now() - s.mtimeMs,
        () => Infinity,
      );
      return age > 5_000 ? 'stale' : 0;
    }
    if (!Number.isInteger(pid) || pid <= 0) return 'stale';
    try {
      process.kill(pid, 0);
      return pid;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'EPERM' ? pid : 'stale';
    }
  }
}

function ignoreMissing(err: NodeJS.ErrnoException): undefined {
  if (err.code === 'ENOENT') return undefined;
  throw err;
}

async function writeTemp(target: string, content: string, mode: number): Promise<string> {
  const tmp = `${target}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const handle = await open(tmp, 'wx', mode);
  try {
    try {
      await handle.writeFile(content);
      await handle.sync();
    } finally {
      await handle.close();
    }
    // The mode argument is filtered by the umask; keys must be exactly 0600 regardless.
    await chmod(tmp, mode);
  } catch (err) {
    // A full disk fails the write or the sync: leave no half-written file (it may be a key).
    await rm(tmp, { force: true });
    throw err;
  }
  return tmp;
}

async function writeAtomic(target: string, content: string, mode: number): Promise<void> {
  const tmp = await writeTemp(target, content, mode);
  try {
    await rename(tmp, target);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

// Re-exported for tests that assert on the layout.
export const FILE_STORE_LAYOUT = {
  roots: 'ca/roots.json',
  leaves: 'ca/leaves.json',
  bundle: 'ca/trust-bundle.pem',
  tokenKey: 'ca/token-signing.key',
  tokens: 'ca/tokens.json',
  rootKey: (serial: string) => `ca/keys/root-${serial}.key`,
} as const;
