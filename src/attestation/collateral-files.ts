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
