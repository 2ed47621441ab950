/**
 * The address of a Unix socket in a directory, whatever the directory's length. A socket
 * address holds at most 107 bytes of path (sun_path), and Node 20 silently truncates a longer
 * one (measured: listening on `<100 chars>/tsm.sock` created `<100 chars>/ts`), so it would bind
 * or dial another path. A longer path is reached through a descriptor of the directory
 * (`/proc/self/fd/N/name`, which Linux resolves to the directory itself).
 */
import { closeSync, constants, openSync } from 'node:fs';
import { join } from 'node:path';

const MAX_UNIX_PATH = 107;

export interface UnixAddress {
  path: string;
  /** Close the directory descriptor, if one was opened (after the listener closed, or once connected). */
  release(): void;
}

export function unixAddress(dir: string, name: string): UnixAddress {
  const direct = join(dir, name);
  if (Buffer.byteLength(direct) <= MAX_UNIX_PATH) return { path: direct, release: () => undefined };
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  let open = true;
  return {
    path: `/proc/self/fd/${fd}/${name}`,
    release: () => {
      if (open) closeSync(fd);
      open = false;
    },
  };
}
