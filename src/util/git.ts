/** Whether a path lies in a git work tree, and whether git would leave it out of commits. */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** The top of the git work tree that holds `path` (a `.git` directory or file above it), if any. */
export function gitWorkTreeOf(path: string): string | undefined {
  let dir = resolve(path);
  for (;;) {
    if (existsSync(resolve(dir, '.git'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/**
 * True when git ignores `path` (.gitignore, info/exclude, the global excludes file). False when
 * it does not, and also when git cannot tell (not installed, a damaged repository): a caller
 * that warns about unignored files then warns rather than stays silent.
 */
export function gitIgnores(path: string, workTree: string): boolean {
  const r = spawnSync('git', ['check-ignore', '--quiet', '--no-index', resolve(path)], {
    cwd: workTree,
    stdio: 'ignore',
    timeout: 10_000,
  });
  return r.status === 0;
}
