import { randomBytes } from 'node:crypto';
import { closeSync, constants, fsyncSync, linkSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { utf8Slices } from './chunked-write.js';

export interface AtomicWriteOptions {
  /** File mode for a newly created file (default 0o644). */
  mode?: number;
  /** Refuse to replace an existing file (used for key material): fails with EEXIST. */
  exclusive?: boolean;
}

/**
 * Crash-test hook: `KUBECTL_CONTRAST_KILL_AT_WRITE=<n>:<temp|renamed>` makes the process kill
 * itself with SIGKILL at its n-th atomic write, after the temporary file is on disk or after
 * the rename, so crash tests reach every step between writes deterministically.
 */
const killPoint = /^(\d+):(temp|renamed)$/.exec(process.env.KUBECTL_CONTRAST_KILL_AT_WRITE ?? '');
let atomicWrites = 0;

function crashPoint(write: number, stage: 'temp' | 'renamed'): void {
  if (killPoint && Number(killPoint[1]) === write && killPoint[2] === stage) process.kill(process.pid, 'SIGKILL');
}

/**
 * Write a file so that readers (and a crash) only ever see the old or the new content:
 * write a temporary file in the same directory, fsync it, then rename it into place.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): void {
  const write = ++atomicWrites;
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, options.mode ?? 0o644);
  try {
    for (const buf of typeof data === 'string' ? utf8Slices(data) : [data]) {
      let off = 0;
      while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    }
    fsyncSync(fd);
    closeSync(fd);
    crashPoint(write, 'temp');
    // link() fails when the target exists, so an exclusive write never replaces a file.
    if (options.exclusive) linkSync(tmp, path);
    else renameSync(tmp, path);
  } finally {
    try {
      closeSync(fd);
    } catch {
      /* already closed */
    }
    rmSync(tmp, { force: true });
  }
  syncDirectory(dir);
  crashPoint(write, 'renamed');
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
