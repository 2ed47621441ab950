import { randomBytes } from 'node:crypto';
import { closeSync, constants, fsyncSync, linkSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export interface AtomicWriteOptions {
  /** File mode for a newly created file (default 0o644). */
  mode?: number;
  /** Refuse to replace an existing file (used for key material): fails with EEXIST. */
  exclusive?: boolean;
}

/**
 * Write a file so that readers (and a crash) only ever see the old or the new content:
 * write a temporary file in the same directory, fsync it, then rename it into place.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): void {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, options.mode ?? 0o644);
  try {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
    closeSync(fd);
    // link() fails when the target exists, so an exclusive write never replaces a file.
    if (options.exclusive) linkSync(tmp, path);
    else renameSync(tmp, path);
  } finally {
    try { closeSync(fd); } catch { /* already closed */ }
    rmSync(tmp, { force: true });
  }
  syncDirectory(dir);
}

function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Some filesystems refuse fsync on directories; the rename itself is still atomic.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
