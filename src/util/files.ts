/** Reading a file the user named, with an error that names it and says what went wrong. */
import { readFileSync } from 'node:fs';
import { UserError } from './errors.js';

/** A short reason for a failed file system call: "no such file or directory", … */
export function describeFsError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  switch (e.code) {
    case 'ENOENT':
      return 'no such file or directory';
    case 'EACCES':
      return 'permission denied';
    case 'EISDIR':
      return 'is a directory';
    default:
      return e.message ?? String(err);
  }
}

/** The bytes of `path`; `what` names it in the error ("the transformer config"). */
export function readUserFile(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new UserError(`cannot read ${what}: ${describeFsError(err)}`, { file: path }, { cause: err });
  }
}

export function readUserText(path: string, what: string): string {
  return readUserFile(path, what).toString('utf8');
}
