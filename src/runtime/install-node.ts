/**
 * `kubectl contrast runtime install-node PLATFORM HANDLER`: the node installer's entry point, run
 * by the DaemonSet of `runtime apply` with the node's `/` at `/host` and the node's PID namespace.
 * It installs the simulated runtime (insecure-sim): our executable and a runc wrapper under the
 * runtime directory, a runtime handler in containerd's configuration, and restarts containerd
 * (which leaves running containers alone: their shims outlive it) so the handler is loaded.
 *
 * Installing is idempotent. containerd is restarted when the configuration changed, and also
 * when the running containerd started before the configuration was last written: an installer
 * that died between writing and restarting must not leave a handler that is never loaded.
 */
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { GENERIC_RUNTIME_CLASS, requirePlatform } from '../platforms/platforms.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { UserError } from '../util/errors.js';
import { withRuntimeHandler } from './containerd-config.js';
import { runtimePaths, type RuntimePaths } from './paths.js';

export interface InstallNodeOptions {
  platform: string;
  handler: string;
  /** Where the node's `/` is mounted in the installer's container. */
  hostRoot: string;
  /** Node paths. */
  runtimeDir: string;
  containerdConfig: string;
  /** The executable to copy onto the node (the image's single executable). */
  executable: string;
  /** The node's /proc (the installer shares the node's PID namespace). */
  proc?: string;
  log?: (line: string) => void;
}

/** Where runc is on common distributions, first match wins. */
const RUNC_CANDIDATES = ['/usr/sbin/runc', '/usr/bin/runc', '/usr/local/sbin/runc', '/usr/local/bin/runc'];

/** The pod annotations the hook needs in every OCI spec of a pod: the initdata is one of them. */
const POD_ANNOTATIONS = ['io.katacontainers.*'];

/**
 * The wrapper: runc for everything, with the hook before create and delete. A shell script, so
 * the shim's frequent `state` and `kill` calls cost no start of our executable.
 */
export function wrapperScript(paths: RuntimePaths, runc: string, handler: string): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return [
    '#!/bin/sh',
    `# The insecure-sim runtime ${handler}: runc, with the checks of a Kata agent before a container`,
    '# is created (`kubectl contrast runtime sim-agent`). Written by `kubectl contrast runtime install-node`.',
    'case " $* " in',
    `  *" create "*|*" delete "*) ${q(paths.executable)} runtime sim-agent --state-dir ${q(paths.agentState)} --device-state-dir ${q(paths.deviceState)} -- "$@" || exit 1 ;;`,
    'esac',
    `exec ${q(runc)} "$@"`,
    '',
  ].join('\n');
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Write a file only when its content differs; returns whether it did. */
function writeIfChanged(path: string, data: Buffer | string, mode: number): boolean {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  if (existsSync(path) && sha256(readFileSync(path)) === sha256(bytes)) {
    chmodSync(path, mode);
    return false;
  }
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  writeFileAtomic(path, bytes, { mode });
  chmodSync(path, mode);
  return true;
}

/** The containerd processes that read `config` (default when no --config/-c is given). */
export function containerdProcesses(proc: string, config: string): { pid: number; startedAt: number }[] {
  const bootTime = Number(/^btime (\d+)$/m.exec(readFileSync(join(proc, 'stat'), 'utf8'))?.[1] ?? NaN);
  const out: { pid: number; startedAt: number }[] = [];
  for (const entry of readdirSync(proc)) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    let stat: string;
    try {
      argv = readFileSync(join(proc, entry, 'cmdline'), 'utf8')
        .split('\0')
        .filter((a) => a !== '');
      stat = readFileSync(join(proc, entry, 'stat'), 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    if (argv.length === 0 || argv[0]!.split('/').pop() !== 'containerd') continue;
    let used = '/etc/containerd/config.toml';
    for (let i = 1; i < argv.length; i++) {
      const a = argv[i]!;
      if (a === '--config' || a === '-c') used = argv[i + 1] ?? used;
      else if (a.startsWith('--config=')) used = a.slice('--config='.length);
    }
    if (resolve(used) !== resolve(config)) continue;
    // Field 22 of /proc/PID/stat, after the command in parentheses: start time in clock ticks.
    const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    out.push({ pid: Number(entry), startedAt: bootTime + ticks / 100 });
  }
  return out;
}

function findRunc(hostRoot: string): string {
  const found = RUNC_CANDIDATES.find((p) => existsSync(join(hostRoot, p)));
  if (!found) throw new UserError(`no runc on the node (looked for ${RUNC_CANDIDATES.join(', ')})`);
  return found;
}

export interface InstallResult {
  changed: string[];
  restarted: number[];
}

export function installNode(opts: InstallNodeOptions): InstallResult {
  const log = opts.log ?? (() => undefined);
  const platform = requirePlatform(opts.platform);
  if (platform.tee !== 'insecure-sim')
    throw new UserError(
      `this node installer installs the simulated runtime (insecure-sim) only; the Kata runtime and guest image of ${platform.id} are not part of kubectl-contrast`,
    );
  // The handler's hash names the images of a release; the image this runs from cannot know its
  // own lock (docs/images.md), so only the shape is checked here.
  if (!new RegExp(`^${GENERIC_RUNTIME_CLASS}-${platform.id}-[0-9a-f]{8}$`).test(opts.handler))
    throw new UserError(
      `runtime handler ${JSON.stringify(opts.handler)} is not a runtime class of ${platform.id} (${GENERIC_RUNTIME_CLASS}-${platform.id}-<8 hex>)`,
    );
  const host = (p: string) => join(opts.hostRoot, p);
  const paths = runtimePaths(opts.runtimeDir, opts.handler);
  const changed: string[] = [];
  const note = (did: boolean, what: string) => {
    if (did) changed.push(what);
    log(`${did ? 'wrote' : 'unchanged'} ${what}`);
  };
  const runc = findRunc(opts.hostRoot);
  note(writeIfChanged(host(paths.executable), readFileSync(opts.executable), 0o755), paths.executable);
  note(writeIfChanged(host(paths.wrapper), wrapperScript(paths, runc, opts.handler), 0o755), paths.wrapper);
  for (const dir of [paths.agentState, paths.deviceState]) mkdirSync(host(dir), { recursive: true, mode: 0o700 });
  mkdirSync(host(paths.simRoot), { recursive: true, mode: 0o755 });

  const configPath = host(opts.containerdConfig);
  const before = existsSync(configPath) ? readFileSync(configPath, 'utf8') : '';
  const after = withRuntimeHandler(
    before,
    { handler: opts.handler, binaryName: paths.wrapper, podAnnotations: POD_ANNOTATIONS },
    opts.containerdConfig,
  );
  note(
    writeIfChanged(configPath, after, existsSync(configPath) ? statSync(configPath).mode & 0o777 : 0o644),
    opts.containerdConfig,
  );

  const written = statSync(configPath).mtimeMs / 1000;
  const processes = containerdProcesses(opts.proc ?? '/proc', opts.containerdConfig);
  if (processes.length === 0)
    throw new UserError(
      `no running containerd reads ${opts.containerdConfig}; start containerd with that configuration, or give the node's with \`runtime apply --containerd-config\``,
    );
  // Start times have a resolution of one clock tick; a containerd started within a second of
  // the write counts as stale, which at worst restarts it once more.
  const stale = processes.filter((p) => p.startedAt <= written + 1);
  for (const p of stale) {
    log(`restarting containerd (pid ${p.pid}) so that it loads ${opts.handler}`);
    process.kill(p.pid, 'SIGTERM');
  }
  return { changed, restarted: stale.map((p) => p.pid) };
}
