/**
 * A Store in a local directory: one file per key, written atomically (temporary file, fsync,
 * rename, directory fsync) with node:fs/promises, so a large SetManifest never blocks the event
 * loop. Writes of one key (set and compare-and-swap) are serialised inside the process; writes
 * of different keys run concurrently, at most MAX_CONCURRENT_WRITES at a time. Directory fsyncs
 * are shared: a write waits for an fsync of its directory that started after its rename, so
 * many files written together cost a few directory fsyncs, not one each. One Coordinator
 * process owns a directory at a time.
 */
import { mkdirSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { checkKey, type Store } from './interface.js';

const MAX_CONCURRENT_WRITES = 32;

interface DirSync {
  /** Requests registered so far (each after its write's rename). */
  requested: number;
  /** Every request up to this number is covered by a completed fsync. */
  done: number;
  running?: Promise<void>;
}

async function fsyncDirectory(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    // Some filesystems refuse fsync on directories; the rename itself is still atomic.
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

export class DirStore implements Store {
  /** Tail of the write queue of each key. */
  private readonly keyQueues = new Map<string, Promise<unknown>>();
  private readonly dirSyncs = new Map<string, DirSync>();
  private readonly madeDirs = new Set<string>();
  private writesInFlight = 0;
  private readonly writeWaiters: (() => void)[] = [];

  constructor(readonly root: string) {
    mkdirSync(root, { recursive: true, mode: 0o700 });
  }

  private path(key: string): string {
    checkKey(key);
    return join(this.root, ...key.split('/'));
  }

  private async read(key: string): Promise<Buffer | undefined> {
    try {
      return await readFile(this.path(key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  private async slot(): Promise<() => void> {
    while (this.writesInFlight >= MAX_CONCURRENT_WRITES) await new Promise<void>((r) => this.writeWaiters.push(r));
    this.writesInFlight++;
    return () => {
      this.writesInFlight--;
      this.writeWaiters.shift()?.();
    };
  }

  private async write(key: string, value: Uint8Array): Promise<void> {
    const p = this.path(key);
    const dir = dirname(p);
    const release = await this.slot();
    try {
      if (!this.madeDirs.has(dir)) {
        await mkdir(dir, { recursive: true, mode: 0o700 });
        this.madeDirs.add(dir);
      }
      const tmp = join(dir, `.${basename(p)}.${randomBytes(6).toString('hex')}.tmp`);
      try {
        const fh = await open(tmp, 'wx', 0o600).catch(async (err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOENT') throw err;
          // The directory went away since we made it: make it again.
          await mkdir(dir, { recursive: true, mode: 0o700 });
          return open(tmp, 'wx', 0o600);
        });
        try {
          await fh.writeFile(value);
          await fh.sync();
        } finally {
          await fh.close();
        }
        await rename(tmp, p);
      } catch (err) {
        await rm(tmp, { force: true }).catch(() => undefined);
        throw err;
      }
    } finally {
      release();
    }
    await this.syncDir(dir);
  }

  /** Resolves once an fsync of `dir` that started after this call has completed. */
  private async syncDir(dir: string): Promise<void> {
    let s = this.dirSyncs.get(dir);
    if (!s) {
      s = { requested: 0, done: 0 };
      this.dirSyncs.set(dir, s);
    }
    const state = s;
    const want = ++state.requested;
    while (state.done < want) {
      if (!state.running) {
        const generation = state.requested;
        state.running = fsyncDirectory(dir).then(() => {
          state.done = Math.max(state.done, generation);
          state.running = undefined;
        });
      }
      await state.running;
    }
  }

  /** Run `fn` after every earlier write of `key` has finished. */
  private serial<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.keyQueues.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.keyQueues.set(key, tail);
    void tail.then(() => {
      if (this.keyQueues.get(key) === tail) this.keyQueues.delete(key);
    });
    return next;
  }

  get(key: string): Promise<Buffer | undefined> {
    return this.read(key);
  }

  async set(key: string, value: Uint8Array): Promise<void> {
    checkKey(key);
    return this.serial(key, () => this.write(key, value));
  }

  async compareAndSwap(key: string, expected: Uint8Array | undefined, value: Uint8Array): Promise<boolean> {
    checkKey(key);
    return this.serial(key, async () => {
      const current = await this.read(key);
      const same =
        current === undefined || expected === undefined
          ? current === expected
          : Buffer.compare(current, expected) === 0;
      if (!same) return false;
      await this.write(key, value);
      return true;
    });
  }
}

/** An in-memory Store for tests. */
export class MemoryStore implements Store {
  readonly data = new Map<string, Buffer>();
  get(key: string): Promise<Buffer | undefined> {
    checkKey(key);
    return Promise.resolve(this.data.get(key));
  }
  set(key: string, value: Uint8Array): Promise<void> {
    checkKey(key);
    this.data.set(key, Buffer.from(value));
    return Promise.resolve();
  }
  compareAndSwap(key: string, expected: Uint8Array | undefined, value: Uint8Array): Promise<boolean> {
    const cur = this.data.get(key);
    const same = cur === undefined || expected === undefined ? cur === expected : Buffer.compare(cur, expected) === 0;
    if (same) this.data.set(key, Buffer.from(value));
    return Promise.resolve(same);
  }
}
