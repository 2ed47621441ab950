/**
 * A Store in a local directory: one file per key, written atomically (temporary file, fsync,
 * rename, directory fsync). Compare-and-swap is serialised inside the process; one Coordinator
 * process owns a directory at a time.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../../util/atomic-write.js';
import { checkKey, type Store } from './interface.js';

export class DirStore implements Store {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(readonly root: string) {
    mkdirSync(root, { recursive: true, mode: 0o700 });
  }

  private path(key: string): string {
    checkKey(key);
    return join(this.root, ...key.split('/'));
  }

  private read(key: string): Buffer | undefined {
    try {
      return readFileSync(this.path(key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  private write(key: string, value: Uint8Array): void {
    const p = this.path(key);
    mkdirSync(dirname(p), { recursive: true, mode: 0o700 });
    writeFileAtomic(p, value, { mode: 0o600 });
  }

  private serial<T>(fn: () => T): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  get(key: string): Promise<Buffer | undefined> {
    return Promise.resolve(this.read(key));
  }

  set(key: string, value: Uint8Array): Promise<void> {
    return this.serial(() => this.write(key, value));
  }

  compareAndSwap(key: string, expected: Uint8Array | undefined, value: Uint8Array): Promise<boolean> {
    return this.serial(() => {
      const current = this.read(key);
      const same = current === undefined || expected === undefined ? current === expected : Buffer.compare(current, expected) === 0;
      if (!same) return false;
      this.write(key, value);
      return true;
    });
  }
}

/** An in-memory Store for tests. */
export class MemoryStore implements Store {
  readonly data = new Map<string, Buffer>();
  get(key: string): Promise<Buffer | undefined> { checkKey(key); return Promise.resolve(this.data.get(key)); }
  set(key: string, value: Uint8Array): Promise<void> { checkKey(key); this.data.set(key, Buffer.from(value)); return Promise.resolve(); }
  compareAndSwap(key: string, expected: Uint8Array | undefined, value: Uint8Array): Promise<boolean> {
    const cur = this.data.get(key);
    const same = cur === undefined || expected === undefined ? cur === expected : Buffer.compare(cur, expected) === 0;
    if (same) this.data.set(key, Buffer.from(value));
    return Promise.resolve(same);
  }
}
