/** Runs the real CLI executable (bin/kubectl-contrast → dist/cli.cjs) as a child process. */
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = join(REPO_ROOT, 'bin', 'kubectl-contrast');

/** `generate` for the simulated platform from the committed sample images, offline: the set-up of the Coordinator tests. */
export const simGenerateArgs = (workspace: string): string[] => [
  'generate',
  '--platform',
  'insecure-sim',
  '--oci-layout',
  join(REPO_ROOT, 'samples', 'images'),
  '--offline',
  '--no-cache',
  '--workspace-dir',
  workspace,
];

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

let built = false;

/** Rebuild dist/ when any source file is newer than the CLI bundle, the build's last output. */
export function ensureBuilt(): void {
  if (built) return;
  const entry = join(REPO_ROOT, 'dist', 'cli.cjs');
  let entryTime = 0;
  try {
    entryTime = statSync(entry).mtimeMs;
  } catch {
    /* not built */
  }
  if (newestMtime(join(REPO_ROOT, 'src')) > entryTime) {
    try {
      execFileSync('npm', ['run', '--silent', 'build'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      // tsc still emits JavaScript when it reports type errors; the CI build (scripts/setup.sh)
      // is the place that fails on them. Here only a missing compiled entry point is fatal.
      try {
        statSync(join(REPO_ROOT, 'dist', 'cli', 'main.js'));
      } catch {
        throw err;
      }
      for (const step of ['copy-assets.mjs', 'bundle-cli.mjs'])
        execFileSync(process.execPath, [join(REPO_ROOT, 'scripts', step)], { stdio: ['ignore', 'pipe', 'pipe'] });
      process.stderr.write(
        `warning: type errors while building dist/:\n${String((err as { stdout?: Buffer }).stdout ?? '').slice(0, 2000)}\n`,
      );
    }
  }
  built = true;
}

/** The newest modification time of any file below `dir`. */
export function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

export function runCli(
  args: string[],
  options: { cwd?: string; input?: string; env?: NodeJS.ProcessEnv; uid?: number; gid?: number } = {},
): CliResult {
  ensureBuilt();
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    ...(options.uid !== undefined ? { uid: options.uid, gid: options.gid ?? options.uid } : {}),
    input: options.input ?? '',
    env: { ...process.env, ...options.env },
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** runCli without blocking the event loop: for tests that serve the CLI from this process. */
export function runCliAsync(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<CliResult> {
  ensureBuilt();
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], {
      cwd: options.cwd ?? REPO_ROOT,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    p.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    p.once('error', reject);
    p.once('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
