/**
 * What the Kata runtime looks at on the host while it turns an OCI spec into agent requests:
 * the sandbox's resolv.conf (the DNS of CreateSandboxRequest), the size of the sandbox's
 * /dev/shm, the group and filesystem of emptyDir volumes, whether a mount destination is a host
 * device, and the files it copies into the guest. The conversion (agent-requests.ts) asks
 * through this interface only, so it stays a function of the spec plus these answers.
 */
import { lstatSync, readdirSync, readFileSync, readlinkSync, statfsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../util/errors.js';

/** One entry ShareFile copies: the mount source itself (rel "") or something below it. */
export interface HostEntry {
  /** Path below the mount source, "" for the source itself, else starting with "/". */
  rel: string;
  /** st_mode, type bits included (S_IFREG, S_IFDIR, S_IFLNK, …). */
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of a regular file; 0 otherwise. */
  size: number;
  /** The link text of a symlink. */
  target?: string;
}

export interface HostView {
  /** Text of a host file the runtime reads (the sandbox's resolv.conf). */
  readText(path: string): string;
  /** Size of the filesystem at path: block size × blocks (statfs). */
  filesystemSize(path: string): number;
  /** The group owning path and whether a tmpfs is mounted there (emptyDir medium Memory). */
  volume(path: string): { gid: number; tmpfs: boolean };
  /** Whether path exists on the host and is not a regular file (virtcontainers isHostDevice). */
  isDeviceOrDir(path: string): boolean;
  /** What filepath.WalkDir visits from path: path first, then each directory's entries by name; symlinks are not followed. */
  walk(path: string): HostEntry[];
}

export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFLNK = 0o120000;
const TMPFS_MAGIC = 0x01021994;

export interface FsHostLimits {
  /** Most entries one shared mount may have (a projected volume has a handful). */
  maxEntries: number;
  /** Most bytes of one file the runtime reads (resolv.conf). */
  maxReadBytes: number;
}

const DEFAULT_LIMITS: FsHostLimits = { maxEntries: 4096, maxReadBytes: 1024 * 1024 };

/** The host's own filesystem. Paths come from the spec, so every read is bounded. */
export function fsHost(limits: Partial<FsHostLimits> = {}): HostView {
  const lim = { ...DEFAULT_LIMITS, ...limits };
  return {
    readText(path) {
      const st = statSync(path);
      if (!st.isFile()) throw new UserError(`${path} is not a regular file`);
      if (st.size > lim.maxReadBytes) throw new UserError(`${path} is larger than ${lim.maxReadBytes} bytes`);
      return readFileSync(path, 'utf8');
    },
    filesystemSize(path) {
      const s = statfsSync(path);
      return s.bsize * s.blocks;
    },
    volume(path) {
      const st = statSync(path);
      const fs = statfsSync(path);
      // A tmpfs counts only when it is mounted at path itself, as Kata finds it in the mount table.
      const parent = statSync(join(path, '..'));
      return { gid: st.gid, tmpfs: fs.type === TMPFS_MAGIC && parent.dev !== st.dev };
    },
    isDeviceOrDir(path) {
      try {
        return !statSync(path).isFile();
      } catch {
        return false;
      }
    },
    walk(path) {
      const out: HostEntry[] = [];
      const visit = (abs: string, rel: string): void => {
        if (out.length >= lim.maxEntries)
          throw new UserError(`${path} has more than ${lim.maxEntries} entries to copy into the guest`);
        const st = lstatSync(abs);
        const entry: HostEntry = { rel, mode: st.mode, uid: st.uid, gid: st.gid, size: st.isFile() ? st.size : 0 };
        if (st.isSymbolicLink()) entry.target = readlinkSync(abs);
        out.push(entry);
        if (st.isDirectory()) {
          // WalkDir reads a directory's names sorted (io/fs ReadDir); Go sorts by bytes.
          const names = readdirSync(abs).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
          for (const name of names) visit(join(abs, name), `${rel}/${name}`);
        }
      };
      visit(path, '');
      return out;
    },
  };
}
