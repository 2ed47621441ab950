import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../util/atomic-write.js';

/**
 * The files of collateral directories (the SEV-SNP cache, the TDX collateral directory): read
 * when present, written atomically so a reader never sees half an answer.
 */
export function readIfExists(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export function storeFile(path: string, data: Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileAtomic(path, data);
}

/**
 * storeFile for caches of fetched collateral: false instead of an error when the directory
 * cannot be written (read-only file system, a file in the way, no space). What was fetched is
 * still used; the only cost is asking the service again after a restart.
 */
export function storeIfPossible(path: string, data: Uint8Array): boolean {
  try {
    storeFile(path, data);
    return true;
  } catch {
    return false;
  }
}
